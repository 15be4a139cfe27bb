import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// The stylesheet and script, compiled into the binary from `Dashboard/Assets/` (SwiftPM's
/// `embedInCode`): one source of truth, nothing to install beside the binary, no CDN.
enum DashboardAssets {
    static let files: [String: (contentType: String, bytes: [UInt8])] = [
        "dashboard.css": ("text/css; charset=utf-8", PackageResources.dashboard_css),
        "dashboard.js": ("text/javascript; charset=utf-8", PackageResources.dashboard_js),
    ]

    static func response(for name: String) -> HTTPServerResponse {
        guard let file = files[name] else { return .text(404, "no such asset\n") }
        return HTTPServerResponse(status: 200, headers: [HeaderField("Content-Type", file.contentType)], body: file.bytes)
    }
}
