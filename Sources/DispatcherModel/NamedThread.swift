import CLinux
import Foundation

/// The process's long-lived threads, started under names that `top -H`, `ps -L`, `perf` and gdb
/// show, so an operator can tell which loop is busy. Foundation's `Thread.name` does not do it
/// on Linux: set before `start()` it names nothing, set from the new thread it races the
/// parent's record of the thread, and glibc refuses any name over 15 bytes. The thread names
/// itself with `prctl`, which keeps the first 15 bytes.
package enum NamedThread {
    /// Runs `body` on a new thread named `name`, at nice value `nice` (Linux keeps one per
    /// thread; a positive value lowers the thread's share of a busy CPU, and needs no privilege).
    package static func start(_ name: String, nice: Int32 = 0, _ body: @escaping @Sendable () -> Void) {
        Thread {
            dispatcher_name_this_thread(name)
            if nice != 0 { _ = dispatcher_set_this_threads_nice(nice) }
            body()
        }.start()
    }
}
