import Tunnel

/// Why a control API request was refused: the HTTP status and a reason that names the field at fault.
package struct ControlRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The HTTP status to answer with, 400 for every validation failure.
    package var status: Int
    /// A reason fit to show the caller, e.g. `agent: "a/b" must be letters, digits, '.', '_' or '-'`.
    package var reason: String

    /// A refusal with `status` (400 unless told) and `reason`.
    package init(status: Int = 400, _ reason: String) {
        self.status = status
        self.reason = reason
    }

    package var description: String { self.reason }
}
