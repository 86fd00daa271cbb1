import COpenSSL
import CTunnelShims
import Glibc

/// Sans-I/O TLS over two memory BIOs: the owner feeds ciphertext from the socket with `receiveCiphertext(_:)` and
/// sends what `pendingCiphertext()` drains.
///
/// Not thread-safe: the connection's owner (one serial queue) is the only caller.
package final class TLSConnection {
    /// Progress of the handshake.
    package enum HandshakeState: Equatable, Sendable {
        /// More bytes must travel; send `pendingCiphertext()` and feed what arrives.
        case inProgress
        /// Both sides agree on keys; application data may flow.
        case complete
    }

    /// Outcome of one `read(into:)`.
    package enum ReadResult: Equatable, Sendable {
        /// This many plaintext bytes were stored at the start of the buffer.
        case bytes(Int)
        /// No plaintext is available until more ciphertext arrives.
        case wantMore
        /// The peer sent close_notify: no more plaintext will come.
        case closed
    }

    let ssl: OpaquePointer  // SSL *, owned (owns both BIOs through SSL_set_bio)
    private let networkInput: OpaquePointer  // BIO *, owned by ssl: ciphertext from the peer
    private let networkOutput: OpaquePointer  // BIO *, owned by ssl: ciphertext for the peer
    /// Keeps the SSL_CTX, and the ALPN list its callback reads, alive as long as the connection.
    private let context: TLSContext

    /// A connection using `context`; client or server as the context is.
    ///
    /// On a client, `serverName` is sent as SNI (DNS names only) and, when the context verifies the peer, the
    /// server's certificate must match it as a DNS name or IP address.
    package init(context: TLSContext, serverName: String?) throws {
        ERR_clear_error()
        guard let ssl = SSL_new(context.sslContext) else { throw OpenSSLError(call: "SSL_new") }
        guard let networkInput = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw OpenSSLError(call: "BIO_new")
        }
        guard let networkOutput = BIO_new(BIO_s_mem()) else {
            BIO_free(networkInput)
            SSL_free(ssl)
            throw OpenSSLError(call: "BIO_new")
        }
        // An empty input BIO means "wait for more", not end of file.
        _ = CTunnelShims_BIO_set_mem_eof_return(networkInput, -1)
        SSL_set_bio(ssl, networkInput, networkOutput)
        self.ssl = ssl
        self.networkInput = networkInput
        self.networkOutput = networkOutput
        self.context = context

        if context.isClient {
            SSL_set_connect_state(ssl)
            if let serverName {
                try self.configureServerName(serverName, verify: context.verifiesPeer)
            }
        } else {
            SSL_set_accept_state(ssl)
        }
    }

    deinit {
        SSL_free(self.ssl)
    }

    private func configureServerName(_ serverName: String, verify: Bool) throws {
        let isIPAddress = Resolver.isIPAddress(serverName)
        if !isIPAddress {
            guard CTunnelShims_SSL_set_tlsext_host_name(self.ssl, serverName) == 1 else {
                throw OpenSSLError(call: "SSL_set_tlsext_host_name")
            }
        }
        guard verify else { return }
        guard let parameters = SSL_get0_param(self.ssl) else { throw OpenSSLError(call: "SSL_get0_param") }
        if isIPAddress {
            guard X509_VERIFY_PARAM_set1_ip_asc(parameters, serverName) == 1 else {
                throw OpenSSLError(call: "X509_VERIFY_PARAM_set1_ip_asc")
            }
        } else {
            guard X509_VERIFY_PARAM_set1_host(parameters, serverName, 0) == 1 else {
                throw OpenSSLError(call: "X509_VERIFY_PARAM_set1_host")
            }
        }
    }

    /// Feeds ciphertext that arrived from the peer.
    package func receiveCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        let written = BIO_write(self.networkInput, base, Int32(bytes.count))
        // A memory BIO grows as needed; failing here means out of memory.
        precondition(written == Int32(bytes.count), "BIO_write to a memory BIO failed")
    }

    /// Drains the ciphertext waiting to be sent to the peer; empty if there is none.
    package func pendingCiphertext() -> [UInt8] {
        let pending = BIO_ctrl_pending(self.networkOutput)
        guard pending > 0 else { return [] }
        // Straight from the BIO into the array: no zero fill and no second copy.
        return [UInt8](unsafeUninitializedCapacity: pending) { buffer, count in
            let read = BIO_read(self.networkOutput, buffer.baseAddress, Int32(clamping: buffer.count))
            count = max(0, Int(read))
        }
    }

    /// Advances the handshake with the ciphertext received so far.
    ///
    /// Throws `OpenSSLError` on failure; a certificate verification failure leads its messages with OpenSSL's
    /// reason (e.g. "certificate has expired"). Send `pendingCiphertext()` afterwards either way: it may hold an alert.
    package func handshake() throws -> HandshakeState {
        ERR_clear_error()
        let result = SSL_do_handshake(self.ssl)
        if result == 1 { return .complete }
        switch SSL_get_error(self.ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .inProgress
        default:
            throw self.failure(call: "SSL_do_handshake")
        }
    }

    /// Decrypts available plaintext into `buffer`.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> ReadResult {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return .wantMore }
        ERR_clear_error()
        let result = SSL_read(self.ssl, base, Int32(clamping: buffer.count))
        if result > 0 { return .bytes(Int(result)) }
        switch SSL_get_error(self.ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantMore
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            throw self.failure(call: "SSL_read")
        }
    }

    /// Encrypts `bytes`; returns how many were accepted (all of them once the handshake is complete).
    /// The ciphertext is then waiting in `pendingCiphertext()`.
    package func write(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return 0 }
        ERR_clear_error()
        let result = SSL_write(self.ssl, base, Int32(clamping: bytes.count))
        if result > 0 { return Int(result) }
        switch SSL_get_error(self.ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return 0
        default:
            throw self.failure(call: "SSL_write")
        }
    }

    /// Queues close_notify; send `pendingCiphertext()` afterwards.
    package func shutdown() {
        ERR_clear_error()
        _ = SSL_shutdown(self.ssl)
        ERR_clear_error()
    }

    /// The protocol ALPN selected, if any.
    package var negotiatedALPN: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(self.ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The peer's leaf certificate, only if it was presented and verified.
    package var peerCertificate: Certificate? {
        guard SSL_get_verify_result(self.ssl) == X509_V_OK, let x509 = SSL_get1_peer_certificate(self.ssl) else {
            return nil
        }
        return Certificate(takingOwnershipOf: x509)
    }

    private func failure(call: String) -> OpenSSLError {
        let verifyResult = SSL_get_verify_result(self.ssl)
        guard verifyResult != X509_V_OK, let reason = X509_verify_cert_error_string(verifyResult) else {
            return OpenSSLError(call: call)
        }
        return OpenSSLError(call: call, leading: [String(cString: reason)])
    }
}
