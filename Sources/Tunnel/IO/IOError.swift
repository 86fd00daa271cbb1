import Foundation

/// A failed system call, with its errno.
package struct IOError: Error, Equatable, Sendable, CustomStringConvertible {
    package let call: String
    package let errno: Int32

    package init(errno: Int32, call: String) {
        self.call = call
        self.errno = errno
    }

    package var description: String {
        "\(self.call): \(String(cString: strerror(self.errno)))"
    }
}

/// Why a connection ended other than by an orderly close.
package enum ConnectionError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(IOError)
    case tls(String)
    case timedOut(String)
    case protocolViolation(String)
    /// getaddrinfo failed for `host`; `reason` is its own message (`Name or service not known`), not an errno.
    case resolution(host: String, reason: String)

    package var description: String {
        switch self {
        case .io(let error): "\(error)"
        case .tls(let reason): "TLS: \(reason)"
        case .timedOut(let what): "timed out: \(what)"
        case .protocolViolation(let reason): reason
        case .resolution(let host, let reason): "cannot resolve \(host): \(reason)"
        }
    }
}
