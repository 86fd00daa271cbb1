/// An error Porthole answers itself (controller or agent), rendered for the service it concerns: a Kubernetes
/// `Status` for a `kubernetes` service, so kubectl prints the message, and `{"error": …}` for every other service
/// and for requests whose service is not yet known.
///
/// The one place error replies are written: the user connections, the agent's backend exchange and the small
/// HTTP endpoints all render through it.
package struct ErrorResponse: Sendable, Equatable {
    /// A Kubernetes `StatusReason`: the word kubectl prints in `Error from server (REASON): message`.
    package struct Reason: RawRepresentable, Sendable, Equatable, CustomStringConvertible {
        package var rawValue: String

        package init(rawValue: String) {
            self.rawValue = rawValue
        }

        package static let badRequest = Reason(rawValue: "BadRequest")
        package static let unauthorized = Reason(rawValue: "Unauthorized")
        package static let forbidden = Reason(rawValue: "Forbidden")
        package static let notFound = Reason(rawValue: "NotFound")
        package static let methodNotAllowed = Reason(rawValue: "MethodNotAllowed")
        package static let requestEntityTooLarge = Reason(rawValue: "RequestEntityTooLarge")
        package static let tooManyRequests = Reason(rawValue: "TooManyRequests")
        package static let internalError = Reason(rawValue: "InternalError")
        package static let serviceUnavailable = Reason(rawValue: "ServiceUnavailable")
        package static let timeout = Reason(rawValue: "Timeout")

        /// The reason Kubernetes gives a status code it does not qualify further.
        package init(status: Int) {
            switch status {
            case 401: self = .unauthorized
            case 403: self = .forbidden
            case 404: self = .notFound
            case 405: self = .methodNotAllowed
            case 413, 431: self = .requestEntityTooLarge
            case 429: self = .tooManyRequests
            case 503: self = .serviceUnavailable
            case 504: self = .timeout
            case 400..<500: self = .badRequest
            default: self = .internalError
            }
        }

        package var description: String { self.rawValue }
    }

    package var status: Int
    package var reason: Reason
    package var message: String
    /// Whether the service is a `kubernetes` one, whose clients understand a `Status` body.
    package var isKubernetes: Bool
    /// Included in the `{"error": …}` shape so a user can quote it; a `Status` has no field for it.
    package var requestID: String?

    /// An error about a service of `serviceType` (`kubernetes`, `jenkins`, …; nil or `-` when not known yet);
    /// `reason` defaults to the one Kubernetes uses for `status`.
    package init(status: Int, reason: Reason? = nil, message: String, serviceType: String?, requestID: String? = nil) {
        self.status = status
        self.reason = reason ?? Reason(status: status)
        self.message = message
        self.isKubernetes = serviceType == "kubernetes"
        self.requestID = requestID
    }

    package static let contentType = "application/json"

    /// The JSON body, newline-terminated.
    package var body: [UInt8] {
        var text: String
        if self.isKubernetes {
            text = #"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"#
                + Log.jsonString(self.message) + #","reason":"# + Log.jsonString(self.reason.rawValue)
                + #","code":\#(self.status)}"#
        } else {
            text = #"{"error":"# + Log.jsonString(self.message)
            if let requestID = self.requestID { text += #","requestID":"# + Log.jsonString(requestID) }
            text += "}"
        }
        return Array((text + "\n").utf8)
    }

    /// For a `Status`, a `Warning: 299 - "message"` header: client-go ignores the body of an error to its
    /// discovery requests (kubectl prints only "the server is currently unable to handle the request"), but it
    /// prints every 299 warning, so the reason reaches the user even before kubectl's discovery cache is warm.
    package var warning: String? {
        guard self.isKubernetes else { return nil }
        var text = "299 - \""
        for scalar in self.message.unicodeScalars {
            switch scalar {
            case "\"", "\\": text += "\\\(scalar)"
            case " "..."~": text.unicodeScalars.append(scalar)
            default: text += "?"  // a header value carries visible ASCII only
            }
        }
        return text + "\""
    }

    /// The HTTP/2 response header block for `body`, plus `extra` fields (the agent marks its own errors).
    package func http2Headers(adding extra: [HTTPField] = []) -> [HTTPField] {
        var fields = [HTTPField(":status", "\(self.status)"), HTTPField("content-type", Self.contentType),
                      HTTPField("content-length", "\(self.body.count)")]
        if let warning = self.warning { fields.append(HTTPField("warning", warning)) }
        return fields + extra
    }

    /// The whole HTTP/1.1 response: head with `Content-Length`, `extra` fields (`Retry-After`) and
    /// `Connection: close` unless `keepAlive`, then the body.
    package func http1Message(keepAlive: Bool, adding extra: [HTTPField] = []) -> [UInt8] {
        let body = self.body
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: Self.contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if let warning = self.warning { headers.add(name: "Warning", value: warning) }
        for field in extra { headers.add(name: field.name, value: field.value) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        return HTTP1Serializer.responseHead(HTTPResponseHead(status: self.status, headers: headers)) + body
    }
}
