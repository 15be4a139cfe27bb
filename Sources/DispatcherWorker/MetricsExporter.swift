import DispatcherModel
import DispatcherStore
import Foundation
import Glibc
import Synchronization

/// Renders `/metrics`: the store's shared state (queue, leases, circuits, events created), the
/// counters of the delivery service in this process when there is one, and the process's own
/// memory, descriptors and CPU.
///
/// Labels are bounded (see `BoundedLabels`): `endpoint` by `endpointLabels`, `tenant` and `type`
/// by their own limits; the rest are summed into `(other)`. Every query it runs reads an index
/// of the queue or a grouped count, so a scrape costs about the same at any history size.
package final class MetricsExporter: Sendable {
    private let store: any OutboxAdministration
    private let service: ServiceMetrics?
    private let endpointLabels: BoundedLabels
    private let tenantLabels: BoundedLabels
    private let typeLabels: BoundedLabels
    private let events: Mutex<EventTally>
    /// Events are counted once they are this old, so a producer's transaction that commits a
    /// moment after its rows' `created_at` is still counted, and counted once.
    private let eventLagMilliseconds: Int64

    private struct EventTally {
        var countedUpTo: Int64
        var counts: [Key: Int] = [:]
        struct Key: Hashable {
            var tenant: String
            var type: String
        }
    }

    /// `service` is the delivery service of this process, if it has one; its endpoint labels
    /// are then used for the store's gauges too.
    package init(store: any OutboxAdministration, service: ServiceMetrics? = nil, maxEndpointLabels: Int = 100, maxTenantLabels: Int = 100,
                 eventLagMilliseconds: Int64 = 2_000) {
        self.store = store
        self.eventLagMilliseconds = eventLagMilliseconds
        self.service = service
        endpointLabels = service?.endpointLabels ?? BoundedLabels(limit: maxEndpointLabels)
        tenantLabels = BoundedLabels(limit: maxTenantLabels)
        typeLabels = BoundedLabels(limit: Self.maxTypeLabels)
        events = Mutex(EventTally(countedUpTo: Clock.nowMilliseconds() - eventLagMilliseconds))
    }

    static let maxTypeLabels = 200

    package func render() -> String {
        var text = PrometheusText()
        text.family("dispatcher_build_info", .gauge, "The dispatcher's version; always 1.")
        text.sample("dispatcher_build_info", [("version", DispatcherVersion.current)], 1)
        let now = Clock.nowMilliseconds()
        let metrics: StoreMetrics?
        do {
            metrics = try events.withLock { tally in
                let upTo = now - eventLagMilliseconds
                let metrics = try store.metrics(eventsAfter: tally.countedUpTo, eventsUpTo: max(upTo, tally.countedUpTo))
                for count in metrics.eventsCreated {
                    let key = EventTally.Key(tenant: tenantLabels.value(for: count.tenantID), type: typeLabels.value(for: count.type))
                    tally.counts[key, default: 0] += count.count
                }
                tally.countedUpTo = max(upTo, tally.countedUpTo)
                return metrics
            }
        } catch {
            metrics = nil
        }
        text.family("dispatcher_store_up", .gauge, "1 when this scrape could read the store, 0 when it could not.")
        text.sample("dispatcher_store_up", [], metrics == nil ? 0 : 1)
        if let metrics { writeStore(metrics, now: now, to: &text) }
        service?.write(to: &text)
        ProcessMetrics.write(to: &text)
        return text.text
    }

    private func writeStore(_ metrics: StoreMetrics, now: Int64, to text: inout PrometheusText) {
        text.family("dispatcher_deliveries", .gauge, "Unfinished deliveries in the store: pending (waiting for an attempt) and delivering (leased).")
        text.sample("dispatcher_deliveries", [("status", "delivering")], metrics.delivering)
        text.sample("dispatcher_deliveries", [("status", "pending")], metrics.pending)

        struct Gauges {
            var backlog = 0, inFlight = 0, circuitOpen = 0, disabled = 0
            var earliestDue: Int64?
        }
        var byLabel: [String: Gauges] = [:]
        for endpoint in metrics.endpoints {
            let label = endpointLabels.value(for: endpoint.endpointID)
            var gauges = byLabel[label] ?? Gauges()
            gauges.backlog += endpoint.pending
            gauges.inFlight += endpoint.delivering
            gauges.circuitOpen += endpoint.circuitOpen ? 1 : 0
            gauges.disabled += endpoint.enabled ? 0 : 1
            if let due = endpoint.earliestDueAt { gauges.earliestDue = min(gauges.earliestDue ?? due, due) }
            byLabel[label] = gauges
        }
        let rows = byLabel.sorted { $0.key < $1.key }
        func family(_ name: String, _ help: String, _ value: (Gauges) -> Double) {
            text.family(name, .gauge, help)
            for (label, gauges) in rows { text.sample(name, [("endpoint", label)], value(gauges)) }
        }
        family("dispatcher_endpoint_backlog", "Deliveries waiting for an attempt (due or not), by endpoint.") { Double($0.backlog) }
        family("dispatcher_endpoint_oldest_pending_age_seconds",
               "How long the endpoint's longest-waiting delivery has been due (since its enqueue, or its retry time); 0 when none is due.") {
            $0.earliestDue.map { Double(max(0, now - $0)) / 1000 } ?? 0
        }
        family("dispatcher_endpoint_in_flight", "Deliveries leased by any process (requests in flight or about to be), by endpoint.") { Double($0.inFlight) }
        family("dispatcher_endpoint_circuit_open", "1 while the endpoint's circuit is open (its deliveries wait); summed under (other).") { Double($0.circuitOpen) }
        family("dispatcher_endpoint_disabled", "1 when the endpoint is disabled (by an operator or for failing too long); summed under (other).") { Double($0.disabled) }

        text.family("dispatcher_events_enqueued_total", .counter,
                    "Events created in the store since this process started, by any producer, by tenant and type; counted once \(JSONReader.format(Double(eventLagMilliseconds) / 1000)) s old.")
        let counts = events.withLock { $0.counts }
        for (key, count) in counts.sorted(by: { ($0.key.tenant, $0.key.type) < ($1.key.tenant, $1.key.type) }) {
            text.sample("dispatcher_events_enqueued_total", [("tenant", key.tenant), ("type", key.type)], count)
        }
    }
}

/// The `process_*` metrics Prometheus's own client libraries export, read from `/proc`.
enum ProcessMetrics {
    static func write(to text: inout PrometheusText) {
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            let seconds = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            text.family("process_cpu_seconds_total", .counter, "User and system CPU time spent, in seconds.")
            text.sample("process_cpu_seconds_total", [], seconds)
        }
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
            let fields = statm.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if fields.count >= 2 {
                text.family("process_virtual_memory_bytes", .gauge, "Virtual memory size in bytes.")
                text.sample("process_virtual_memory_bytes", [], fields[0] * pageSize)
                text.family("process_resident_memory_bytes", .gauge, "Resident memory size in bytes.")
                text.sample("process_resident_memory_bytes", [], fields[1] * pageSize)
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            text.family("process_open_fds", .gauge, "Open file descriptors.")
            // Less the one the listing itself held open.
            text.sample("process_open_fds", [], max(0, descriptors.count - 1))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            text.family("process_max_fds", .gauge, "The limit on open file descriptors.")
            text.sample("process_max_fds", [], Double(limit.rlim_cur))
        }
        if let start = startTime() {
            text.family("process_start_time_seconds", .gauge, "Start time of the process since the Unix epoch, in seconds.")
            text.sample("process_start_time_seconds", [], start)
        }
    }

    /// Field 22 of `/proc/self/stat` (clock ticks after boot) plus the boot time in `/proc/stat`.
    static func startTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After the command name in parentheses: field 3 onwards, so field 22 is index 19.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]),
              let system = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst("btime ".count)) else { return nil }
        return boot + ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
