import DispatcherModel
import Foundation

/// A few connections shared by the threads of one process, each used by one at a time.
final class ConnectionPool: @unchecked Sendable {
    private let url: String
    private let size: Int
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var opened = 0

    init(url: String, size: Int) {
        self.url = url
        self.size = size
    }

    @discardableResult
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try checkOut()
        var healthy = true
        defer { checkIn(connection, healthy: healthy) }
        do {
            return try body(connection)
        } catch let error as PostgresError where error.sqlState.isEmpty {
            healthy = false
            throw error
        }
    }

    private func checkOut() throws -> PostgresConnection {
        condition.lock()
        while idle.isEmpty && opened >= size { condition.wait() }
        if let connection = idle.popLast() {
            condition.unlock()
            return connection
        }
        opened += 1
        condition.unlock()
        do {
            return try PostgresConnection(url: url)
        } catch {
            condition.lock()
            opened -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    /// An unhealthy connection (libpq's own error) means the server went away, a restart or a
    /// fail-over, and with it every idle connection: all are dropped, so the next callers
    /// connect afresh instead of failing too.
    private func checkIn(_ connection: PostgresConnection, healthy: Bool) {
        condition.lock()
        defer { condition.unlock() }
        guard !healthy else {
            idle.append(connection)
            condition.signal()
            return
        }
        opened -= 1 + idle.count
        idle.removeAll()
        condition.broadcast()
    }
}
