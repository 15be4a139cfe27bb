import CEventLoop
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
    let loop: ServerLoop

    /// Writes all of `bytes`; false once the peer or the server has gone.
    package func write(_ bytes: [UInt8]) -> Bool {
        !loop.isStopping && ServerLoop.writeAll(descriptor, bytes)
    }

    /// True once `stop()` was called: an endless writer should return.
    package var isServerStopping: Bool { loop.isStopping }
}

/// A small HTTP/1.1 server over POSIX sockets, with keep-alive: one event loop (`ServerLoop`,
/// epoll) holds every connection, so idle ones cost a buffer rather than a thread, and each
/// request runs its handler on a thread of its own. It serves the dashboard, the ingest API,
/// the test receivers and `dispatcher receive`.
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
                 gracePeriod: Double = 0, handler: @escaping Handler) throws {
        self.host = host
        self.maxBodyBytes = maxBodyBytes
        self.maxConnections = max(1, maxConnections)
        self.readTimeout = max(0.01, readTimeout)
        let (socket, boundPort) = try Self.listen(host: host, port: port)
        self.port = boundPort
        do {
            loop = try ServerLoop(listener: socket, limits: ServerLoop.Limits(
                maxBodyBytes: maxBodyBytes, maxConnections: max(1, maxConnections), maxRequestsInProgress: max(1, maxRequestsInProgress),
                readTimeout: max(0.01, readTimeout), gracePeriod: max(0, gracePeriod)), handler: handler)
        } catch {
            close(socket)
            throw error
        }
        loop.start()
    }

    deinit { stop() }

    /// Connections accepted so far: with keep-alive, far fewer than requests.
    package var connectionsAccepted: Int { loop.accepted.load(ordering: .relaxed) }

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
