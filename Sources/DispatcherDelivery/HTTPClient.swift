import CCurl
import Glibc
import DispatcherModel
import Foundation

/// One POST as the worker sends it.
package struct HTTPRequest: Sendable {
    package var url: String
    var headers: [HeaderField]
    var body: [UInt8]
    var timeoutSeconds: Double
    var connectTimeoutSeconds: Double
    var tls: RequestTLS?
    /// The proxy to go through (`http://[user:password@]host:port`), resolved; nil for none.
    package var proxy: String?
    /// Offer HTTP/2 in the TLS handshake; HTTP/1.1 otherwise.
    var http2: Bool

    package init(url: String, headers: [HeaderField], body: [UInt8], timeoutSeconds: Double, connectTimeoutSeconds: Double,
                 tls: RequestTLS? = nil, proxy: String? = nil, http2: Bool = false) {
        self.url = url
        self.headers = headers
        self.body = body
        self.timeoutSeconds = timeoutSeconds
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.tls = tls
        self.proxy = proxy
        self.http2 = http2
    }
}

/// An endpoint's TLS settings for one request, with `env:` values read.
package struct RequestTLS: Sendable {
    /// `tls` with its `env:` certificate and key read now; throws naming a variable that is not set.
    package static func resolving(_ tls: EndpointTLS?) throws(HTTPClientError) -> RequestTLS? {
        guard let tls else { return nil }
        func material(_ value: String?, _ what: String) throws(HTTPClientError) -> Material? {
            guard let value else { return nil }
            guard let reference = EnvironmentReference(value) else { return .file(value) }
            guard let pem = reference.value, !pem.isEmpty else {
                throw HTTPClientError("the TLS \(what) comes from environment variable \(reference.name), which is not set")
            }
            return .pem(Array(pem.utf8))
        }
        return RequestTLS(clientCertificate: try material(tls.clientCertificate, "client certificate"),
                          clientKey: try material(tls.clientKey, "client key"), caFile: tls.caFile, pinnedPublicKey: tls.pinnedPublicKey)
    }

    /// A PEM certificate or key: a file libcurl reads, or the PEM text itself.
    package enum Material: Sendable {
        case file(String)
        case pem([UInt8])
    }

    var clientCertificate: Material?
    var clientKey: Material?
    var caFile: String?
    var pinnedPublicKey: String?

    package init(clientCertificate: Material?, clientKey: Material?, caFile: String?, pinnedPublicKey: String?) {
        self.clientCertificate = clientCertificate
        self.clientKey = clientKey
        self.caFile = caFile
        self.pinnedPublicKey = pinnedPublicKey
    }
}

/// What came back, or why nothing acceptable did.
package struct HTTPExchange: Sendable {
    package var status: Int?
    package var headers: [HeaderField]
    package var body: [UInt8]
    package var bodyTruncated: Bool
    package var errorKind: AttemptErrorKind?
    package var errorMessage: String?
    package var durationMicroseconds: Int64

    package func header(_ name: String) -> String? {
        headers.last { $0.hasName(name) }?.value
    }

    package init(status: Int? = nil, headers: [HeaderField], body: [UInt8], bodyTruncated: Bool, errorKind: AttemptErrorKind? = nil, errorMessage: String? = nil, durationMicroseconds: Int64) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTruncated = bodyTruncated
        self.errorKind = errorKind
        self.errorMessage = errorMessage
        self.durationMicroseconds = durationMicroseconds
    }
}

/// Why an HTTP client could not be made: libcurl failed to start or lacks a feature we rely on.
package struct HTTPClientError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// Client settings shared by every worker.
package struct HTTPClientConfiguration: Sendable {
    /// Response bodies beyond this many bytes are not read; the attempt records the prefix.
    var responseBodyCap: Int = 64 * 1024
    var responseHeaderCap = ResponseHeaderCap()
    var userAgent: String = "dispatcher/\(DispatcherVersion.current)"
    var destinationPolicy: DestinationPolicy = DestinationPolicy()
    var urlPolicy: URLPolicy = URLPolicy()
    /// The proxy for endpoints that name none (`env:NAME` allowed); nil for none.
    var proxy: String?

    package init(responseBodyCap: Int = 64 * 1024, responseHeaderCap: ResponseHeaderCap = ResponseHeaderCap(),
                 userAgent: String = "dispatcher/\(DispatcherVersion.current)", destinationPolicy: DestinationPolicy = DestinationPolicy(),
                 urlPolicy: URLPolicy = URLPolicy(), proxy: String? = nil) {
        self.responseBodyCap = responseBodyCap
        self.responseHeaderCap = responseHeaderCap
        self.userAgent = userAgent
        self.destinationPolicy = destinationPolicy
        self.urlPolicy = urlPolicy
        self.proxy = proxy
    }
}

/// One libcurl easy handle: the only place that sets up and reads `curl_easy_*` transfers
/// (`TransferLoop` drives them through a multi handle; `post` performs one directly).
///
/// One thread uses a client at a time (so it is not `Sendable`); the handle keeps connections
/// alive between requests to the same host.
package final class HTTPClient {
    package let handle: UnsafeMutableRawPointer
    private let configuration: HTTPClientConfiguration
    /// libcurl writes its message here while a transfer runs, so it lives as long as the handle.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// `curl_global_init`'s result, once per process.
    private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_DEFAULT))

    /// Where an empty body "is": libcurl copies zero bytes from it.
    nonisolated(unsafe) private static let noBytes = UnsafePointer<UInt8>(UnsafeMutablePointer<UInt8>.allocate(capacity: 1))

    /// Fails when libcurl cannot be set up, or cannot enforce the rules every request relies on:
    /// a libcurl older than 7.85 does not know `CURLOPT_PROTOCOLS_STR`, and without it the
    /// https-only rule would hold for the first URL only, not for anything libcurl connects to next.
    package init(configuration: HTTPClientConfiguration) throws(HTTPClientError) {
        guard HTTPClient.globalInit == CURLE_OK else {
            throw HTTPClientError("libcurl could not be initialised: \(String(cString: curl_easy_strerror(HTTPClient.globalInit)))")
        }
        guard let handle = curl_easy_init() else { throw HTTPClientError("libcurl could not create a handle (out of memory)") }
        let protocols = dispatcher_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "https")
        guard protocols == CURLE_OK else {
            curl_easy_cleanup(handle)
            throw HTTPClientError("this libcurl cannot restrict protocols (CURLOPT_PROTOCOLS_STR: \(String(cString: curl_easy_strerror(protocols)))); libcurl 7.85 or newer is required")
        }
        self.handle = handle
        self.configuration = configuration
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    package var userAgent: String { configuration.userAgent }

    /// A libcurl share handle whose TLS sessions this client's connections resume and add to,
    /// so a new connection to a receiver (after its keep-alive ran out) costs an abbreviated
    /// handshake. Only for clients one thread drives together (`TransferLoop`): the share has
    /// no locks.
    package var tlsSessions: UnsafeMutableRawPointer?

    /// The proxy for endpoints that name none.
    package var defaultProxy: String? { configuration.proxy }

    package var destinationPolicy: DestinationPolicy { configuration.destinationPolicy }

    /// A request set up on this client's handle, not yet finished.
    package final class Transfer {
        fileprivate let context: TransferContext
        fileprivate let headerList: UnsafeMutablePointer<curl_slist>?
        fileprivate let start: UInt64

        fileprivate init(context: TransferContext, headerList: UnsafeMutablePointer<curl_slist>?, start: UInt64) {
            self.context = context
            self.headerList = headerList
            self.start = start
        }
    }

    /// What `begin` did: a transfer ready to perform, or the answer for a request never sent.
    package enum Start {
        case ready(Transfer)
        case refused(HTTPExchange)
    }

    package func post(_ request: HTTPRequest) -> HTTPExchange {
        switch begin(request) {
        case .refused(let exchange): return exchange
        case .ready(let transfer): return finish(transfer, code: curl_easy_perform(handle))
        }
    }

    /// libcurl's receive buffer, which an easy handle allocates at its first transfer and keeps
    /// (16 KiB unless told). A webhook's answer is a few hundred bytes, and a larger one only
    /// takes more reads; with 10,000 transfers in flight the default cost 38 MB of RSS
    /// (README "Performance").
    static let receiveBufferBytes = 2_048

    /// Sets the handle up for `request`: performed by `curl_easy_perform` (`post`) or by a multi
    /// handle, then handed to `finish`. The body is copied into the handle, so the caller's
    /// buffer need not outlive this call.
    package func begin(_ request: HTTPRequest) -> Start {
        // The config refuses such URLs already; this holds for endpoints stored by other means.
        // (A scheme check, not a URL parse: it runs for every request. libcurl's protocol list
        // below enforces the same.)
        if configuration.urlPolicy.requireHTTPS && !request.url.utf8.starts(with: "https://".utf8) {
            return .refused(HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: .blocked,
                                         errorMessage: "'\(request.url)' is not https; set require_https to false to allow plain http (tests and local development only)",
                                         durationMicroseconds: 0))
        }
        if request.proxy != nil, let refusal = ProxiedDestinations.shared.judge(request.url, policy: configuration.destinationPolicy) {
            return .refused(HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: refusal.kind,
                                         errorMessage: refusal.message + "; nothing was sent to the proxy", durationMicroseconds: 0))
        }
        let context = TransferContext(bodyCap: configuration.responseBodyCap, headerCap: configuration.responseHeaderCap,
                                      policy: configuration.destinationPolicy)
        let opaque = Unmanaged.passUnretained(context).toOpaque()

        curl_easy_reset(handle)
        // Stored endpoints were checked when written; this holds for any other way in.
        if let bad = request.headers.first(where: { !HeaderRules.isSendable(name: $0.name, value: $0.value) }) {
            return .refused(HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: .blocked,
                                         errorMessage: "header \(bad.name.debugDescription) has a character no header may hold; nothing was sent",
                                         durationMicroseconds: 0))
        }
        if request.url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            return .refused(HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: .blocked,
                                         errorMessage: "the URL contains a space or control character; nothing was sent", durationMicroseconds: 0))
        }
        var headerList: UnsafeMutablePointer<curl_slist>?
        for index in 0...request.headers.count {
            // The last line, a name with nothing after its colon, keeps libcurl from sending
            // `Expect: 100-continue` for larger bodies and waiting for it.
            let (name, separator, value) = index < request.headers.count
                ? (request.headers[index].name, ": ", request.headers[index].value) : ("Expect", ":", "")
            // Written, NUL-terminated, into a temporary buffer (on the stack for any usual
            // header) that libcurl copies: no Swift string per header per request.
            let length = name.utf8.count + separator.utf8.count + value.utf8.count
            let appended = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length + 1) { line in
                var end = line.initialize(fromContentsOf: name.utf8)
                end = line[end...].initialize(fromContentsOf: separator.utf8)
                end = line[end...].initialize(fromContentsOf: value.utf8)
                line[end] = 0
                return line.withMemoryRebound(to: CChar.self) { curl_slist_append(headerList, $0.baseAddress) }
            }
            // A failed append returns nil and keeps the list: sending without, say, the
            // signature header is not an option.
            guard let appended else {
                curl_slist_free_all(headerList)
                return .refused(HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: .other,
                                             errorMessage: "libcurl could not add a request header (out of memory)", durationMicroseconds: 0))
            }
            headerList = appended
        }

        errorBuffer[0] = 0
        // Every option is checked: one libcurl refuses (an old build, memory) must not leave a
        // request that ignores the protocol list, the timeouts or the destination guard.
        var refusal: (option: StaticString, code: CURLcode)?
        func check(_ code: CURLcode, _ option: StaticString) {
            if code != CURLE_OK && refusal == nil { refusal = (option, code) }
        }
        check(dispatcher_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "CURLOPT_ERRORBUFFER")
        check(setString(CURLOPT_URL, request.url), "CURLOPT_URL")
        check(setString(CURLOPT_PROTOCOLS_STR, configuration.urlPolicy.requireHTTPS ? "https" : "http,https"),
              "CURLOPT_PROTOCOLS_STR")
        check(dispatcher_curl_set_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
        check(dispatcher_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 0), "CURLOPT_FOLLOWLOCATION")
        check(dispatcher_curl_set_long(handle, CURLOPT_POST, 1), "CURLOPT_POST")
        // The size first: COPYPOSTFIELDS copies that many bytes.
        check(dispatcher_curl_set_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count)), "CURLOPT_POSTFIELDSIZE_LARGE")
        check(request.body.withUnsafeBufferPointer { body in
            dispatcher_curl_set_pointer(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: body.baseAddress ?? Self.noBytes))
        }, "CURLOPT_COPYPOSTFIELDS")
        check(dispatcher_curl_set_slist(handle, CURLOPT_HTTPHEADER, headerList), "CURLOPT_HTTPHEADER")
        check(setString(CURLOPT_USERAGENT, configuration.userAgent), "CURLOPT_USERAGENT")
        check(dispatcher_curl_set_long(handle, CURLOPT_TIMEOUT_MS, Int(request.timeoutSeconds * 1000)), "CURLOPT_TIMEOUT_MS")
        check(dispatcher_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeoutSeconds * 1000)), "CURLOPT_CONNECTTIMEOUT_MS")
        check(dispatcher_curl_set_long(handle, CURLOPT_TCP_KEEPALIVE, 1), "CURLOPT_TCP_KEEPALIVE")
        check(dispatcher_curl_set_long(handle, CURLOPT_BUFFERSIZE, Self.receiveBufferBytes), "CURLOPT_BUFFERSIZE")
        // HTTP/1.1 unless the endpoint offers HTTP/2: for webhook-sized requests kept-alive
        // HTTP/1.1 connections cost both ends less (README "Performance").
        check(dispatcher_curl_set_long(handle, CURLOPT_HTTP_VERSION, request.http2 ? Int(CURL_HTTP_VERSION_2TLS) : Int(CURL_HTTP_VERSION_1_1)),
              "CURLOPT_HTTP_VERSION")
        if let tlsSessions { check(dispatcher_curl_set_pointer(handle, CURLOPT_SHARE, tlsSessions), "CURLOPT_SHARE") }
        check(dispatcher_curl_set_data_callback(handle, CURLOPT_WRITEFUNCTION, receiveBody), "CURLOPT_WRITEFUNCTION")
        check(dispatcher_curl_set_pointer(handle, CURLOPT_WRITEDATA, opaque), "CURLOPT_WRITEDATA")
        check(dispatcher_curl_set_data_callback(handle, CURLOPT_HEADERFUNCTION, receiveHeader), "CURLOPT_HEADERFUNCTION")
        check(dispatcher_curl_set_pointer(handle, CURLOPT_HEADERDATA, opaque), "CURLOPT_HEADERDATA")
        check(dispatcher_curl_set_opensocket_callback(handle, openCheckedSocket), "CURLOPT_OPENSOCKETFUNCTION")
        check(dispatcher_curl_set_pointer(handle, CURLOPT_OPENSOCKETDATA, opaque), "CURLOPT_OPENSOCKETDATA")
        if let tls = request.tls {
            func material(_ value: RequestTLS.Material, file: CURLoption, blob: CURLoption, _ names: (StaticString, StaticString)) {
                switch value {
                case .file(let path): check(setString(file, path), names.0)
                case .pem(let bytes): check(bytes.withUnsafeBytes { dispatcher_curl_set_blob(handle, blob, $0.baseAddress, $0.count) }, names.1)
                }
            }
            if let certificate = tls.clientCertificate {
                material(certificate, file: CURLOPT_SSLCERT, blob: CURLOPT_SSLCERT_BLOB, ("CURLOPT_SSLCERT", "CURLOPT_SSLCERT_BLOB"))
            }
            if let key = tls.clientKey {
                material(key, file: CURLOPT_SSLKEY, blob: CURLOPT_SSLKEY_BLOB, ("CURLOPT_SSLKEY", "CURLOPT_SSLKEY_BLOB"))
            }
            if let caFile = tls.caFile {
                // This file alone: not the system's directory of authorities besides.
                check(setString(CURLOPT_CAINFO, caFile), "CURLOPT_CAINFO")
                check(dispatcher_curl_set_string(handle, CURLOPT_CAPATH, nil), "CURLOPT_CAPATH")
            }
            if let pins = tls.pinnedPublicKey { check(setString(CURLOPT_PINNEDPUBLICKEY, pins), "CURLOPT_PINNEDPUBLICKEY") }
        }
        if let proxy = request.proxy {
            // Through a proxy libcurl connects to the proxy alone, whose address the operator
            // named: the socket check lets it be. The final destination was judged above.
            context.viaProxy = true
            check(setString(CURLOPT_PROXY, proxy), "CURLOPT_PROXY")
            // CONNECT for plain http as well, so the proxy relays bytes and never sees a request
            // it could rewrite.
            check(dispatcher_curl_set_long(handle, CURLOPT_HTTPPROXYTUNNEL, 1), "CURLOPT_HTTPPROXYTUNNEL")
        } else {
            // No proxy from the environment (http_proxy, HTTPS_PROXY...) either: only the config names one.
            check(setString(CURLOPT_NOPROXY, "*"), "CURLOPT_NOPROXY")
        }
        if let refusal {
            curl_slist_free_all(headerList)
            return .refused(HTTPExchange(status: nil, headers: [], body: [], bodyTruncated: false, errorKind: .other,
                                         errorMessage: "libcurl refused \(refusal.option): \(String(cString: curl_easy_strerror(refusal.code)))",
                                         durationMicroseconds: 0))
        }
        return .ready(Transfer(context: context, headerList: headerList, start: DispatchTime.now().uptimeNanoseconds))
    }

    /// Connects as `request` would (destination guard, proxy, TLS settings) and stops after
    /// the handshake: for `dispatcher doctor`. Answers the failure as an exchange would carry
    /// it, or nil, and the receiver certificate's expiry when libcurl reported one.
    package func probe(_ request: HTTPRequest) -> (failure: HTTPExchange?, certificateExpiry: Date?) {
        switch begin(request) {
        case .refused(let exchange):
            return (exchange, nil)
        case .ready(let transfer):
            _ = dispatcher_curl_set_long(handle, CURLOPT_CONNECT_ONLY, 1)
            _ = dispatcher_curl_set_long(handle, CURLOPT_CERTINFO, 1)
            let code = curl_easy_perform(handle)
            var expiry: Date?
            if code == CURLE_OK, let info = dispatcher_curl_certinfo(handle), info.pointee.num_of_certs > 0,
               var line = info.pointee.certinfo?[0] {
                // The first certificate is the receiver's own: "Expire date:Jan  1 00:00:00 2027 GMT".
                while true {
                    let text = String(cString: line.pointee.data)
                    if text.hasPrefix("Expire date:") { expiry = Self.certificateDate(String(text.dropFirst("Expire date:".count))) }
                    guard let next = line.pointee.next else { break }
                    line = next
                }
            }
            let exchange = finish(transfer, code: code)
            return (exchange.errorKind == nil ? nil : exchange, expiry)
        }
    }

    /// A date as OpenSSL prints it in certificate info (`Jan  1 00:00:00 2027 GMT`).
    static func certificateDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "MMM d HH:mm:ss yyyy zzz"
        let squeezed = text.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        return formatter.date(from: squeezed)
    }

    /// Sets a string option through `withCString`: Swift's implicit conversion of a String
    /// argument to a C pointer copies a short (inline-stored) string to the heap on each call,
    /// and this runs several times a request. libcurl copies the value.
    private func setString(_ option: CURLoption, _ value: String) -> CURLcode {
        value.withCString { dispatcher_curl_set_string(handle, option, $0) }
    }

    /// The exchange of a transfer `begin` set up, once libcurl finished it with `code`.
    package func finish(_ transfer: Transfer, code: CURLcode) -> HTTPExchange {
        curl_slist_free_all(transfer.headerList)
        let context = transfer.context
        let duration = Int64((DispatchTime.now().uptimeNanoseconds - transfer.start) / 1_000)

        var status = 0
        dispatcher_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var headers = context.headers
        if context.droppedHeaders > 0 {
            headers.append(HeaderField(ResponseHeaderCap.truncationHeader,
                                       "\(context.droppedHeaders) more headers (\(context.droppedHeaderBytes) bytes) not recorded"))
        }
        var exchange = HTTPExchange(
            status: status > 0 ? status : nil, headers: headers, body: context.body,
            bodyTruncated: context.truncated, errorKind: nil, errorMessage: nil, durationMicroseconds: duration)

        // Stopping at the body cap is ours, not a failure: the status and headers are complete.
        if code != CURLE_OK && !(code == CURLE_WRITE_ERROR && context.truncated) {
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            if let blocked = context.blockedReason {
                exchange.errorKind = .blocked
                exchange.errorMessage = blocked
            } else {
                exchange.errorKind = Self.kind(of: code, message: message)
                exchange.errorMessage = message
            }
            if exchange.errorKind != .http && exchange.status != nil && context.headersComplete == false {
                exchange.status = nil
            }
        }
        return exchange
    }

    static func kind(of code: CURLcode, message: String = "") -> AttemptErrorKind {
        // A TLS alert after the handshake: under TLS 1.3 a receiver that wants a client
        // certificate it did not get says so only once the request is on its way.
        if code == CURLE_SEND_ERROR || code == CURLE_RECV_ERROR, message.contains("SSL routines"), message.contains("alert") {
            return .tls
        }
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return .timeout
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: return .dns
        case CURLE_COULDNT_CONNECT: return .connect
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_CRL_BADFILE, CURLE_SSL_SHUTDOWN_FAILED:
            return .tls
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
            return .network
        case CURLE_WEIRD_SERVER_REPLY, CURLE_UNSUPPORTED_PROTOCOL, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_BAD_CONTENT_ENCODING:
            return .protocol
        default:
            return .other
        }
    }
}

/// Per-transfer state the C callbacks write into.
private final class TransferContext {
    let bodyCap: Int
    let headerCap: ResponseHeaderCap
    let policy: DestinationPolicy
    var headers: [HeaderField] = []
    /// Bytes of the headers kept, and the count and bytes of those past the cap.
    var headerBytes = 0
    var droppedHeaders = 0
    var droppedHeaderBytes = 0
    var body: [UInt8] = []
    var truncated = false
    var headersComplete = false
    var blockedReason: String?
    /// The transfer goes through a proxy: the only sockets are to it.
    var viaProxy = false

    init(bodyCap: Int, headerCap: ResponseHeaderCap, policy: DestinationPolicy) {
        self.bodyCap = bodyCap
        self.headerCap = headerCap
        self.policy = policy
    }
}

private let receiveBody: dispatcher_curl_data_callback = { data, size, count, context in
    let context = Unmanaged<TransferContext>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    let room = context.bodyCap - context.body.count
    if length > room {
        if room > 0, let data { context.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: room)) }
        context.truncated = true
        return 0 // stops the transfer: the rest of an oversized body is never read
    }
    if let data { context.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length)) }
    return length
}

private let receiveHeader: dispatcher_curl_data_callback = { data, size, count, context in
    let context = Unmanaged<TransferContext>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data else { return length }
    // Byte-level: this runs for every header line of every response.
    let line = UnsafeRawBufferPointer(start: data, count: length).bindMemory(to: UInt8.self)
    func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A }
    var start = 0, end = line.count
    while start < end, isSpace(line[start]) { start += 1 }
    while end > start, isSpace(line[end - 1]) { end -= 1 }
    if end - start >= 5, line[start..<(start + 5)].elementsEqual("HTTP/".utf8) {
        // A new status line (after 1xx interim responses): only the final response's headers count.
        context.headers.removeAll()
        context.headerBytes = 0
        context.droppedHeaders = 0
        context.droppedHeaderBytes = 0
        context.headersComplete = false
    } else if start == end {
        context.headersComplete = true
    } else if context.headers.count >= context.headerCap.count || context.headerBytes + (end - start) > context.headerCap.bytes {
        // A receiver sending thousands of headers must not fill the audit log.
        context.droppedHeaders += 1
        context.droppedHeaderBytes += end - start
    } else if let colon = line[start..<end].firstIndex(of: UInt8(ascii: ":")) {
        context.headerBytes += end - start
        // Room for a typical response's headers at once, not four regrowths on the way there.
        if context.headers.capacity == 0 { context.headers.reserveCapacity(16) }
        var nameEnd = colon, valueStart = colon + 1
        while nameEnd > start, isSpace(line[nameEnd - 1]) { nameEnd -= 1 }
        while valueStart < end, isSpace(line[valueStart]) { valueStart += 1 }
        context.headers.append(HeaderField(String(decoding: line[start..<nameEnd], as: UTF8.self),
                                           String(decoding: line[valueStart..<end], as: UTF8.self)))
    }
    return length
}

/// Opens the socket libcurl is about to connect, after checking the very address it will use,
/// so a DNS answer that changed since any earlier check cannot reach a forbidden network.
private let openCheckedSocket: dispatcher_curl_opensocket_callback = { context, purpose, address in
    let context = Unmanaged<TransferContext>.fromOpaque(context!).takeUnretainedValue()
    guard let address else { return CURL_SOCKET_BAD }
    if !context.viaProxy, let reason = context.policy.refusal(for: &address.pointee.addr) {
        context.blockedReason = reason
        return CURL_SOCKET_BAD
    }
    return socket(address.pointee.family, address.pointee.socktype | Int32(SOCK_CLOEXEC.rawValue), address.pointee.protocol)
}
