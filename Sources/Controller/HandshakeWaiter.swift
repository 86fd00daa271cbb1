import Foundation
import Tunnel

/// Holds an accepted connection until its TLS handshake is done, then hands it on; logs a failed handshake once.
final class HandshakeWaiter: ConnectionDelegate {
    private let listener: String
    private let onActive: (Connection) -> Void

    init(listener: String, onActive: @escaping (Connection) -> Void) {
        self.listener = listener
        self.onActive = onActive
    }

    func connectionDidBecomeActive(_ connection: Connection) {
        self.onActive(connection)
    }

    func connection(_ connection: Connection, didReceive bytes: UnsafeRawBufferPointer) {}
    func connectionDidReceiveEOF(_ connection: Connection) { connection.close() }
    func connection(_ connection: Connection, didFlush count: Int) {}

    func connectionDidClose(_ connection: Connection, error: ConnectionError?) {
        Log.warning("TLS handshake failed", [
            "listener": self.listener, "peer": connection.peerAddress.map { "\($0)" } ?? "?",
            "error": error.map { "\($0)" } ?? "closed by peer",
        ])
    }
}
