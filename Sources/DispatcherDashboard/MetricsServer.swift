import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherWorker
import Foundation

/// `GET /metrics` on its own listener (config `metrics`), for Prometheus to scrape. The same
/// guards as the dashboard, less the pages: `Host` must name the listener (a page whose name
/// rebinds to 127.0.0.1 reads nothing), the token when one is set (wrong guesses are throttled
/// per client), and nothing but `GET`/`HEAD /metrics`.
package final class MetricsServer: Sendable {
    private let server: HTTPServer
    package var port: Int { server.port }
    package var url: String { "http://\(MetricsSettings(host: server.host, port: server.port).listen)/metrics" }

    package init(exporter: MetricsExporter, settings: MetricsSettings) throws {
        let endpoint = MetricsEndpoint(exporter: exporter, token: try settings.resolvedToken(),
                                       hosts: HostPolicy(listenHost: settings.host, isLoopback: settings.isLoopback, hostNames: settings.hostNames))
        server = try HTTPServer(host: settings.host, port: settings.port, maxBodyBytes: 0, maxConnections: 64,
                                readTimeout: 10, maxRequestsInProgress: 4, gracePeriod: 1) { request in
            .respond(endpoint.respond(to: request))
        }
    }

    package func stop() { server.stop() }
}

struct MetricsEndpoint: Sendable {
    let exporter: MetricsExporter
    let token: String?
    let hosts: HostPolicy
    let logins = LoginThrottle()

    func respond(to request: HTTPServerRequest) -> HTTPServerResponse {
        guard hosts.allows(host: request.header("Host")) else {
            return .text(421, "misdirected request: this listener does not answer to Host '\(request.header("Host") ?? "")'; add the name to metrics.hosts\n")
        }
        guard request.path == "/metrics" else { return .text(404, "not found: metrics are at /metrics\n") }
        guard request.method == "GET" || request.method == "HEAD" else {
            var response = HTTPServerResponse.text(405, "method not allowed\n")
            response.headers.append(HeaderField("Allow", "GET, HEAD"))
            return response
        }
        if let token {
            if let wait = logins.wait(for: request.remoteAddress) {
                var response = HTTPServerResponse.text(429, "too many wrong tokens; try again in \(wait) s\n")
                response.headers.append(HeaderField("Retry-After", String(wait)))
                return response
            }
            guard let presented = request.bearerToken, Digest.constantTimeEquals(presented, token) else {
                if request.bearerToken != nil { logins.recordFailure(for: request.remoteAddress) }
                var response = HTTPServerResponse.text(401, "unauthorized: send Authorization: Bearer <metrics token>\n")
                response.headers.append(HeaderField("WWW-Authenticate", "Bearer"))
                return response
            }
        }
        return .text(200, exporter.render(), contentType: PrometheusText.contentType)
    }
}
