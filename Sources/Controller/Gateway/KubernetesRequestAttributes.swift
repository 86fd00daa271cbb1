/// The Kubernetes request attributes of an HTTP request, derived exactly as the API server's `RequestInfoFactory`
/// (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`) derives them, with API prefixes `api` and `apis`
/// and `api` as the one prefix without a group.
///
/// Resource paths: `/api/{version}/…` and `/apis/{group}/{version}/…`, then optionally `watch/` or `proxy/` (the
/// legacy verb prefixes), `namespaces/{namespace}/`, then `{resource}/{name}/{subresource}/…`. Anything else
/// (`/version`, `/apis`, `/api/v1`, `/apis/apps/v1`, `/openapi/v2`, `/healthz`) is a non-resource request whose
/// verb is the lowercase HTTP method.
struct KubernetesRequestAttributes: Sendable, Equatable {
    /// Whether the path names an API resource (or subresource).
    var isResourceRequest: Bool
    /// The decoded URL path.
    var path: String
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`, `proxy` (or "" for another
    /// method) for resource requests; the lowercase HTTP method otherwise.
    var verb: String
    /// `api` or `apis`; empty for non-resource requests.
    var apiPrefix: String
    /// The API group; empty for the core group and non-resource requests.
    var apiGroup: String
    /// `v1`, `v1beta1`, …
    var apiVersion: String
    /// The namespace; empty for cluster-scoped resources and lists across namespaces.
    var namespace: String
    /// `pods`, `deployments`, `namespaces`, …
    var resource: String
    /// `log`, `exec`, `attach`, `portforward`, `ephemeralcontainers`, `status`, …
    var subresource: String
    /// The object's name, from the path or a list's `fieldSelector=metadata.name=NAME`.
    var name: String
    /// The path parts from the resource on: `[resource, name, subresource, …]`.
    var parts: [String]

    /// A non-resource request for `path` with `verb`; the parser fills in the rest.
    init(path: String, verb: String) {
        self.isResourceRequest = false
        self.path = path
        self.verb = verb
        self.apiPrefix = ""
        self.apiGroup = ""
        self.apiVersion = ""
        self.namespace = ""
        self.resource = ""
        self.subresource = ""
        self.name = ""
        self.parts = []
    }

    /// Why a request has no attributes; the API server answers such requests with an error, so they are denied.
    struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// What is wrong with the request target.
        var reason: String

        var description: String { self.reason }
    }

    private static let specialVerbs: Set<String> = ["proxy", "watch"]
    private static let specialVerbsWithoutSubresources: Set<String> = ["proxy"]
    private static let namespaceSubresources: Set<String> = ["status", "finalize"]

    /// Parses `method` and a request target's `path` (percent-encoded, as sent) and `query` (without `?`).
    ///
    /// - Throws: `ParseError` for a malformed percent escape in the path (Go's server refuses those before the
    ///   API server sees them) and for a verb prefix with nothing after it (`/api/v1/watch`).
    init(method: String, path rawPath: String, query: String?) throws(ParseError) {
        guard let path = Self.percentDecoded(rawPath, plusIsSpace: false) else {
            throw ParseError(reason: "the path \(rawPath) has a malformed percent escape")
        }
        self.init(path: path, verb: method.lowercased())
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // Go's strings.Trim(path, "/") then Split: only outer slashes go; inner empty parts stay.
        while parts.first == "" { parts.removeFirst() }
        while parts.last == "" { parts.removeLast() }
        guard parts.count >= 3, ["api", "apis"].contains(parts[0]) else { return }
        self.apiPrefix = parts[0]
        parts.removeFirst()
        if self.apiPrefix != "api" {
            guard parts.count >= 3 else {
                self.apiPrefix = ""
                return
            }
            self.apiGroup = parts.removeFirst()
        }
        self.isResourceRequest = true
        self.apiVersion = parts.removeFirst()

        if Self.specialVerbs.contains(parts[0]) {
            guard parts.count >= 2 else {
                throw ParseError(reason: "unable to determine kind and namespace from \(rawPath)")
            }
            self.verb = parts.removeFirst()
        } else {
            switch method {
            case "POST": self.verb = "create"
            case "GET", "HEAD": self.verb = "get"
            case "PUT": self.verb = "update"
            case "PATCH": self.verb = "patch"
            case "DELETE": self.verb = "delete"
            default: self.verb = ""
            }
        }

        if parts[0] == "namespaces", parts.count > 1 {
            self.namespace = parts[1]
            if parts.count > 2, !Self.namespaceSubresources.contains(parts[2]) {
                parts.removeFirst(2)
            }
        }
        self.parts = parts
        if parts.count >= 3, !Self.specialVerbsWithoutSubresources.contains(self.verb) {
            self.subresource = parts[2]
        }
        if parts.count >= 2 { self.name = parts[1] }
        if parts.count >= 1 { self.resource = parts[0] }

        if self.name.isEmpty, self.verb == "get" {
            let values = Self.queryValues(query ?? "")
            // The API server decodes ListOptions; if that fails it keeps only `watch`. Of ListOptions, only
            // fieldSelector, limit and timeoutSeconds can fail to decode among the fields that matter here.
            let fieldSelector = values["fieldSelector"]?.first.map(Self.parseFieldSelector)
            let decodes = (fieldSelector.map { $0 != nil } ?? true)
                && (values["limit"]?.first.map { Int64($0) != nil } ?? true)
                && (values["timeoutSeconds"]?.first.map { Int64($0) != nil } ?? true)
            let watch = values["watch"]?.first.map { !["false", "0"].contains($0.lowercased()) } ?? false
            self.verb = watch ? "watch" : "list"
            if decodes, let terms = fieldSelector ?? nil,
                let term = terms.first(where: { $0.field == "metadata.name" && $0.isEquality }),
                Self.isValidPathSegmentName(term.value)
            {
                self.name = term.value
            }
        }
        if self.name.isEmpty, self.verb == "delete" {
            self.verb = "deletecollection"
        }
    }

    /// Query parameters as Go's `url.ParseQuery` reads them: `&`-separated, a pair with `;` or a bad escape
    /// skipped, `+` a space, values in order.
    static func queryValues(_ query: String) -> [String: [String]] {
        var values: [String: [String]] = [:]
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) where !pair.contains(";") {
            let (rawKey, rawValue) = pair.firstIndex(of: "=").map {
                (String(pair[..<$0]), String(pair[pair.index(after: $0)...]))
            } ?? (String(pair), "")
            guard let key = Self.percentDecoded(rawKey, plusIsSpace: true),
                let value = Self.percentDecoded(rawValue, plusIsSpace: true)
            else { continue }
            values[key, default: []].append(value)
        }
        return values
    }

    /// `%XX` decoded (and `+` as a space in queries); nil for a malformed escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: String, plusIsSpace: Bool) -> String? {
        guard text.contains("%") || (plusIsSpace && text.contains("+")) else { return text }
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = utf8.next().flatMap(Self.hexValue), let low = utf8.next().flatMap(Self.hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else if plusIsSpace, byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// One term of a field selector: `field=value`, `field==value` or `field!=value`.
    struct FieldSelectorTerm: Sendable, Equatable {
        var field: String
        var isEquality: Bool
        var value: String
    }

    /// A field selector's terms as `fields.ParseSelector` reads them (`,` between terms, `\` escaping `,`, `=`,
    /// `!` and `\` in values); nil when it does not parse.
    static func parseFieldSelector(_ selector: String) -> [FieldSelectorTerm]? {
        if selector.isEmpty { return [] }
        var terms: [String] = []
        var current = ""
        var escaped = false
        for character in selector {
            if escaped {
                current.append(character)
                escaped = false
            } else if character == "\\" {
                current.append(character)
                escaped = true
            } else if character == "," {
                terms.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        terms.append(current)
        var parsed: [FieldSelectorTerm] = []
        for term in terms where !term.isEmpty {
            guard let term = Self.parseFieldSelectorTerm(term) else { return nil }
            parsed.append(term)
        }
        return parsed
    }

    /// `splitTerm`: the first `!=`, `==` or `=` anywhere in the term splits it (escapes only matter in the value).
    private static func parseFieldSelectorTerm(_ term: String) -> FieldSelectorTerm? {
        let characters = Array(term)
        for index in characters.indices {
            for (token, isEquality) in [("!=", false), ("==", true), ("=", true)] {
                let length = token.count
                guard index + length <= characters.count, String(characters[index..<(index + length)]) == token
                else { continue }
                guard let value = Self.unescapeFieldValue(String(characters[(index + length)...])) else {
                    return nil
                }
                return FieldSelectorTerm(field: String(characters[..<index]), isEquality: isEquality, value: value)
            }
        }
        return nil
    }

    private static func unescapeFieldValue(_ value: String) -> String? {
        var result = ""
        var escaped = false
        for character in value {
            if escaped {
                guard "\\,=".contains(character) else { return nil }
                result.append(character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "," || character == "=" {
                return nil
            } else {
                result.append(character)
            }
        }
        return escaped ? nil : result
    }

    /// `path.IsValidPathSegmentName`: not `.` or `..`, no `/` or `%`.
    private static func isValidPathSegmentName(_ name: String) -> Bool {
        name != "." && name != ".." && !name.contains("/") && !name.contains("%")
    }
}
