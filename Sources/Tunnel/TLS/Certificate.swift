import COpenSSL
import CTunnelShims
import Foundation

/// An X.509 certificate. Immutable after init, so it may be shared between threads.
package final class Certificate: @unchecked Sendable {
    let x509: OpaquePointer  // X509 *, owned

    /// Wraps `x509`, which this object frees.
    init(takingOwnershipOf x509: OpaquePointer) {
        self.x509 = x509
    }

    /// Wraps `x509` after taking a reference of its own (for pointers OpenSSL keeps owning).
    convenience init(retaining x509: OpaquePointer) {
        X509_up_ref(x509)
        self.init(takingOwnershipOf: x509)
    }

    deinit {
        X509_free(self.x509)
    }

    /// Parses the first PEM certificate in `pem`.
    package convenience init(pem: String) throws {
        let bio = try MemoryBIO(text: pem)
        ERR_clear_error()
        guard let x509 = PEM_read_bio_X509(bio.bio, nil, nil, nil) else {
            throw OpenSSLError(call: "PEM_read_bio_X509")
        }
        self.init(takingOwnershipOf: x509)
    }

    /// Parses every PEM certificate in `pem`, in order (leaf first for a chain file); throws if there is none.
    package static func chain(pem: String) throws -> [Certificate] {
        let bio = try MemoryBIO(text: pem)
        var certificates: [Certificate] = []
        ERR_clear_error()
        while let x509 = PEM_read_bio_X509(bio.bio, nil, nil, nil) {
            certificates.append(Certificate(takingOwnershipOf: x509))
        }
        guard !certificates.isEmpty else { throw OpenSSLError(call: "PEM_read_bio_X509") }
        ERR_clear_error()  // the read that ended the loop queued "no start line"
        return certificates
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`).
    package var pem: String {
        guard let bio = try? MemoryBIO(), PEM_write_bio_X509(bio.bio, self.x509) == 1 else {
            preconditionFailure("PEM_write_bio_X509 failed: \(OpenSSLError.drainErrorQueue())")
        }
        return bio.text
    }

    /// The subject's first common name, if any.
    package var commonName: String? {
        guard let name = X509_get_subject_name(self.x509) else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let count = ASN1_STRING_to_UTF8(&utf8, data)
        guard count >= 0, let utf8 else { return nil }
        defer { CTunnelShims_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(count)), as: UTF8.self)
    }

    /// URI subject alternative names, e.g. `spiffe://porthole.local/agent/edge-1`.
    package var uriSANs: [String] {
        self.subjectAltNames(ofType: GEN_URI).map { String(decoding: $0, as: UTF8.self) }
    }

    /// DNS subject alternative names.
    package var dnsSANs: [String] {
        self.subjectAltNames(ofType: GEN_DNS).map { String(decoding: $0, as: UTF8.self) }
    }

    /// IP subject alternative names in their usual text form (`127.0.0.1`, `::1`).
    package var ipSANs: [String] {
        self.subjectAltNames(ofType: GEN_IPADD).compactMap(Self.ipAddressText)
    }

    /// Start of the validity window.
    package var notBefore: Date {
        Self.date(X509_get0_notBefore(self.x509))
    }

    /// End of the validity window.
    package var notAfter: Date {
        Self.date(X509_get0_notAfter(self.x509))
    }

    /// The serial number in upper-case hex, without leading zeros.
    package var serialNumberHex: String {
        guard let serial = X509_get0_serialNumber(self.x509), let bignum = ASN1_INTEGER_to_BN(serial, nil) else {
            return ""
        }
        defer { BN_free(bignum) }
        guard let hex = BN_bn2hex(bignum) else { return "" }
        defer { CTunnelShims_OPENSSL_free(hex) }
        return String(cString: hex)
    }

    /// Whether BasicConstraints marks this certificate as a CA.
    package var isCertificateAuthority: Bool {
        X509_check_ca(self.x509) >= 1
    }

    /// Whether `key` is the private key for this certificate's public key.
    package func matches(_ key: PrivateKey) -> Bool {
        let matches = X509_check_private_key(self.x509, key.pkey) == 1
        ERR_clear_error()
        return matches
    }

    /// The raw value bytes of every SAN entry of one GENERAL_NAME type.
    private func subjectAltNames(ofType wanted: Int32) -> [[UInt8]] {
        guard let raw = X509_get_ext_d2i(self.x509, NID_subject_alt_name, nil, nil) else { return [] }
        let names = OpaquePointer(raw)
        defer { CTunnelShims_GENERAL_NAMES_free(names) }
        var values: [[UInt8]] = []
        for index in 0..<CTunnelShims_sk_GENERAL_NAME_num(names) {
            guard let name = CTunnelShims_sk_GENERAL_NAME_value(names, index) else { continue }
            var type: Int32 = 0
            guard let value = GENERAL_NAME_get0_value(name, &type), type == wanted else { continue }
            let string = value.assumingMemoryBound(to: ASN1_STRING.self)
            let count = Int(ASN1_STRING_length(string))
            guard count > 0, let bytes = ASN1_STRING_get0_data(string) else {
                values.append([])
                continue
            }
            values.append(Array(UnsafeBufferPointer(start: bytes, count: count)))
        }
        return values
    }

    private static func ipAddressText(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) != nil }
        guard ok else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return Date(timeIntervalSince1970: 0) }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }
}
