import Foundation
import Glibc
import XCTest

/// Headless Chromium driven over the DevTools protocol through `--remote-debugging-pipe`
/// (JSON messages separated by NUL on file descriptors 3 and 4): a real browser for the
/// dashboard tests with nothing but the Debian package, no WebSocket client, no Node.
final class HeadlessBrowser: @unchecked Sendable {
    private let pid: pid_t
    private let toBrowser: Int32
    private let fromBrowser: Int32
    private let profile: TemporaryDirectory
    private let state = Locked(State())
    private let changed = NSCondition()
    private var nextID = 0
    private let idLock = NSLock()

    private struct State {
        var responses: [Int: [String: Any]] = [:]
        var dialogs: [String] = []
        var closed = false
    }

    /// The executable: `$DISPATCHER_TEST_CHROMIUM`, else chromium or chromium-browser on PATH.
    static func executable() -> String? {
        if let path = ProcessInfo.processInfo.environment["DISPATCHER_TEST_CHROMIUM"], !path.isEmpty { return path }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in directories where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
                return "\(directory)/\(name)"
            }
        }
        return nil
    }

    /// Starts the browser, or skips the calling test with the reason when it cannot.
    static func launch(width: Int = 1280, height: Int = 900) throws -> HeadlessBrowser {
        guard let executable = executable() else {
            throw XCTSkip("BROWSER TESTS SKIPPED: no Chromium found (install Debian's `chromium`; scripts/with-deps does)")
        }
        do {
            return try HeadlessBrowser(executable: executable, width: width, height: height)
        } catch {
            throw XCTSkip("BROWSER TESTS SKIPPED: Chromium at \(executable) did not start: \(error)")
        }
    }

    private init(executable: String, width: Int, height: Int) throws {
        profile = TemporaryDirectory()
        var commandPipe: [Int32] = [0, 0], eventPipe: [Int32] = [0, 0]
        guard pipe(&commandPipe) == 0, pipe(&eventPipe) == 0 else { throw BrowserError("pipe failed") }
        let arguments = [
            executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--remote-debugging-pipe", "--user-data-dir=\(profile.path)", "--no-first-run", "--no-default-browser-check",
            "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio",
            "--hide-scrollbars", "--window-size=\(width),\(height)", "about:blank",
        ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, commandPipe[0], 3)
        posix_spawn_file_actions_adddup2(&actions, eventPipe[1], 4)
        let log = profile.file("chromium.log")
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // Its temporary files in the profile too: killed, it cannot remove the directory it
        // keeps in TMPDIR (org.chromium.Chromium.*, its singleton socket), and every test run
        // left four of them in /tmp.
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = profile.path
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        // Its own process group, so that `close` ends its renderers and helpers with it: they
        // outlive a browser killed alone and write into the profile while it is removed.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        Glibc.close(commandPipe[0])
        Glibc.close(eventPipe[1])
        guard status == 0 else {
            Glibc.close(commandPipe[1]); Glibc.close(eventPipe[0])
            throw BrowserError("posix_spawn: \(String(cString: strerror(status)))")
        }
        pid = child
        toBrowser = commandPipe[1]
        fromBrowser = eventPipe[0]
        Thread.detachNewThread { [self] in readLoop() }
        do {
            _ = try send("Browser.getVersion", timeout: 30)
        } catch {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            close()
            throw BrowserError("\(error); its output: \(output.suffix(600))")
        }
    }

    deinit { close() }

    /// Ends the browser and removes its profile.
    func close() {
        let alreadyClosed = state.withLock { state -> Bool in
            defer { state.closed = true }
            return state.closed
        }
        guard !alreadyClosed else { return }
        Glibc.close(toBrowser)
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        Glibc.close(fromBrowser)
        changed.broadcast()
        // The rest of the group dies as the signal reaches it; until then it may still write.
        let deadline = Date().addingTimeInterval(5)
        while Self.hasLiveMember(group: pid), Date() < deadline { usleep(5_000) }
        profile.remove()
    }

    /// Whether a process of `group` is still running (not a zombie waiting for init to reap it,
    /// which writes nothing): read from `/proc/PID/stat`, whose fields after the name are the
    /// state, the parent and the group.
    private static func hasLiveMember(group: pid_t) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.contains { entry in
            guard entry.first?.isNumber == true, let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                  let nameEnd = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: nameEnd)...].split(separator: " ")
            return fields.count > 2 && fields[2] == "\(group)" && fields[0] != "Z" && fields[0] != "X"
        }
    }

    /// Sends one protocol command and waits for its answer.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], session: String? = nil, timeout: Double = 15) throws -> [String: Any] {
        let id = idLock.withLock { nextID += 1; return nextID }
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        try write(bytes)
        let deadline = Date().addingTimeInterval(timeout)
        changed.lock()
        defer { changed.unlock() }
        while true {
            if let response = state.withLock({ $0.responses.removeValue(forKey: id) }) {
                if let error = response["error"] as? [String: Any] {
                    throw BrowserError("\(method): \(error["message"] ?? error)")
                }
                return response["result"] as? [String: Any] ?? [:]
            }
            if state.value.closed { throw BrowserError("\(method): the browser closed") }
            guard changed.wait(until: deadline) else { throw BrowserError("\(method): no answer within \(timeout) s") }
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(toBrowser, $0.baseAddress, $0.count) }
            guard written > 0 else { throw BrowserError("write to the browser failed") }
            offset += written
        }
    }

    private func readLoop() {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fromBrowser, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            buffer.append(contentsOf: chunk[0..<count])
            while let end = buffer.firstIndex(of: 0) {
                let message = Array(buffer[..<end])
                buffer.removeSubrange(...end)
                guard let object = try? JSONSerialization.jsonObject(with: Data(message)) as? [String: Any] else { continue }
                handle(object)
            }
        }
        state.withLock { $0.closed = true }
        changed.broadcast()
    }

    private func handle(_ message: [String: Any]) {
        if let id = message["id"] as? Int {
            state.withLock { $0.responses[id] = message }
            changed.lock(); changed.broadcast(); changed.unlock()
        } else if message["method"] as? String == "Page.javascriptDialogOpening" {
            // Accept every confirm() the way a person clicking OK would, and remember its text.
            let params = message["params"] as? [String: Any] ?? [:]
            state.withLock { $0.dialogs.append(params["message"] as? String ?? "") }
            if let session = message["sessionId"] as? String {
                let id = idLock.withLock { nextID += 1; return nextID }
                let reply: [String: Any] = ["id": id, "method": "Page.handleJavaScriptDialog", "params": ["accept": true], "sessionId": session]
                if var bytes = try? [UInt8](JSONSerialization.data(withJSONObject: reply)) {
                    bytes.append(0)
                    try? write(bytes)
                }
            }
        }
    }

    /// The text of every dialog accepted so far.
    var dialogs: [String] { state.value.dialogs }

    /// A new tab, attached.
    func newPage() throws -> BrowserPage {
        let target = try send("Target.createTarget", ["url": "about:blank"])
        guard let targetID = target["targetId"] as? String else { throw BrowserError("no targetId") }
        let attached = try send("Target.attachToTarget", ["targetId": targetID, "flatten": true])
        guard let session = attached["sessionId"] as? String else { throw BrowserError("no sessionId") }
        let page = BrowserPage(browser: self, session: session)
        try page.send("Page.enable")
        try page.send("Runtime.enable")
        return page
    }
}

/// One tab of the headless browser.
struct BrowserPage {
    let browser: HeadlessBrowser
    let session: String

    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:]) throws -> [String: Any] {
        try browser.send(method, params, session: session)
    }

    /// Loads `url` and waits until the document has loaded.
    func open(_ url: String) throws {
        try send("Page.navigate", ["url": url])
        try waitForLoad { $0 == url }
    }

    /// Waits (at most `timeout` seconds) until the page's URL satisfies `accept` and it has loaded.
    func waitForLoad(timeout: Double = 10, _ accept: (String) -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let href = try? evaluate("document.readyState === 'complete' ? location.href : ''") as? String, !href.isEmpty, accept(href) {
                return
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw BrowserError("page did not load within \(timeout) s (at \((try? evaluate("location.href")) ?? "?"))")
    }

    /// Runs JavaScript in the page and returns its (JSON) value.
    func evaluate(_ expression: String) throws -> Any? {
        let result = try send("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] as? [String: Any] {
            throw BrowserError("script failed: \((exception["exception"] as? [String: Any])?["description"] ?? exception)")
        }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Clicks the first element matching `selector` (a real DOM click: listeners, form submits).
    func click(_ selector: String) throws {
        let found = try evaluate("(() => { const e = document.querySelector(\(Self.quote(selector))); if (!e) return false; e.click(); return true })()")
        guard found as? Bool == true else { throw BrowserError("no element matches \(selector)") }
    }

    /// The whole page as a PNG (the viewport stretched to the content's height, up to 4,000 px).
    func screenshot(to path: String) throws {
        let metrics = try send("Page.getLayoutMetrics")
        let content = (metrics["cssContentSize"] as? [String: Any]) ?? (metrics["contentSize"] as? [String: Any]) ?? [:]
        let width = Int((content["width"] as? Double) ?? 1280), height = min(4_000, Int((content["height"] as? Double) ?? 900))
        try send("Emulation.setDeviceMetricsOverride", ["width": max(width, 1280), "height": max(height, 600), "deviceScaleFactor": 1, "mobile": false])
        defer { _ = try? send("Emulation.clearDeviceMetricsOverride") }
        let shot = try send("Page.captureScreenshot", ["format": "png"])
        guard let base64 = shot["data"] as? String, let data = Data(base64Encoded: base64) else { throw BrowserError("no screenshot data") }
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: path))
    }

    static func quote(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [text]), as: UTF8.self).dropFirst().dropLast().description
    }
}

struct BrowserError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
