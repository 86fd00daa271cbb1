import Dispatch
import Foundation

/// Name resolution that never blocks an event loop: getaddrinfo can wait seconds on a slow DNS server, so names
/// are looked up on a resolver thread and the answer comes back on the caller's queue. IP literals are parsed
/// without a thread hop, but still answered on the caller's queue, never inline.
package enum Resolver {
    private static let queue = DispatchQueue(label: "porthole.resolver", attributes: .concurrent)

    /// Whether `host` is an IPv4 or IPv6 literal (no DNS needed).
    package static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// Resolves `host:port` and calls `completion` on `queue`, always asynchronously: an IP literal is parsed at
    /// once and delivered on the next turn of `queue`, a name after the lookup finished on a resolver thread.
    package static func resolve(host: String, port: UInt16, deliverOn queue: DispatchQueue,
                                _ completion: @escaping @Sendable (Result<[SocketAddress], Error>) -> Void) {
        if self.isIPAddress(host) || host.isEmpty {
            let result = Result { try SocketAddress.resolve(host: host, port: port) }
            queue.async { completion(result) }
            return
        }
        self.queue.async {
            let result = Result { try SocketAddress.resolve(host: host, port: port) }
            queue.async { completion(result) }
        }
    }
}
