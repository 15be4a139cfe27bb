import DispatcherModel
import Foundation

/// One numbered schema change from `migrations/NNNN_name.sql`, embedded in the binary at
/// build time by the EmbedMigrations plugin.
package struct Migration: Sendable, Equatable {
    package let version: Int
    package let name: String
    package let sql: String
}

/// Applies the migrations a database has not seen yet, each in its own transaction, and
/// records them in `schema_migrations`, so opening a store twice (or from two processes at
/// once) applies each migration exactly once. On SQLite each migration's write transaction
/// serialises the processes; on PostgreSQL, whose `CREATE TABLE IF NOT EXISTS` races, an
/// advisory lock held for the whole run does.
struct Migrator {
    let migrations: [Migration]

    init(migrations: [Migration] = EmbeddedMigrations.sqlite) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Taken while migrating PostgreSQL: any fixed 64-bit key no other application uses.
    static let advisoryLockKey: Int64 = 0x6469_7370_6174_6368  // "dispatch"

    /// Returns the versions applied by this call.
    @discardableResult
    func migrate(_ db: some SQLConnection) throws -> [Int] {
        if db.dialect == .postgres {
            _ = try db.query("SELECT pg_advisory_lock(?1)", [Self.advisoryLockKey]) { _ in true }
        }
        defer {
            if db.dialect == .postgres { _ = try? db.query("SELECT pg_advisory_unlock(?1)", [Self.advisoryLockKey]) { _ in true } }
        }
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version     INTEGER PRIMARY KEY,
                name        TEXT NOT NULL,
                applied_at  BIGINT NOT NULL
            )
            """)
        var applied: [Int] = []
        for migration in migrations {
            // Checked inside the write transaction: another process may have applied it meanwhile.
            let didApply = try db.inTransaction { () throws -> Bool in
                let seen = try db.query("SELECT 1 FROM schema_migrations WHERE version = ?", [migration.version]) { _ in true }
                if !seen.isEmpty { return false }
                try db.execute(migration.sql)
                try db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    [migration.version, migration.name, Clock.nowMilliseconds()])
                return true
            }
            if didApply { applied.append(migration.version) }
        }
        return applied
    }
}
