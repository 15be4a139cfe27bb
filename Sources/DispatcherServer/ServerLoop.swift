import CLinux
import DispatcherModel
import Foundation
import Glibc
import Synchronization

/// The event loop under `HTTPServer`: one thread waits in `epoll_wait` for every connection,
/// so an idle keep-alive connection costs a buffer, not a thread. A complete request goes to the
/// immediate handler, if any, on this thread, and otherwise to a handler on another thread
/// (handlers may block: a database read, a commit, a scripted delay); its reply comes back
/// through `completions` (with an eventfd to wake the loop when the reply needs it), and the
/// loop writes what the replying thread could not. Heads and bodies must arrive within the
/// read timeout, which is also how long a connection may sit idle.
///
/// `@unchecked Sendable`: `connections` and everything in a `Connection` is touched only on
/// the loop thread; handler threads touch only `completions` (under its mutex), `inProgress`
/// (atomic) and, for a reply, the socket of a connection the loop has handed over (`handling`).
final class ServerLoop: @unchecked Sendable {
    struct Limits {
        var maxBodyBytes: Int
        var maxConnections: Int
        var maxRequestsInProgress: Int
        var readTimeout: Double
        var gracePeriod: Double
    }

    private final class Connection {
        enum State { case reading, handling, writing }
        let descriptor: Int32
        let generation: UInt64
        let remoteAddress: String
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        var state = State.reading
        var closeAfterWriting = false
        /// The peer hung up (reset or error): nothing more can be written.
        var peerGone = false
        /// The peer finished sending (half-close): its last request is still answered.
        var readClosed = false
        /// The epoll events the loop waits for on it.
        var watching = ServerLoop.readEvents
        /// When the request being read (or the response being written) must be done.
        var deadline: UInt64

        init(descriptor: Int32, generation: UInt64, remoteAddress: String, deadline: UInt64) {
            self.descriptor = descriptor
            self.generation = generation
            self.remoteAddress = remoteAddress
            self.deadline = deadline
        }
    }

    /// A handler's answer on its way back to the loop.
    enum Completion {
        /// The replying thread wrote `bytes` up to `written` itself; the loop writes the rest.
        case written([UInt8], written: Int, keepAlive: Bool)
        /// Bytes to write verbatim, then close.
        case raw([UInt8])
        case close
        case reset
        /// A stream reply's thread has finished with the connection.
        case streamed
    }

    private let listener: Int32
    private let epoll: Int32
    private let wakeup: EventWakeup
    private let limits: Limits
    private let handler: HTTPServer.Handler
    private let immediate: HTTPServer.ImmediateHandler?
    private let handlerThreads = HandlerThreads()
    private var connections: [Int32: Connection] = [:]
    /// The loop's one receive buffer, reused for every read (not allocated and zeroed per read).
    private var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    /// Deadlines are checked this often, not on every wake-up: with thousands of idle
    /// connections a scan per request would cost more than the requests.
    private static let sweepInterval: UInt64 = 100_000_000
    private var nextSweep: UInt64 = 0
    private var nextGeneration: UInt64 = 0
    /// Requests dispatched and not yet answered: up by the loop, down by whichever thread
    /// answers, before its answer is sent, so a client that hears it and sends again at once is
    /// not refused for its own answered request.
    private let inProgress = Atomic<Int>(0)
    /// Replies on their way back, and whether the loop has been woken for them since it last took them.
    private let completions = Mutex<(pending: [(descriptor: Int32, generation: UInt64, completion: Completion)], woken: Bool)>(([], false))
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    let accepted = Atomic<Int>(0)
    let wakeups = Atomic<Int>(0)

    init(listener: Int32, limits: Limits, immediate: HTTPServer.ImmediateHandler?, handler: @escaping HTTPServer.Handler) throws {
        self.listener = listener
        self.limits = limits
        self.immediate = immediate
        self.handler = handler
        epoll = dispatcher_epoll_create()
        let wakeup = dispatcher_eventfd()
        guard epoll >= 0, wakeup >= 0 else {
            if epoll >= 0 { close(epoll) }
            if wakeup >= 0 { close(wakeup) }
            throw ServerError("epoll/eventfd: \(String(cString: strerror(errno)))")
        }
        self.wakeup = EventWakeup(descriptor: wakeup)
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)
        watch(listener, events: dispatcher_epoll_in, add: true)
        watch(wakeup, events: dispatcher_epoll_in, add: true)
    }

    /// Runs the loop on a thread of its own until `stop()`.
    func start() {
        NamedThread.start("http.loop") { [self] in
            run()
            finished.signal()
        }
    }

    /// Stops accepting, lets requests in progress be answered for up to the grace period,
    /// closes every connection and the listener, and returns when the loop has ended. Safe to
    /// call more than once, from any thread.
    func stop() {
        guard !stopping.exchange(true, ordering: .sequentiallyConsistent) else { return }
        wake()
        finished.wait()
    }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// A blocking write of all of `bytes` (a `.stream` reply's socket); false once it fails.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    // MARK: - The loop

    private func run() {
        var descriptors = [Int32](repeating: 0, count: 256)
        var events = [UInt32](repeating: 0, count: 256)
        var stopDeadline: UInt64?
        var cutOff = false
        while true {
            let now = Self.now()
            if isStopping && stopDeadline == nil {
                stopDeadline = now + UInt64(limits.gracePeriod * 1e9)
                dispatcher_epoll_forget(epoll, listener)
                // Refuse new connections at once; the socket is closed when the loop ends.
                shutdown(listener, Int32(SHUT_RDWR))
            }
            if let stopDeadline {
                // No new requests: connections waiting for one go at once; those with a request
                // in progress get the grace period to be answered.
                for connection in Array(connections.values) where connection.state == .reading { drop(connection) }
                if now >= stopDeadline && !cutOff {
                    // Past it, their sockets are shut, so a handler writing a stream stops.
                    for connection in connections.values where connection.state == .handling { shutdown(connection.descriptor, Int32(SHUT_RDWR)) }
                    cutOff = true
                }
                if connections.isEmpty || now >= stopDeadline + 2_000_000_000 {
                    // A handler that never answered keeps its socket; nothing else is left open.
                    for connection in Array(connections.values) where connection.state != .handling { drop(connection) }
                    close(epoll)
                    // A reply that comes after this (a handler past the grace period, the
                    // ingest committer finishing) must not write to a descriptor number the
                    // process may have handed out again.
                    wakeup.close()
                    close(listener)
                    return
                }
            }
            let count = dispatcher_epoll_wait(epoll, &descriptors, &events, Int32(events.count), timeoutMilliseconds(now: now))
            wakeups.add(1, ordering: .relaxed)
            // First, so that a connection answered meanwhile is reading again (and its request
            // no longer counted in progress) before this pass dispatches anything.
            finishCompletions()
            if count < 0 && errno != EINTR { continue }
            for index in 0..<max(0, Int(count)) {
                let descriptor = descriptors[index]
                let flags = events[index]
                if descriptor == listener {
                    acceptAll()
                } else if descriptor == wakeup.descriptor {
                    wakeup.drain()
                } else if let connection = connections[descriptor] {
                    service(connection, flags: flags)
                }
            }
            let after = Self.now()
            if after >= nextSweep {
                expire(now: after)
                nextSweep = after + Self.sweepInterval
            }
        }
    }

    /// Until the next deadline sweep.
    private func timeoutMilliseconds(now: UInt64) -> Int32 {
        guard !connections.isEmpty else { return 1_000 }
        return Int32(max(1, (Int64(nextSweep) - Int64(now)) / 1_000_000 + 1))
    }

    private func acceptAll() {
        while true {
            var peer = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let descriptor = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    accept(listener, $0, &length)
                }
            }
            if descriptor < 0 { return }  // EAGAIN: nothing more waiting (or the listener failed)
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            guard connections.count < limits.maxConnections, !isStopping else {
                let refusal = HTTPServer.plain(503, "too many connections")
                _ = refusal.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                close(descriptor)
                continue
            }
            var noDelay: Int32 = 1
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            let remote = withUnsafePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPAddress($0)?.description ?? "?" }
            }
            nextGeneration += 1
            let connection = Connection(descriptor: descriptor, generation: nextGeneration, remoteAddress: remote,
                                        deadline: Self.now() + UInt64(limits.readTimeout * 1e9))
            connections[descriptor] = connection
            accepted.add(1, ordering: .relaxed)
            watch(descriptor, events: Self.readEvents, add: true)
        }
    }

    private func service(_ connection: Connection, flags: UInt32) {
        switch connection.state {
        case .handling:
            // Still watched while a handler runs, so answering costs no re-arming: whatever the
            // peer sends meanwhile (a pipelined request) is kept for later. A hang-up, an end of
            // input or a full buffer stops the watching until the answer is written.
            if flags & (dispatcher_epoll_hup | dispatcher_epoll_err) != 0 {
                // Reported even with no events asked for: the descriptor leaves the epoll set,
                // or the loop would spin until the handler answers (then it is closed).
                connection.peerGone = true
                dispatcher_epoll_forget(epoll, connection.descriptor)
            } else if receive(connection), connection.readClosed || connection.input.count > limits.maxBodyBytes + HTTPServer.maxHeadBytes {
                setWatch(connection, 0)
            }
        case .writing:
            if flags & (dispatcher_epoll_hup | dispatcher_epoll_err) != 0 { drop(connection) } else { flush(connection) }
        case .reading:
            guard receive(connection) else { return }
            dispatchOrHangUp(connection)
        }
    }

    /// Reads what the socket holds into the connection's input; false when the connection
    /// failed and was dropped.
    private func receive(_ connection: Connection) -> Bool {
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(connection.descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                connection.input.append(contentsOf: chunk[0..<count])
                // A short read took everything there was: no second call just to hear EAGAIN
                // (anything that arrives meanwhile wakes the loop again).
                if count < chunk.count || connection.input.count > limits.maxBodyBytes + HTTPServer.maxHeadBytes { return true }
                continue
            }
            if count == 0 {
                connection.readClosed = true
                return true
            }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return true }
            drop(connection)
            return false
        }
    }

    /// Dispatches a complete request; a half-closed peer with none left has nothing more to say.
    private func dispatchOrHangUp(_ connection: Connection) {
        dispatch(connection)
        if connection.readClosed && connection.state == .reading { drop(connection) }
    }

    /// Hands a complete request to the handler, or answers a malformed one; waits otherwise.
    private func dispatch(_ connection: Connection) {
        guard connection.state == .reading, !connection.input.isEmpty else { return }
        guard let headEnd = HTTPServer.headEnd(in: connection.input) else {
            if connection.input.count > HTTPServer.maxHeadBytes { answer(connection, HTTPServer.plain(431, "request head too large")) }
            return
        }
        guard var request = HTTPServer.parseHead(connection.input[..<headEnd], remoteAddress: connection.remoteAddress) else {
            return answer(connection, HTTPServer.plain(400, "malformed request"))
        }
        if request.header("Transfer-Encoding") != nil { return answer(connection, HTTPServer.plain(501, "chunked request bodies are not supported")) }
        let length = Int(request.header("Content-Length") ?? "0") ?? -1
        guard length >= 0 else { return answer(connection, HTTPServer.plain(400, "bad Content-Length")) }
        guard length <= limits.maxBodyBytes else { return answer(connection, HTTPServer.plain(413, "body too large")) }
        guard connection.input.count >= headEnd + 4 + length else { return }
        request.body = Array(connection.input[(headEnd + 4)..<(headEnd + 4 + length)])
        connection.input.removeFirst(headEnd + 4 + length)
        let keepAlive = request.version == "HTTP/1.1" && request.header("Connection")?.lowercased() != "close"
            && !isStopping && !connection.readClosed
        guard inProgress.load(ordering: .relaxed) < limits.maxRequestsInProgress else {
            return answer(connection, HTTPServer.serialize(.text(503, "busy: too many requests in progress\n"), keepAlive: false))
        }
        inProgress.add(1, ordering: .relaxed)
        connection.state = .handling
        let responder = HTTPServerResponder(loop: self, descriptor: connection.descriptor, generation: connection.generation, keepAlive: keepAlive)
        if let immediate, immediate(request, responder) { return }
        let handler = handler, arrived = request
        handlerThreads.run { responder.finish(handler(arrived)) }
    }

    /// A reply on its way back to the loop. A keep-alive response written in full leaves the
    /// loop only bookkeeping, which its next pass does (it wakes when the client sends again, or
    /// within the sweep interval), so it does not wake the loop: the ingest API's committer
    /// answers every commit's requests, and a wake-up per commit cost the process more CPU than
    /// the sends it spared the committer. Anything else wakes the loop, once until it takes the list.
    func complete(_ descriptor: Int32, _ generation: UInt64, _ completion: Completion) {
        var urgent = true
        if case .written(let bytes, let written, let keepAlive) = completion, keepAlive, written == bytes.count, !isStopping {
            urgent = false
        }
        let wakeNow = completions.withLock { state in
            state.pending.append((descriptor, generation, completion))
            guard urgent, !state.woken else { return false }
            state.woken = true
            return true
        }
        if wakeNow { wake() }
    }

    /// A request's answer is ready: it no longer counts in progress.
    func requestAnswered() { inProgress.subtract(1, ordering: .relaxed) }

    private func wake() { wakeup.wake() }

    private func finishCompletions() {
        let done = completions.withLock { state -> [(descriptor: Int32, generation: UInt64, completion: Completion)] in
            defer {
                state.pending.removeAll()
                state.woken = false
            }
            return state.pending
        }
        for entry in done {
            guard let connection = connections[entry.descriptor], connection.generation == entry.generation else { continue }
            connection.state = .reading
            if connection.peerGone { drop(connection); continue }
            switch entry.completion {
            case .streamed, .close:
                drop(connection)
            case .reset:
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(connection.descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                drop(connection)
            case .raw(let bytes):
                answer(connection, bytes)
            case .written(let bytes, let written, let keepAlive):
                answer(connection, bytes, keepOpen: keepAlive, alreadyWritten: written)
            }
        }
    }

    /// Writes `bytes`, then reads the next request (`keepOpen`) or closes.
    private func answer(_ connection: Connection, _ bytes: [UInt8], keepOpen: Bool = false, alreadyWritten: Int = 0) {
        connection.output = bytes
        connection.written = alreadyWritten
        connection.closeAfterWriting = !keepOpen || isStopping
        connection.state = .writing
        connection.deadline = Self.now() + UInt64(limits.readTimeout * 1e9)
        flush(connection)
    }

    private func flush(_ connection: Connection) {
        while connection.written < connection.output.count {
            let sent = connection.output[connection.written...].withUnsafeBytes {
                send(connection.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent > 0 {
                connection.written += sent
            } else if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                setWatch(connection, dispatcher_epoll_out)
                return
            } else if !(sent < 0 && errno == EINTR) {
                drop(connection)
                return
            }
        }
        if connection.closeAfterWriting {
            drop(connection)
            return
        }
        connection.output = []
        connection.state = .reading
        connection.deadline = Self.now() + UInt64(limits.readTimeout * 1e9)
        setWatch(connection, connection.readClosed ? 0 : Self.readEvents)
        dispatchOrHangUp(connection)  // a pipelined request may be waiting already
    }

    /// Closes connections whose request or response did not finish in time.
    private func expire(now: UInt64) {
        for connection in Array(connections.values) where connection.state != .handling && connection.deadline <= now {
            drop(connection)
        }
    }

    private func drop(_ connection: Connection) {
        dispatcher_epoll_forget(epoll, connection.descriptor)
        connections[connection.descriptor] = nil
        close(connection.descriptor)
    }

    private static let readEvents = dispatcher_epoll_in | dispatcher_epoll_rdhup

    /// Changes what the loop waits for on a connection, with a system call only when it differs.
    private func setWatch(_ connection: Connection, _ events: UInt32) {
        guard connection.watching != events else { return }
        connection.watching = events
        watch(connection.descriptor, events: events, add: false)
    }

    private func watch(_ descriptor: Int32, events: UInt32, add: Bool) {
        dispatcher_epoll_watch(epoll, descriptor, events, add ? 1 : 0)
    }

    private static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
