import CCurl
import CLinux
import DispatcherModel
import Dispatch
import Glibc

/// libcurl multi handles run by their sockets' readiness: libcurl says which sockets to watch and
/// when it wants a call without one (its socket and timer callbacks), one epoll waits for all of
/// them, and `curl_multi_socket_action` runs only the transfers whose socket is ready or whose
/// timer ran out.
///
/// Why not `curl_multi_perform` and `curl_multi_poll`: libcurl 7.88's perform visits every
/// transfer on each call and its poll rebuilds a descriptor array of every socket, so each
/// wake-up cost as much as the transfers in flight.
///
/// Why several multi handles (`shards`, a transfer's easy handle always on the same one): each
/// keeps its own connections, and libcurl 7.88 walks every connection of the cache each time it
/// takes a finished transfer off its multi handle (looking for the one it used, to close it if it
/// was connect-only). With 10,000 connections in one cache that walk was a third of serve's CPU.
///
/// Not `Sendable`: one thread adds, removes and runs; other threads only wake it (`waker`).
package final class SocketMulti {
    /// One multi handle, its timer and the sockets libcurl watches through it.
    private final class Shard {
        let handle: UnsafeMutableRawPointer
        let index: Int
        /// Weak: libcurl may call back while the multi handles are freed in `deinit`.
        weak var owner: SocketMulti?
        /// When libcurl wants a call without a socket (`now()`'s milliseconds); nil: not before a socket is ready.
        var deadline: Int64?

        init(handle: UnsafeMutableRawPointer, index: Int, owner: SocketMulti) {
            self.handle = handle
            self.index = index
            self.owner = owner
        }
    }

    private let epoll: Int32
    private var shards: [Shard] = []
    /// Which shard's connection each watched socket is.
    private var shardOfSocket: [Int32: Int] = [:]
    /// Ends a `run` wait from any thread; its descriptor is watched beside libcurl's sockets.
    package let waker: EventWakeup
    /// What one epoll wait reports, kept between waits rather than allocated for each.
    private static let readiesPerWait: Int32 = 256
    private var descriptors = [Int32](repeating: 0, count: Int(readiesPerWait))
    private var events = [UInt32](repeating: 0, count: Int(readiesPerWait))

    /// `shards` multi handles (at least one).
    package init(shards count: Int) throws(HTTPClientError) {
        let epoll = dispatcher_epoll_create()
        let wakeup = dispatcher_eventfd()
        guard epoll >= 0, wakeup >= 0 else {
            let reason = String(cString: strerror(errno))
            if epoll >= 0 { close(epoll) }
            if wakeup >= 0 { close(wakeup) }
            throw HTTPClientError("epoll/eventfd: \(reason)")
        }
        self.epoll = epoll
        self.waker = EventWakeup(descriptor: wakeup)
        _ = dispatcher_epoll_watch(epoll, wakeup, dispatcher_epoll_in, 1)
        for index in 0..<max(1, count) {
            guard let handle = curl_multi_init() else { throw HTTPClientError("libcurl could not create a multi handle (out of memory)") }
            let shard = Shard(handle: handle, index: index, owner: self)
            shards.append(shard)
            guard dispatcher_curl_multi_set_callbacks(handle, Self.socketCallback, Self.timerCallback,
                                                      Unmanaged.passUnretained(shard).toOpaque()) == CURLM_OK else {
                throw HTTPClientError("libcurl's multi handle refused socket callbacks")
            }
        }
    }

    deinit {
        closeHandles()
        waker.close()
        close(epoll)
    }

    /// Frees the multi handles and the connections they keep, once their easy handles are off
    /// them; before a share those connections' TLS sessions live in goes (`TransferLoop`).
    package func closeHandles() {
        for shard in shards { curl_multi_cleanup(shard.handle) }
        shards.removeAll()
    }

    package var shardCount: Int { shards.count }

    package func add(_ easy: UnsafeMutableRawPointer, shard: Int) -> Bool { curl_multi_add_handle(shards[shard].handle, easy) == CURLM_OK }

    package func remove(_ easy: UnsafeMutableRawPointer, shard: Int) { curl_multi_remove_handle(shards[shard].handle, easy) }

    /// Waits up to `milliseconds` (less when a timer of libcurl's is due sooner) for a ready
    /// socket or a wake-up, runs libcurl on what is ready, and returns the transfers that
    /// finished. A failure of a multi handle itself is returned as its message.
    package func run(waitingUpTo milliseconds: Int32) -> Result<[(easy: UnsafeMutableRawPointer, code: CURLcode)], HTTPClientError> {
        var timeout = Int64(milliseconds)
        let before = Self.now()
        for shard in shards { if let deadline = shard.deadline { timeout = min(timeout, max(0, deadline - before)) } }
        let ready = dispatcher_epoll_wait(epoll, &descriptors, &events, Self.readiesPerWait, Int32(timeout))
        var running: Int32 = 0
        var failure = CURLM_OK
        for index in 0..<max(0, Int(ready)) {
            let socket = descriptors[index]
            if socket == waker.descriptor {
                waker.drain()
                continue
            }
            guard let shard = shardOfSocket[socket] else { continue }
            let bits = events[index]
            var action: Int32 = 0
            if bits & (dispatcher_epoll_in | dispatcher_epoll_hup | dispatcher_epoll_rdhup) != 0 { action |= CURL_CSELECT_IN }
            if bits & dispatcher_epoll_out != 0 { action |= CURL_CSELECT_OUT }
            if bits & dispatcher_epoll_err != 0 { action |= CURL_CSELECT_ERR }
            let code = curl_multi_socket_action(shards[shard].handle, socket, action, &running)
            if code != CURLM_OK { failure = code }
        }
        let now = Self.now()
        for shard in shards {
            guard let deadline = shard.deadline, deadline <= now else { continue }
            shard.deadline = nil // the timer callback may set the next one during the call
            let code = curl_multi_socket_action(shard.handle, dispatcher_curl_socket_timeout, 0, &running)
            if code != CURLM_OK { failure = code }
        }
        guard failure == CURLM_OK else { return .failure(HTTPClientError(String(cString: curl_multi_strerror(failure)))) }
        var finished: [(easy: UnsafeMutableRawPointer, code: CURLcode)] = []
        var queued: Int32 = 0
        for shard in shards {
            while let message = curl_multi_info_read(shard.handle, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                finished.append((easy, message.pointee.data.result))
            }
        }
        return .success(finished)
    }

    /// libcurl's socket callback: watch `socket` for what it names, or forget it.
    private func watch(_ socket: Int32, _ what: Int32, shard: Shard) {
        guard what != CURL_POLL_REMOVE else {
            _ = dispatcher_epoll_forget(epoll, socket)
            shardOfSocket[socket] = nil
            return
        }
        let watched = shardOfSocket.updateValue(shard.index, forKey: socket) != nil
        var events: UInt32 = 0
        if what == CURL_POLL_IN || what == CURL_POLL_INOUT { events |= dispatcher_epoll_in }
        if what == CURL_POLL_OUT || what == CURL_POLL_INOUT { events |= dispatcher_epoll_out }
        // Changed if watched already, added if not: one system call, not a failed change and
        // an add for every request's connection (libcurl says REMOVE when a connection goes back
        // to its cache). Should a socket have been closed and its number reused unsaid, or be
        // watched already, the other operation is tried.
        if dispatcher_epoll_watch(epoll, socket, events, watched ? 0 : 1) != 0 {
            _ = dispatcher_epoll_watch(epoll, socket, events, watched ? 1 : 0)
        }
    }

    private static let socketCallback: dispatcher_curl_socket_callback = { _, socket, what, context, _ in
        guard let context else { return 0 }
        let shard = Unmanaged<Shard>.fromOpaque(context).takeUnretainedValue()
        shard.owner?.watch(socket, what, shard: shard)
        return 0
    }

    private static let timerCallback: dispatcher_curl_timer_callback = { _, milliseconds, context in
        guard let context else { return 0 }
        Unmanaged<Shard>.fromOpaque(context).takeUnretainedValue().deadline = milliseconds < 0 ? nil : now() + Int64(milliseconds)
        return 0
    }

    /// Monotonic milliseconds, on the clock the rest of the project times with.
    private static func now() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }
}
