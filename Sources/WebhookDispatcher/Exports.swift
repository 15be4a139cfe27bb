// The producer's and embedder's one import: `import WebhookDispatcher` brings the public API of
// these modules (opening a store, enqueueing, the event builders, endpoints, the delivery
// service, the log). What only the CLI and the dashboard use is `package` and stays out of it.
@_exported import DispatcherConfig
@_exported import DispatcherDelivery
@_exported import DispatcherEvents
@_exported import DispatcherModel
@_exported import DispatcherStore
@_exported import DispatcherWorker
