/// The version `--version` prints and the `User-Agent` carries.
package enum DispatcherVersion {
    package static let current = "0.1.0"
}
