import Foundation
import Glibc
import DispatcherConfig
import DispatcherDashboard
import DispatcherDelivery
import DispatcherEvents
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import WebhookDispatcher

/// `dispatcher receive`: a development receiver on loopback that prints what it gets, so the
/// README tour needs nothing but this binary.
struct ReceiveCommand: DispatcherCommand {
    static let spec = CommandSpec(
        name: "receive",
        abstract: "Run a local webhook receiver that prints every request and answers 200 JSON.",
        options: [
            OptionSpec(name: "port", value: "PORT", help: "Port to listen on (default 9000)."),
            OptionSpec(name: "host", value: "ADDRESS", help: "Address to bind (default 127.0.0.1)."),
            OptionSpec(name: "status", value: "CODE", help: "Status to answer with (default 200)."),
            OptionSpec(name: "secret", value: "WHSEC", help: "Check each request's webhook-signature against this whsec_ secret or whpk_ public key."),
        ],
        discussion: "Stop it with Ctrl-C.")

    let port: Int
    let host: String
    let status: Int
    let secret: String?

    init(_ arguments: ParsedArguments) throws {
        port = try arguments.integer("port", in: 0...65_535) ?? 9000
        host = arguments.value("host") ?? "127.0.0.1"
        status = try arguments.integer("status", in: 100...599) ?? 200
        secret = arguments.value("secret")
        if let secret, let problem = SignatureVerifier.problem(withSecret: secret) { throw UsageError("--secret \(problem)") }
    }

    func run() throws {
        let status = self.status
        let secret = self.secret
        let server = try HTTPServer(host: host, port: port) { request in
            var text: TerminalText = "\(Clock.iso8601(Date())) \(request.method) \(request.target) from \(request.remoteAddress)\n"
            for header in request.headers { text += "  \(header.name): \(header.value)\n" }
            if let secret {
                let valid = SignatureVerifier.verify(id: request.header("webhook-id"), timestamp: request.header("webhook-timestamp"),
                                                     signature: request.header("webhook-signature"), body: request.body, secret: secret)
                text += valid ? "  signature: valid\n" : "  signature: INVALID\n"
            }
            text += "\n\(ShowCommand.indent(ShowCommand.prettyJSON(request.body), by: 2))\n\n"
            Console.out(text)
            return .respond(.json(status, #"{"success":true}"#))
        }
        Console.error("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(server.port)/ (Ctrl-C to stop)\n")
        signal(SIGINT, SIG_DFL)
        while true { sleep(3600) }
    }
}
