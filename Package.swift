// swift-tools-version:6.0
import PackageDescription

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

        // Turns migrations/*.sql into Swift source at build time, so the SQL has one home and a
        // copied binary needs no files beside it.
        .executableTarget(name: "EmbedMigrationsTool"),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["EmbedMigrationsTool"]
        ),

        .target(
            name: "WebhookDispatcher",
            dependencies: ["CSQLite", "CCurl", "CCrypto", "CPostgres"],
            // The dashboard's stylesheet and script, compiled in (no files beside the binary).
            resources: [
                .embedInCode("Dashboard/Assets/dashboard.css"),
                .embedInCode("Dashboard/Assets/dashboard.js"),
            ],
            plugins: ["EmbedMigrations"]
        ),
        .executableTarget(name: "dispatcher", dependencies: ["WebhookDispatcher"]),
        .testTarget(
            name: "WebhookDispatcherTests",
            dependencies: ["WebhookDispatcher", "dispatcher"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
