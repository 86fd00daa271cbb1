#if canImport(Agent)
    @testable import Agent  // the fuzz build compiles Agent's parsers into its one module, Tunnel
#endif
@testable import Tunnel

/// The YAML/JSON reader and the kubeconfig reader on top of it. Input: the file's bytes.
///
/// Properties: every refusal is a `ParseError` or `KubernetesAccessError` (typed throws make that so), and a
/// document the reader accepts, written back out as JSON, reads back as the same tree.
enum KubeconfigFuzzHarness {
    static let target = FuzzTarget("kubeconfig", run: Self.run)

    static func run(_ input: [UInt8]) throws(FuzzFinding) {
        let text = String(decoding: input, as: UTF8.self)
        guard let root = try? YAMLSubset.parse(text) else { return }
        let json = Self.json(root)
        let again: YAMLSubset.Node
        do {
            again = try YAMLSubset.parse(json)
        } catch {
            throw FuzzFinding("the JSON form of an accepted document is refused (\(error)): \(json)")
        }
        try FuzzFinding.check(again == root, "tree changed through JSON: \(root) became \(again) via \(json)")
        _ = try? KubeconfigFile(parsing: text, path: "/fuzz/kubeconfig")
    }

    /// `node` as one line of JSON, every scalar a string.
    static func json(_ node: YAMLSubset.Node) -> String {
        switch node {
        case .null: return "null"
        case .scalar(let text): return Self.quoted(text)
        case .sequence(let items): return "[" + items.map(Self.json).joined(separator: ",") + "]"
        case .mapping(let entries):
            let fields = entries.keys.sorted().map { "\(Self.quoted($0)):\(Self.json(entries[$0]!))" }
            return "{" + fields.joined(separator: ",") + "}"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
