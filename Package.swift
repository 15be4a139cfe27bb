// swift-tools-version:6.0
import PackageDescription

// The module graph is the architecture (README, "Development"): arrows point only down, and a
// wrong-way import does not compile.
//
//   dispatcher (CLI) ─▶ WebhookDispatcher (re-exports the producer API) ─▶ Config, Worker, Store, Events, Model
//   DispatcherDashboard ─▶ DispatcherConfig, DispatcherServer, DispatcherWorker, DispatcherEvents
//   DispatcherIngest ─▶ DispatcherConfig, DispatcherServer, DispatcherStore, DispatcherEvents
//   DispatcherConfig ─▶ DispatcherWorker ─▶ DispatcherStore ─▶ DispatcherModel
//                                       └─▶ DispatcherDelivery ─▶ DispatcherModel
//   DispatcherEvents ─▶ DispatcherModel · DispatcherServer ─▶ DispatcherModel
let package = Package(
    name: "dispatcher",
    products: [
        .library(name: "WebhookDispatcher", targets: ["WebhookDispatcher"]),
        .executable(name: "dispatcher", targets: ["dispatcher"]),
    ],
    targets: [
        // C libraries from Debian's -dev packages; each shim header is the only C surface Swift sees.
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CCrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CPostgres", providers: [.apt(["libpq-dev"])]),
        // Linux's epoll and eventfd, glibc's malloc_trim (glibc headers; nothing to link).
        .systemLibrary(name: "CLinux"),

        // Turns migrations/*.sql into Swift source at build time, so the SQL has one home and a
        // copied binary needs no files beside it.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["EmbedMigrationsTool"]
        ),

        // The nouns and their rules: tenants, endpoints (and their one validator), events,
        // deliveries, attempts, retry and success rules, URL and destination policy, errors, JSON.
        .target(name: "DispatcherModel", dependencies: ["CLinux"]),
        // Typed builders and validators for the seed documents' event families.
        .target(name: "DispatcherEvents", dependencies: ["DispatcherModel"]),
        // SQL and nothing about HTTP: connections, SQLite and PostgreSQL, migrations, queries.
        .target(
            name: "DispatcherStore",
            dependencies: ["DispatcherModel", "CSQLite", "CPostgres"],
            plugins: ["EmbedMigrations"]
        ),
        // HTTP and nothing about SQL: libcurl, the destination guard at connect time, signing, OAuth tokens.
        .target(name: "DispatcherDelivery", dependencies: ["DispatcherModel", "CCurl", "CCrypto", "CLinux"]),
        // Joins the two: the delivery service, its store loop and transfer loop, housekeeping.
        .target(name: "DispatcherWorker", dependencies: ["DispatcherModel", "DispatcherStore", "DispatcherDelivery", "CLinux"]),
        // The config file `serve`, `dashboard` and the other commands read (the portal key signs with Delivery's HMAC).
        .target(name: "DispatcherConfig", dependencies: ["DispatcherModel", "DispatcherStore", "DispatcherDelivery", "DispatcherWorker"]),
        // A small HTTP/1.1 server for the dashboard.
        .target(name: "DispatcherServer", dependencies: ["DispatcherModel", "CLinux"]),
        .target(
            name: "DispatcherDashboard",
            dependencies: ["DispatcherModel", "DispatcherEvents", "DispatcherStore", "DispatcherDelivery", "DispatcherWorker",
                           "DispatcherConfig", "DispatcherServer"],
            // The dashboard's stylesheet and script, compiled in (no files beside the binary).
            resources: [
                .embedInCode("Assets/dashboard.css"),
                .embedInCode("Assets/dashboard.js"),
            ]
        ),
        // The HTTP ingest API: API keys, group commit, the routes.
        .target(
            name: "DispatcherIngest",
            dependencies: ["DispatcherModel", "DispatcherEvents", "DispatcherStore", "DispatcherDelivery",
                           "DispatcherConfig", "DispatcherServer"]
        ),
        // The product producers and embedders import: re-exports their API and nothing else.
        .target(
            name: "WebhookDispatcher",
            dependencies: ["DispatcherModel", "DispatcherEvents", "DispatcherStore", "DispatcherDelivery", "DispatcherWorker", "DispatcherConfig"]
        ),
        .executableTarget(
            name: "dispatcher",
            dependencies: ["WebhookDispatcher", "DispatcherModel", "DispatcherEvents", "DispatcherStore",
                           "DispatcherDelivery", "DispatcherWorker", "DispatcherConfig", "DispatcherServer", "DispatcherDashboard",
                           "DispatcherIngest"]
        ),
        .testTarget(
            name: "WebhookDispatcherTests",
            dependencies: ["WebhookDispatcher", "DispatcherModel", "DispatcherEvents", "DispatcherStore",
                           "DispatcherDelivery", "DispatcherWorker", "DispatcherConfig", "DispatcherServer",
                           "DispatcherDashboard", "DispatcherIngest", "dispatcher", "CSQLite"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
