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

    package var path: String { String(target.prefix { $0 != "?" }) }
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
        HTTPServerResponse(status: status, headers: [HeaderField("Content-Type", "application/json")], body: Array(text.utf8))
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
    let server: HTTPServer

    /// Writes all of `bytes`; false once the peer or the server has gone.
    package func write(_ bytes: [UInt8]) -> Bool {
        !server.isStopping && server.write(descriptor, bytes)
    }

    /// True once `stop()` was called: an endless writer should return.
    package var isServerStopping: Bool { server.isStopping }
}

/// A small HTTP/1.1 server over POSIX sockets, with keep-alive and a thread per connection.
/// It serves the test receiver and the development receiver (`dispatcher receive`); it is
/// meant for loopback use, not the open internet.
///
/// ```swift
/// let server = try HTTPServer(host: "127.0.0.1", port: 0) { request in .respond(.json(200, "{}")) }
/// print(server.port)
/// server.stop()
/// ```
package final class HTTPServer: Sendable {
    package typealias Handler = @Sendable (HTTPServerRequest) -> HTTPServerReply

    package let host: String
    /// The bound port (the kernel's choice when 0 was asked for).
    package let port: Int
    /// Requests whose head or body exceeds these are answered 431/413 and the connection closed.
    package static let maxHeadBytes = 64 * 1024
    package let maxBodyBytes: Int
    /// Connections open at once; one more is answered 503 and closed at once. Each holds a
    /// thread while it reads, so this bounds the threads a flood of idle sockets can take.
    package let maxConnections: Int
    /// How long a request's head and body may take to arrive, and how long a kept-alive
    /// connection may sit idle: a client that trickles or says nothing is closed after it.
    package let readTimeout: Double

    private let listener: Int32
    private let handler: Handler
    private let connections = Mutex<Set<Int32>>([])
    private let isStopped = Atomic<Bool>(false)
    private let accepted = Atomic<Int>(0)
    private let acceptLoopDone = DispatchSemaphore(value: 0)

    /// Binds and starts accepting at once. `host` is an IPv4 or IPv6 literal.
    package init(host: String = "127.0.0.1", port: Int = 0, maxBodyBytes: Int = 16 * 1024 * 1024,
                 maxConnections: Int = 1_024, readTimeout: Double = 60, handler: @escaping Handler) throws {
        self.host = host
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
        self.maxConnections = max(1, maxConnections)
        self.readTimeout = max(0.01, readTimeout)
        let (socket, boundPort) = try Self.listen(host: host, port: port)
        self.listener = socket
        self.port = boundPort
        DispatchQueue(label: "http-server.accept.\(boundPort)").async { [self] in
            acceptLoop()
            acceptLoopDone.signal()
        }
    }

    deinit { stop() }

    /// Connections accepted so far: with keep-alive, far fewer than requests.
    package var connectionsAccepted: Int { accepted.load(ordering: .relaxed) }

    /// Stops accepting and closes every open connection. Handlers still running finish on
    /// their own; what they write goes nowhere.
    package func stop() {
        guard !isStopped.exchange(true, ordering: .sequentiallyConsistent) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        acceptLoopDone.wait()
        close(listener)
        connections.withLock { open in
            for descriptor in open { shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
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

    private func acceptLoop() {
        while !isStopped.load(ordering: .sequentiallyConsistent) {
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connection = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listener, $0, &peerLength) }
            }
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            let remote = withUnsafePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { IPAddress($0)?.description ?? "?" }
            }
            var noDelay: Int32 = 1
            setsockopt(connection, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
            let admitted = connections.withLock { open -> Bool in
                guard open.count < maxConnections else { return false }
                open.insert(connection)
                return true
            }
            guard admitted else {
                write(connection, Self.plain(503, "too many connections"))
                close(connection)
                continue
            }
            accepted.add(1, ordering: .relaxed)
            DispatchQueue(label: "http-server.connection").async { [self] in
                serve(connection: connection, remoteAddress: remote)
                connections.withLock { _ = $0.remove(connection) }
                close(connection)
            }
        }
    }

    /// Reads requests off one connection until it closes or asks to.
    private func serve(connection: Int32, remoteAddress: String) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        // Each request (and each idle wait for the next) must arrive within `readTimeout`
        // however it is sliced: every recv waits at most what is left of it.
        var deadline = DispatchTime.now().uptimeNanoseconds
        func fill() -> Bool {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { return false }
            let left = deadline - now
            var timeout = timeval(tv_sec: Int(left / 1_000_000_000), tv_usec: Int(max(1_000, (left % 1_000_000_000) / 1_000)))
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            buffer.append(contentsOf: chunk[0..<count])
            return true
        }
        while !isStopped.load(ordering: .relaxed) {
            deadline = DispatchTime.now().uptimeNanoseconds + UInt64(readTimeout * 1_000_000_000)
            // The head: up to the blank line.
            var headEnd: Int?
            while headEnd == nil {
                headEnd = Self.find([13, 10, 13, 10], in: buffer)
                if headEnd == nil {
                    if buffer.count > Self.maxHeadBytes { write(connection, Self.plain(431, "request head too large")); return }
                    guard fill() else { return }
                }
            }
            guard let headEnd, var request = Self.parseHead(buffer[..<headEnd], remoteAddress: remoteAddress) else {
                write(connection, Self.plain(400, "malformed request"))
                return
            }
            buffer.removeFirst(headEnd + 4)
            if request.header("Transfer-Encoding") != nil {
                write(connection, Self.plain(501, "chunked request bodies are not supported"))
                return
            }
            let length = Int(request.header("Content-Length") ?? "0") ?? -1
            guard length >= 0 else { write(connection, Self.plain(400, "bad Content-Length")); return }
            guard length <= maxBodyBytes else { write(connection, Self.plain(413, "body too large")); return }
            while buffer.count < length { guard fill() else { return } }
            request.body = Array(buffer[..<length])
            buffer.removeFirst(length)

            let keepAlive = request.version == "HTTP/1.1" && request.header("Connection")?.lowercased() != "close"
            switch handler(request) {
            case .close:
                return
            case .raw(let bytes):
                write(connection, bytes)
                return
            case .reset:
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(connection, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                return
            case .stream(let writer):
                writer(HTTPServerStream(descriptor: connection, server: self))
                return
            case .respond(let response):
                guard write(connection, Self.serialize(response, keepAlive: keepAlive)), keepAlive else { return }
            }
        }
    }

    var isStopping: Bool { isStopped.load(ordering: .relaxed) }

    @discardableResult
    fileprivate func write(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return start }
        }
        return nil
    }

    static func parseHead(_ head: ArraySlice<UInt8>, remoteAddress: String) -> HTTPServerRequest? {
        let text = String(decoding: head, as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: true)
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else { return nil }
        var headers: [HeaderField] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            headers.append(HeaderField(String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                                       String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        return HTTPServerRequest(method: String(requestLine[0]), target: String(requestLine[1]), version: String(requestLine[2]),
                                 headers: headers, body: [], remoteAddress: remoteAddress)
    }

    static func serialize(_ response: HTTPServerResponse, keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(response.status) \(reasonPhrase(response.status))\r\n"
        for header in response.headers where header.name.lowercased() != "content-length" && header.name.lowercased() != "connection" {
            head += "\(header.name): \(header.value)\r\n"
        }
        head += "Content-Length: \(response.body.count)\r\n"
        head += keepAlive ? "" : "Connection: close\r\n"
        head += "\r\n"
        return Array(head.utf8) + response.body
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
