import Foundation

/// One `--name` option of a subcommand. `value` names its argument (`FILE`); nil makes it a flag.
struct OptionSpec {
    let name: String
    let value: String?
    let help: String
    var repeatable = false
}

/// A subcommand's declaration: help text and option table come from here and nowhere else.
struct CommandSpec {
    let name: String
    let abstract: String
    /// What follows the options in the usage line (`ID`, `[ID...]`), if anything.
    var positionals: String = ""
    var options: [OptionSpec]
    var discussion: String = ""

    var usage: String {
        let flags = options.map { option in option.value.map { "[--\(option.name) \($0)]" } ?? "[--\(option.name)]" }
        return (["dispatcher", name] + flags + (positionals.isEmpty ? [] : [positionals])).joined(separator: " ")
    }

    var help: String {
        var text = "\(abstract)\n\nUSAGE: \(usage)\n"
        if !options.isEmpty {
            text += "\nOPTIONS:\n"
            let labels = options.map { option in "--\(option.name)" + (option.value.map { " \($0)" } ?? "") }
            let width = (labels.map(\.count).max() ?? 0) + 2
            for (label, option) in zip(labels, options) {
                text += "  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + option.help + "\n"
            }
            text += "  " + "--help".padding(toLength: width, withPad: " ", startingAt: 0) + "Show this help.\n"
        }
        if !discussion.isEmpty { text += "\n\(discussion)\n" }
        return text
    }
}

/// A mistake in how the command was called: printed with the usage line, exit status 2.
struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parsed `--name value`, `--name=value`, flags and positionals, checked against a spec.
struct ParsedArguments {
    private(set) var values: [String: [String]] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positionals: [String] = []
    private(set) var wantsHelp = false

    init(_ arguments: [String], spec: CommandSpec) throws {
        var index = 0
        var onlyPositionals = false
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if onlyPositionals || !argument.hasPrefix("--") || argument == "-" {
                if argument == "-h" { wantsHelp = true; continue }
                positionals.append(argument)
                continue
            }
            if argument == "--" { onlyPositionals = true; continue }
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if name == "help" { wantsHelp = true; continue }
            guard let option = spec.options.first(where: { $0.name == name }) else {
                throw UsageError("unknown option '--\(name)' for 'dispatcher \(spec.name)'")
            }
            if option.value == nil {
                guard inlineValue == nil else { throw UsageError("'--\(name)' takes no value") }
                flags.insert(name)
                continue
            }
            let value: String
            if let inlineValue {
                value = inlineValue
            } else {
                guard index < arguments.count else { throw UsageError("'--\(name)' needs a value (\(option.value!))") }
                value = arguments[index]
                index += 1
            }
            if values[name] != nil && !option.repeatable { throw UsageError("'--\(name)' is given more than once") }
            values[name, default: []].append(value)
        }
    }

    func value(_ name: String) -> String? { values[name]?.last }
    func allValues(_ name: String) -> [String] { values[name] ?? [] }
    func flag(_ name: String) -> Bool { flags.contains(name) }

    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = value(name) else { return nil }
        guard let number = Int(text), range.contains(number) else {
            throw UsageError("'--\(name)' must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return number
    }
}
