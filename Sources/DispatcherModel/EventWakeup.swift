import Glibc
import Synchronization

/// An eventfd other threads write to end an event loop's epoll wait, until the loop closes it: a
/// wake-up racing the loop's exit must not write to a closed descriptor whose number the
/// process may have handed out again. The HTTP server's loop and the transfer loop's
/// `SocketMulti` each watch one.
package final class EventWakeup: Sendable {
    /// Watched by the loop for reading.
    package let descriptor: Int32
    private let open = Mutex<Bool>(true)

    /// Takes over `descriptor`, an eventfd (`dispatcher_eventfd`).
    package init(descriptor: Int32) { self.descriptor = descriptor }

    /// Any thread: the loop's next or current wait ends.
    package func wake() {
        open.withLock { open in
            guard open else { return }
            var one: UInt64 = 1
            _ = write(descriptor, &one, 8)
        }
    }

    /// The loop, when `descriptor` is readable: resets it for the next wake-up.
    package func drain() {
        var value: UInt64 = 0
        _ = read(descriptor, &value, 8)
    }

    /// The loop, as it ends: later wake-ups do nothing.
    package func close() {
        open.withLock { open in
            guard open else { return }
            open = false
            _ = Glibc.close(descriptor)
        }
    }
}
