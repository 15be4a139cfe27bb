import CLinux
import DispatcherModel
import Foundation
import Glibc
import Synchronization

/// A request as the server read it.
package struct HTTPServerRequest: Sendable {
    package var method: String
    /// The request target: path and query (`/hooks?x=1`).
    package var target: String
    package var version: String
    package var headers: [HeaderField]
    package var body: [UInt8]
    /// The peer's address, for logs.
    package var remoteAddress: String

    package func header(_ name: String) -> String? {
        headers.first { $0.hasName(name) }?.value
    }

    /// The target up to its query, found by byte (as `Character`s it cost grapheme breaking).
    package var path: String {
        guard let query = target.utf8.firstIndex(of: UInt8(ascii: "?")) else { return target }
        return String(target[..<query])
    }

    /// The token of `Authorization: Bearer <token>` (the scheme in any case, spaces and tabs
    /// around the token dropped), read byte by byte: the ingest API reads it for every request.
    package var bearerToken: String? {
        guard var value = header("Authorization") else { return nil }
        return value.withUTF8 { bytes -> String? in
            guard bytes.count >= 7, zip(bytes[..<6], "bearer".utf8).allSatisfy(HeaderField.sameIgnoringASCIICase),
                  bytes[6] == UInt8(ascii: " ") else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[trimmingBlanks(7..<bytes.count, of: bytes)]), as: UTF8.self)
        }
    }
}

/// `range` of `bytes` without the spaces and tabs at either end: a header's name and value, and
/// a bearer token, are read without the blanks HTTP allows around them.
private func trimmingBlanks(_ range: Range<Int>, of bytes: UnsafeBufferPointer<UInt8>) -> Range<Int> {
    func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
    var start = range.lowerBound, end = range.upperBound
    while start < end, isBlank(bytes[start]) { start += 1 }
    while end > start, isBlank(bytes[end - 1]) { end -= 1 }
    return start..<end
}

/// A response to send.
package struct HTTPServerResponse: Sendable {
    package var status: Int
    package var headers: [HeaderField]
    package var body: [UInt8]

    package init(status: Int, headers: [HeaderField] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    package static func json(_ status: Int = 200, _ text: String) -> HTTPServerResponse {
        json(status, bytes: Array(text.utf8))
    }

    package static func json(_ status: Int = 200, bytes: [UInt8]) -> HTTPServerResponse {
        HTTPServerResponse(status: status, headers: [HeaderField("Content-Type", "application/json")], body: bytes)
    }

    package static func text(_ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPServerResponse {
        HTTPServerResponse(status: status, headers: [HeaderField("Content-Type", contentType)], body: Array(text.utf8))
    }
}

/// What the server does with a request.
package enum HTTPServerReply: Sendable {
    case respond(HTTPServerResponse)
    /// Close the connection without a response (a receiver that drops the request).
    case close
    /// Write these bytes verbatim and close (a receiver that speaks broken HTTP).
    case raw([UInt8])
    /// Abort the connection with a TCP reset instead of an orderly close.
    case reset
    /// Hand the connection to `writer` (a slow or endless response), then close it.
    case stream(@Sendable (HTTPServerStream) -> Void)
}

/// The connection a `.stream` reply writes to.
package struct HTTPServerStream: Sendable {
    let descriptor: Int32
    let loop: ServerLoop

    /// Writes all of `bytes`; false once the peer or the server has gone.
    package func write(_ bytes: [UInt8]) -> Bool {
        !loop.isStopping && ServerLoop.writeAll(descriptor, bytes)
    }

    /// True once `stop()` was called: an endless writer should return.
    package var isServerStopping: Bool { loop.isStopping }
}

/// Answers one request from whichever thread has the answer: the handler thread, or whatever
/// part an immediate handler passed the request to (the ingest API's committer). The reply is
/// written from that thread at once while the socket takes it; the loop writes any rest and
/// reads the connection's next request. Only the first reply counts, and a responder dropped
/// without one answers 500, so no connection is left waiting for an answer that never comes.
package final class HTTPServerResponder: Sendable {
    private let loop: ServerLoop
    private let descriptor: Int32
    private let generation: UInt64
    private let keepAlive: Bool
    private let answered = Atomic<Bool>(false)

    init(loop: ServerLoop, descriptor: Int32, generation: UInt64, keepAlive: Bool) {
        self.loop = loop
        self.descriptor = descriptor
        self.generation = generation
        self.keepAlive = keepAlive
    }

    deinit {
        if !answered.load(ordering: .acquiring) {
            finish(.respond(.text(500, "the request was dropped without an answer\n")))
        }
    }

    /// Answers with `response`, written from the calling thread while the socket takes it.
    package func reply(_ response: HTTPServerResponse) {
        finish(.respond(response))
    }

    /// Carries out `reply`; a `.stream` writer runs on the calling thread, which must be one
    /// that may block.
    func finish(_ reply: HTTPServerReply) {
        guard !answered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Before anything is sent: the client may send its next request the moment it hears this one.
        if case .stream = reply {} else { loop.requestAnswered() }
        switch reply {
        case .stream(let writer):
            // The connection is this thread's now (the loop does not touch it until the
            // completion): blocking writes, then the loop closes it.
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
            writer(HTTPServerStream(descriptor: descriptor, loop: loop))
            loop.requestAnswered()
            loop.complete(descriptor, generation, .streamed)
        case .respond(let response):
            // Sent from here at once while the socket takes it (it nearly always does): the
            // answer does not wait for the loop to wake, only the connection's next read does.
            let bytes = HTTPServer.serialize(response, keepAlive: keepAlive)
            let sent = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            loop.complete(descriptor, generation, .written(bytes, written: max(0, sent), keepAlive: keepAlive))
        case .close:
            loop.complete(descriptor, generation, .close)
        case .raw(let bytes):
            loop.complete(descriptor, generation, .raw(bytes))
        case .reset:
            loop.complete(descriptor, generation, .reset)
        }
    }
}

/// A small HTTP/1.1 server over POSIX sockets, with keep-alive: one event loop (`ServerLoop`,
/// epoll) holds every connection, so idle ones cost a buffer rather than a thread, and each
/// request runs its handler on a thread of its own, unless an immediate handler takes it on the
/// loop's thread (a hot route that must not pay for the hand-off). It serves the dashboard, the ingest API,
/// the test receivers and `dispatcher receive`.
///
/// ```swift
/// let server = try HTTPServer(host: "127.0.0.1", port: 0) { request in .respond(.json(200, "{}")) }
/// print(server.port)
/// server.stop()
/// ```
package final class HTTPServer: Sendable {
    package typealias Handler = @Sendable (HTTPServerRequest) -> HTTPServerReply
    /// Runs on the event loop's thread, so it must not block: it answers through the
    /// responder (now, or later from another thread) and returns true, or returns false
    /// without answering to have `Handler` run the request on a handler thread. It spares a
    /// hot route the two thread hand-offs a handler costs.
    package typealias ImmediateHandler = @Sendable (HTTPServerRequest, HTTPServerResponder) -> Bool

    package let host: String
    /// The bound port (the kernel's choice when 0 was asked for).
    package let port: Int
    /// Requests whose head or body exceeds these are answered 431/413 and the connection closed.
    package static let maxHeadBytes = 64 * 1024
    package let maxBodyBytes: Int
    /// Connections open at once; one more is answered 503 and closed at once.
    package let maxConnections: Int
    /// How long a request's head and body may take to arrive, and how long a kept-alive
    /// connection may sit idle: a client that trickles or says nothing is closed after it.
    package let readTimeout: Double

    private let loop: ServerLoop

    /// Binds and starts accepting at once. `host` is an IPv4 or IPv6 literal.
    /// `maxRequestsInProgress`: handlers running at once; past it a request is answered 503.
    /// `gracePeriod`: how long `stop()` lets requests in progress be answered.
    package init(host: String = "127.0.0.1", port: Int = 0, maxBodyBytes: Int = 16 * 1024 * 1024,
                 maxConnections: Int = 1_024, readTimeout: Double = 60, maxRequestsInProgress: Int = 1_024,
                 gracePeriod: Double = 0, immediate: ImmediateHandler? = nil, handler: @escaping Handler) throws {
        self.host = host
        self.maxBodyBytes = maxBodyBytes
        self.maxConnections = max(1, maxConnections)
        self.readTimeout = max(0.01, readTimeout)
        let (socket, boundPort) = try Self.listen(host: host, port: port)
        self.port = boundPort
        do {
            loop = try ServerLoop(listener: socket, limits: ServerLoop.Limits(
                maxBodyBytes: maxBodyBytes, maxConnections: max(1, maxConnections), maxRequestsInProgress: max(1, maxRequestsInProgress),
                readTimeout: max(0.01, readTimeout), gracePeriod: max(0, gracePeriod)), immediate: immediate, handler: handler)
        } catch {
            close(socket)
            throw error
        }
        loop.start()
    }

    deinit { stop() }

    /// Connections accepted so far: with keep-alive, far fewer than requests.
    package var connectionsAccepted: Int { loop.accepted.load(ordering: .relaxed) }

    /// Times the event loop has woken: a loop that spins shows here.
    package var loopWakeups: Int { loop.wakeups.load(ordering: .relaxed) }

    /// Stops accepting, lets requests in progress be answered for the grace period, then
    /// closes every connection; returns when that is done.
    package func stop() {
        loop.stop()
    }

    private static func listen(host: String, port: Int) throws -> (Int32, Int) {
        guard let address = IPAddress(host) else { throw ServerError("'\(host)' is not an IP address") }
        let family = address.bytes.count == 4 ? AF_INET : AF_INET6
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw ServerError("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        let length: socklen_t
        if family == AF_INET {
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeMutableBytes(of: &v4.sin_addr) { $0.copyBytes(from: address.bytes) }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v4, as: sockaddr_in.self) }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else {
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeMutableBytes(of: &v6.sin6_addr) { $0.copyBytes(from: address.bytes) }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v6, as: sockaddr_in6.self) }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, Glibc.listen(descriptor, 512) == 0 else {
            let message = String(cString: strerror(errno))
            close(descriptor)
            throw ServerError("cannot listen on \(host):\(port): \(message)")
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(descriptor, $0, &actualLength) }
        }
        let boundPort = withUnsafeBytes(of: &actual) { bytes -> UInt16 in
            family == AF_INET
                ? UInt16(bigEndian: bytes.load(as: sockaddr_in.self).sin_port)
                : UInt16(bigEndian: bytes.load(as: sockaddr_in6.self).sin6_port)
        }
        return (descriptor, Int(boundPort))
    }

    /// Where the head ends: the offset of the blank line's CR LF CR LF, or nil.
    static func headEnd(in input: [UInt8]) -> Int? {
        input.withUnsafeBufferPointer { bytes in
            guard bytes.count >= 4 else { return nil }
            var index = 0
            while index <= bytes.count - 4 {
                if bytes[index + 3] != 10 {
                    index += 1
                } else if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13 {
                    return index
                } else {
                    index += 1
                }
            }
            return nil
        }
    }

    /// Parses a request head (without its blank line) byte by byte: the request line, then
    /// `name: value` lines with spaces and tabs trimmed. Nil when it is not HTTP/1.x.
    static func parseHead(_ head: ArraySlice<UInt8>, remoteAddress: String) -> HTTPServerRequest? {
        head.withUnsafeBufferPointer { bytes -> HTTPServerRequest? in
            func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
            // The lines, split at CR LF. This list and the request line's words are given their
            // usual size at once: grown from empty, they cost five allocations a request.
            var lines: [Range<Int>] = []
            lines.reserveCapacity(16)
            var start = 0
            var index = 0
            while index + 1 < bytes.count {
                if bytes[index] == 13 && bytes[index + 1] == 10 {
                    lines.append(start..<index)
                    index += 2
                    start = index
                } else {
                    index += 1
                }
            }
            lines.append(start..<bytes.count)
            // The request line: three words separated by spaces.
            var words: [Range<Int>] = []
            words.reserveCapacity(3)
            var wordStart: Int?
            for position in lines[0] {
                if bytes[position] == 0x20 {
                    if let begun = wordStart { words.append(begun..<position) }
                    wordStart = nil
                } else if wordStart == nil {
                    wordStart = position
                }
            }
            if let begun = wordStart { words.append(begun..<lines[0].upperBound) }
            guard words.count == 3 else { return nil }
            let version = text(words[2])
            guard version.hasPrefix("HTTP/1.") else { return nil }
            var headers: [HeaderField] = []
            headers.reserveCapacity(lines.count - 1)
            for line in lines.dropFirst() {
                guard let colon = line.first(where: { bytes[$0] == UInt8(ascii: ":") }) else { return nil }
                headers.append(HeaderField(text(trimmingBlanks(line.lowerBound..<colon, of: bytes)),
                                           text(trimmingBlanks((colon + 1)..<line.upperBound, of: bytes))))
            }
            return HTTPServerRequest(method: text(words[0]), target: text(words[1]), version: version,
                                     headers: headers, body: [], remoteAddress: remoteAddress)
        }
    }

    static func serialize(_ response: HTTPServerResponse, keepAlive: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + response.headers.count * 48 + response.body.count)
        // Appended piece by piece, numbers digit by digit: interpolated lines cost a string each.
        func append(_ text: String) { bytes.append(contentsOf: text.utf8) }
        func append(decimal: Int) {
            guard decimal > 9 else { return bytes.append(UInt8(ascii: "0") + UInt8(max(0, decimal))) }
            append(decimal: decimal / 10)
            bytes.append(UInt8(ascii: "0") + UInt8(decimal % 10))
        }
        append("HTTP/1.1 ")
        append(decimal: response.status)
        append(" ")
        append(reasonPhrase(response.status))
        append("\r\n")
        for header in response.headers where !header.hasName("Content-Length") && !header.hasName("Connection") {
            append(header.name)
            append(": ")
            append(header.value)
            append("\r\n")
        }
        append("Content-Length: ")
        append(decimal: response.body.count)
        append("\r\n")
        if !keepAlive { append("Connection: close\r\n") }
        append("\r\n")
        bytes.append(contentsOf: response.body)
        return bytes
    }

    static func plain(_ status: Int, _ message: String) -> [UInt8] {
        serialize(.text(status, message + "\n"), keepAlive: false)
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 413: return "Content Too Large"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status \(status)"
        }
    }
}

/// A server that could not start.
package struct ServerError: Error, CustomStringConvertible {
    package let description: String
    init(_ description: String) { self.description = description }
}
