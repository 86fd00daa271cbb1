import Foundation

/// The answer of a small request/response endpoint: status, headers and a body sent with `Content-Length`.
package struct SimpleResponse: Sendable, Equatable {
    package var status: Int
    package var headers: HTTPHeaders
    package var body: [UInt8]
    /// Set for a response that is not ready yet (`later`); the rest is unused then.
    package var deferred: Deferred?

    /// A response produced after the handler returned: `start` runs on the connection's queue and is given the
    /// function to call, from any queue, with the final response. The connection reads no further request
    /// meanwhile.
    package struct Deferred: Sendable {
        package let start: @Sendable (@escaping @Sendable (SimpleResponse) -> Void) -> Void
    }

    /// A response that `start` produces later.
    package static func later(
        _ start: @escaping @Sendable (@escaping @Sendable (SimpleResponse) -> Void) -> Void
    ) -> SimpleResponse {
        var response = SimpleResponse(status: 0)
        response.deferred = Deferred(start: start)
        return response
    }

    package static func == (lhs: SimpleResponse, rhs: SimpleResponse) -> Bool {
        lhs.status == rhs.status && lhs.headers == rhs.headers && lhs.body == rhs.body
            && (lhs.deferred == nil) == (rhs.deferred == nil)
    }

    /// A response; `Content-Length` and `Connection` are set when it is encoded.
    package init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `value` as JSON (sorted keys, ISO-8601 dates); a value that cannot be encoded gives a 500.
    package static func json(_ status: Int, _ value: some Encodable) -> SimpleResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        do {
            var body = Array(try encoder.encode(value))
            body.append(UInt8(ascii: "\n"))
            return SimpleResponse(status: status, headers: Self.contentType("application/json"), body: body)
        } catch {
            Log.error("encoding a JSON response failed", ["error": "\(error)"])
            return .error(500, "internal error: the response could not be encoded")
        }
    }

    /// `{"error": message}` as JSON, the error shape every Porthole listener uses.
    package static func error(_ status: Int, _ message: String) -> SimpleResponse {
        let error = ErrorResponse(status: status, message: message, serviceType: nil)
        return SimpleResponse(status: status, headers: Self.contentType(ErrorResponse.contentType), body: error.body)
    }

    /// `text` as the body, with `contentType`.
    package static func text(
        _ status: Int, _ text: String, contentType: String = "text/plain; charset=utf-8"
    ) -> SimpleResponse {
        SimpleResponse(status: status, headers: Self.contentType(contentType), body: Array(text.utf8))
    }

    private static func contentType(_ value: String) -> HTTPHeaders {
        HTTPHeaders([(name: "Content-Type", value: value)])
    }

    /// The response on the wire: head with `Content-Length` (and `Connection: close` unless `keepAlive`), then the
    /// body unless `includeBody` is false (an answer to HEAD keeps the length of the body it leaves out).
    package func encoded(keepAlive: Bool, includeBody: Bool = true) -> [UInt8] {
        var headers = self.headers
        headers.replaceOrAdd(name: "Content-Length", value: "\(self.body.count)")
        headers.remove(name: "Transfer-Encoding")
        if keepAlive {
            headers.remove(name: "Connection")
        } else {
            headers.replaceOrAdd(name: "Connection", value: "close")
        }
        var bytes = HTTP1Serializer.responseHead(HTTPResponseHead(status: self.status, headers: headers))
        if includeBody { bytes += self.body }
        return bytes
    }
}
