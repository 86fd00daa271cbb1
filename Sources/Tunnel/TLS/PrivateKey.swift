import COpenSSL
import CTunnelShims

/// An EC P-256 private key (with its public half).
///
/// Immutable after init, so it may be shared between threads.
package final class PrivateKey: @unchecked Sendable {
    let pkey: OpaquePointer  // EVP_PKEY *, owned

    /// Wraps `pkey`, which this object frees.
    init(takingOwnershipOf pkey: OpaquePointer) {
        self.pkey = pkey
    }

    deinit {
        EVP_PKEY_free(self.pkey)
    }

    /// A fresh random P-256 key.
    package static func generateP256() throws -> PrivateKey {
        ERR_clear_error()
        guard let pkey = CTunnelShims_EVP_EC_gen("P-256") else { throw OpenSSLError(call: "EVP_EC_gen") }
        return PrivateKey(takingOwnershipOf: pkey)
    }

    /// Parses a PEM private key (PKCS#8 or traditional EC); throws if there is none.
    package convenience init(pem: String) throws {
        let bio = try MemoryBIO(text: pem)
        ERR_clear_error()
        guard let pkey = PEM_read_bio_PrivateKey(bio.bio, nil, nil, nil) else {
            throw OpenSSLError(call: "PEM_read_bio_PrivateKey")
        }
        self.init(takingOwnershipOf: pkey)
    }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    package var pem: String {
        guard let bio = try? MemoryBIO(), PEM_write_bio_PrivateKey(bio.bio, self.pkey, nil, nil, 0, nil, nil) == 1
        else {
            preconditionFailure("PEM_write_bio_PrivateKey failed: \(OpenSSLError.drainErrorQueue())")
        }
        return bio.text
    }

    /// The public half as PEM (`-----BEGIN PUBLIC KEY-----`).
    package var publicKeyPEM: String {
        guard let bio = try? MemoryBIO(), PEM_write_bio_PUBKEY(bio.bio, self.pkey) == 1 else {
            preconditionFailure("PEM_write_bio_PUBKEY failed: \(OpenSSLError.drainErrorQueue())")
        }
        return bio.text
    }
}
