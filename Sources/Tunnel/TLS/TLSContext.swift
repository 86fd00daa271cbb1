import COpenSSL
import CTunnelShims

/// Shared TLS configuration (OpenSSL `SSL_CTX`): identity, trust anchors, peer verification and ALPN.
///
/// Configured once in the factory methods and only read afterwards, so connections on any queue may share it.
package final class TLSContext: @unchecked Sendable {
    /// Whether and how a server asks clients for a certificate.
    package enum ClientAuthentication: Sendable {
        /// Never ask for a client certificate.
        case none
        /// Ask; verify a certificate if one is sent, but accept clients without one.
        case optional
        /// Fail the handshake unless the client presents a valid certificate.
        case required
    }

    let sslContext: OpaquePointer  // SSL_CTX *, owned
    /// Whether connections made from this context act as the TLS client.
    let isClient: Bool
    /// Whether a client context verifies the server's certificate (and host name, when given one).
    let verifiesPeer: Bool
    /// ALPN protocol names in preference order.
    let alpn: [String]

    private init(sslContext: OpaquePointer, isClient: Bool, verifiesPeer: Bool, alpn: [String]) {
        self.sslContext = sslContext
        self.isClient = isClient
        self.verifiesPeer = verifiesPeer
        self.alpn = alpn
    }

    deinit {
        SSL_CTX_free(self.sslContext)
    }

    /// A server context presenting `certificateChain` (leaf first) and verifying clients against `trustedCAs`.
    ///
    /// `alpn` lists the protocols the server accepts, most preferred first; the server's order wins.
    package static func server(
        certificateChain: [Certificate], key: PrivateKey, trustedCAs: [Certificate],
        clientAuthentication: ClientAuthentication, alpn: [String]
    ) throws -> TLSContext {
        let context = try Self.make(isClient: false, verifiesPeer: clientAuthentication != .none, alpn: alpn)
        try context.use(certificateChain: certificateChain, key: key)
        try context.trust(trustedCAs)
        let mode =
            switch clientAuthentication {
            case .none: SSL_VERIFY_NONE
            case .optional: SSL_VERIFY_PEER
            case .required: SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
            }
        SSL_CTX_set_verify(context.sslContext, mode, nil)
        if clientAuthentication != .none {
            for certificate in trustedCAs {
                guard SSL_CTX_add_client_CA(context.sslContext, certificate.x509) == 1 else {
                    throw OpenSSLError(call: "SSL_CTX_add_client_CA")
                }
            }
        }
        // Tickets would only cost bytes: nothing here resumes sessions.
        SSL_CTX_set_num_tickets(context.sslContext, 0)
        if !alpn.isEmpty {
            SSL_CTX_set_alpn_select_cb(
                context.sslContext, selectALPN, Unmanaged.passUnretained(context).toOpaque())
        }
        return context
    }

    /// A client context; verifies the server against `trustedCAs` (the system's roots when empty) unless
    /// `verifyPeer` is false, and presents `certificateChain` (leaf first) with `key` when both are given.
    /// Porthole's own peers speak TLS 1.3 only; `allowTLS12` is for backends outside our control.
    package static func client(
        certificateChain: [Certificate]?, key: PrivateKey?, trustedCAs: [Certificate], verifyPeer: Bool,
        alpn: [String], allowTLS12: Bool = false
    ) throws -> TLSContext {
        let context = try Self.make(isClient: true, verifiesPeer: verifyPeer, alpn: alpn,
                                    minimumVersion: allowTLS12 ? TLS1_2_VERSION : TLS1_3_VERSION)
        if let certificateChain, let key {
            try context.use(certificateChain: certificateChain, key: key)
        }
        if trustedCAs.isEmpty {
            ERR_clear_error()
            guard SSL_CTX_set_default_verify_paths(context.sslContext) == 1 else {
                throw OpenSSLError(call: "SSL_CTX_set_default_verify_paths")
            }
        }
        try context.trust(trustedCAs)
        SSL_CTX_set_verify(context.sslContext, verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        if !alpn.isEmpty {
            let wire = Self.alpnWireFormat(alpn)
            ERR_clear_error()
            // Unlike most of OpenSSL, this returns 0 on success.
            guard SSL_CTX_set_alpn_protos(context.sslContext, wire, UInt32(wire.count)) == 0 else {
                throw OpenSSLError(call: "SSL_CTX_set_alpn_protos")
            }
        }
        return context
    }

    private static func make(
        isClient: Bool, verifiesPeer: Bool, alpn: [String], minimumVersion: Int32 = TLS1_3_VERSION
    ) throws -> TLSContext {
        precondition(alpn.allSatisfy { !$0.isEmpty && $0.utf8.count < 256 }, "ALPN names are 1...255 bytes")
        ERR_clear_error()
        guard let sslContext = SSL_CTX_new(TLS_method()) else { throw OpenSSLError(call: "SSL_CTX_new") }
        let context = TLSContext(sslContext: sslContext, isClient: isClient, verifiesPeer: verifiesPeer, alpn: alpn)
        guard CTunnelShims_SSL_CTX_set_min_proto_version(sslContext, minimumVersion) == 1 else {
            throw OpenSSLError(call: "SSL_CTX_set_min_proto_version")
        }
        _ = CTunnelShims_SSL_CTX_set_options(sslContext, CTunnelShims_SSL_OP_NO_RENEGOTIATION())
        // Send exactly the chain we were given, not one OpenSSL assembles from the trust store.
        _ = CTunnelShims_SSL_CTX_set_mode(
            sslContext,
            CTunnelShims_SSL_MODE_RELEASE_BUFFERS() | CTunnelShims_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER()
                | CTunnelShims_SSL_MODE_NO_AUTO_CHAIN())
        return context
    }

    private func use(certificateChain: [Certificate], key: PrivateKey) throws {
        guard let leaf = certificateChain.first else {
            throw OpenSSLError(call: "SSL_CTX_use_certificate", messages: ["empty certificate chain"])
        }
        ERR_clear_error()
        guard SSL_CTX_use_certificate(self.sslContext, leaf.x509) == 1 else {
            throw OpenSSLError(call: "SSL_CTX_use_certificate")
        }
        for intermediate in certificateChain.dropFirst() {
            X509_up_ref(intermediate.x509)  // the context takes ownership of this reference
            guard CTunnelShims_SSL_CTX_add_extra_chain_cert(self.sslContext, intermediate.x509) == 1 else {
                X509_free(intermediate.x509)
                throw OpenSSLError(call: "SSL_CTX_add_extra_chain_cert")
            }
        }
        guard SSL_CTX_use_PrivateKey(self.sslContext, key.pkey) == 1 else {
            throw OpenSSLError(call: "SSL_CTX_use_PrivateKey")
        }
        guard SSL_CTX_check_private_key(self.sslContext) == 1 else {
            throw OpenSSLError(call: "SSL_CTX_check_private_key")
        }
    }

    private func trust(_ certificates: [Certificate]) throws {
        guard let store = SSL_CTX_get_cert_store(self.sslContext) else {
            throw OpenSSLError(call: "SSL_CTX_get_cert_store")
        }
        ERR_clear_error()
        for certificate in certificates {
            guard X509_STORE_add_cert(store, certificate.x509) == 1 else {
                throw OpenSSLError(call: "X509_STORE_add_cert")
            }
        }
    }

    /// `names` as ALPN wire format: each name prefixed by its length.
    static func alpnWireFormat(_ names: [String]) -> [UInt8] {
        names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
    }
}

/// ALPN selection on the server: the first of the server's protocols that the client also offers.
///
/// `arg` is the unretained `TLSContext`; `out` points into `clientList`, which OpenSSL copies after the call.
private func selectALPN(
    _ ssl: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ clientList: UnsafePointer<UInt8>?, _ clientListLength: UInt32, _ arg: UnsafeMutableRawPointer?
) -> Int32 {
    guard let out, let outLength, let clientList, let arg else { return SSL_TLSEXT_ERR_NOACK }
    let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
    let offered = UnsafeBufferPointer(start: clientList, count: Int(clientListLength))
    for wanted in context.alpn {
        let wantedBytes = Array(wanted.utf8)
        var index = 0
        while index < offered.count {
            let length = Int(offered[index])
            let start = index + 1
            guard start + length <= offered.count else { break }
            if length == wantedBytes.count, offered[start..<start + length].elementsEqual(wantedBytes) {
                out.pointee = clientList + start
                outLength.pointee = UInt8(length)
                return SSL_TLSEXT_ERR_OK
            }
            index = start + length
        }
    }
    // No protocol in common: continue without ALPN and let the application protocol decide.
    return SSL_TLSEXT_ERR_NOACK
}
