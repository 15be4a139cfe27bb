import DispatcherConfig
import DispatcherDelivery
import DispatcherModel
import DispatcherServer
import DispatcherStore
import DispatcherWorker
import Foundation

/// Charts drawn on the server as inline SVG: no script, no chart library, and they print.
enum DashboardChart {
    /// Stacked bars per bucket: succeeded attempts in green under failed ones in red, with the
    /// largest bucket's count on the axis and each bar's numbers in its tooltip.
    static func attempts(_ report: ActivityReport) -> HTML {
        let width = 960.0, height = 220.0, left = 48.0, bottom = 24.0, top = 12.0
        let buckets = report.buckets
        guard !buckets.isEmpty else { return "<p class=\"empty\">No time range.</p>" }
        let peak = max(1, buckets.map { $0.succeeded + $0.failed }.max() ?? 0)
        let plotHeight = height - bottom - top
        let slot = (width - left) / Double(buckets.count)
        let barWidth = max(1, slot * 0.72)
        func y(_ value: Int) -> Double { top + plotHeight - plotHeight * Double(value) / Double(peak) }
        var marks: [HTML] = []
        for (index, bucket) in buckets.enumerated() {
            let x = left + Double(index) * slot + (slot - barWidth) / 2
            let okTop = y(bucket.succeeded), failTop = y(bucket.succeeded + bucket.failed)
            let label = "\(Clock.iso8601(bucket.start)): \(bucket.succeeded) succeeded, \(bucket.failed) failed"
            marks.append("<g class=\"bar\"><title>\(label)</title>")
            if bucket.succeeded > 0 {
                marks.append("<rect x=\"\(format(x))\" y=\"\(format(okTop))\" width=\"\(format(barWidth))\" height=\"\(format(top + plotHeight - okTop))\" fill=\"#2f9e5b\"></rect>")
            }
            if bucket.failed > 0 {
                marks.append("<rect x=\"\(format(x))\" y=\"\(format(failTop))\" width=\"\(format(barWidth))\" height=\"\(format(max(1, okTop - failTop)))\" fill=\"#d64545\"></rect>")
            }
            marks.append("</g>")
            // An hour label every sixth bucket, in UTC like the axis.
            if index % 6 == 0 {
                let hour = bucket.start.formatted(Date.VerbatimFormatStyle(format: "\(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):00", timeZone: .gmt, calendar: Calendar(identifier: .gregorian)))
                marks.append("<text x=\"\(format(x))\" y=\"\(format(height - 6))\" class=\"axis\">\(hour)</text>")
            }
        }
        let axis: HTML = """
            <line x1="\(format(left - 4))" y1="\(format(top + plotHeight))" x2="\(format(width))" y2="\(format(top + plotHeight))" stroke="#9aa5b1"></line>
            <text x="\(format(left - 8))" y="\(format(top + 10))" text-anchor="end" class="axis">\(peak)</text>
            <text x="\(format(left - 8))" y="\(format(top + plotHeight))" text-anchor="end" class="axis">0</text>
            """
        return """
            <svg class="chart" viewBox="0 0 \(format(width)) \(format(height))" role="img" aria-label="Attempts per hour over the last 24 hours (UTC)">
            \(axis)\(marks)
            </svg>
            <p class="legend"><span class="swatch ok"></span>succeeded <span class="swatch fail"></span>failed <span class="muted">· hours in UTC</span></p>
            """
    }

    private static func format(_ value: Double) -> String { String(format: "%.1f", value) }
}
