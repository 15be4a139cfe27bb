import Foundation

/// JSON text columns: compact, with sorted keys so equal values store equal text.
package enum JSONText {
    /// Written by `JSONValue`'s writer: JSONSerialization cost about ten times more, which a
    /// config of 10,000 endpoints felt at every start (five columns an endpoint).
    package static func encode(_ value: Any) -> String {
        JSONValue(foundation: value).text
    }

    package static func decode(_ text: String) throws -> JSONValue {
        try JSONValidation.parse(Array(text.utf8))
    }

    /// A JSON array of ids: a list parameter (`DeliveryQueries.isMember`).
    package static func integers(_ values: some Sequence<Int64>) -> String {
        "[" + values.map(String.init).joined(separator: ",") + "]"
    }

    package static func strings(_ values: [String]) -> String {
        JSONValue.array(values.map { .string($0) }).text
    }

    /// `[["name","value"],...]`. On every attempt's path, so written straight to bytes.
    static func encodeHeaders(_ headers: [HeaderField]) -> String {
        var output: [UInt8] = [UInt8(ascii: "[")]
        output.reserveCapacity(headers.reduce(2) { $0 + $1.name.utf8.count + $1.value.utf8.count + 8 })
        for (index, header) in headers.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            output.append(UInt8(ascii: "["))
            JSONValue.writeString(header.name, to: &output)
            output.append(UInt8(ascii: ","))
            JSONValue.writeString(header.value, to: &output)
            output.append(UInt8(ascii: "]"))
        }
        output.append(UInt8(ascii: "]"))
        return String(decoding: output, as: UTF8.self)
    }

    package static func decodeHeaders(_ text: String) -> [HeaderField] {
        guard case .array(let pairs)? = try? decode(text) else { return [] }
        return pairs.compactMap { pair in
            guard let strings = pair.strings, strings.count == 2 else { return nil }
            return HeaderField(strings[0], strings[1])
        }
    }
}
