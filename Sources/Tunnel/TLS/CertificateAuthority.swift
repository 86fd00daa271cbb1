import COpenSSL
import CTunnelShims
import Foundation

/// What a leaf certificate should say: who holds it, its names, how long it lasts and what it may be used for.
package struct CertificateSpec: Sendable {
    /// Which side of a TLS connection the certificate may authenticate (ExtendedKeyUsage).
    package enum Usage: Sendable {
        case server, client, serverAndClient
    }

    /// Subject CN: the human or tool holding the certificate, for logs and audit.
    package var commonName: String
    /// URI SANs, e.g. an `EndpointIdentity` URI.
    package var uris: [String]
    /// DNS SANs.
    package var dnsNames: [String]
    /// IP SANs as text (`127.0.0.1`, `::1`).
    package var ipAddresses: [String]
    /// Length of the validity window.
    package var validity: TimeInterval
    /// Start of the validity window; `nil` means five minutes ago, to tolerate clock skew.
    package var notBefore: Date?
    /// ExtendedKeyUsage of the certificate.
    package var usage: Usage

    /// A spec; every leaf gets at least one SAN, so give a URI, DNS name or IP address.
    package init(
        commonName: String, uris: [String] = [], dnsNames: [String] = [], ipAddresses: [String] = [],
        validity: TimeInterval, notBefore: Date? = nil, usage: Usage
    ) {
        self.commonName = commonName
        self.uris = uris
        self.dnsNames = dnsNames
        self.ipAddresses = ipAddresses
        self.validity = validity
        self.notBefore = notBefore
        self.usage = usage
    }
}

/// A certificate authority: a self-signed CA certificate and its key, which issue leaf certificates.
package final class CertificateAuthority: Sendable {
    /// How far back a default validity window starts, to tolerate clock skew between hosts.
    static let clockSkewAllowance: TimeInterval = 5 * 60
    /// Default lifetime of a CA certificate: ten years.
    package static let defaultValidity: TimeInterval = 10 * 365 * 24 * 60 * 60
    /// Default lifetime of agent and control credentials: one year.
    package static let defaultCredentialValidity: TimeInterval = 365 * 24 * 60 * 60

    /// The CA certificate every peer trusts.
    package let certificate: Certificate
    /// The CA's signing key.
    package let key: PrivateKey

    private init(certificate: Certificate, key: PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// A new CA with a fresh P-256 key and a self-signed certificate valid for `validity` seconds from now.
    package static func create(commonName: String, validity: TimeInterval) throws -> CertificateAuthority {
        let key = try PrivateKey.generateP256()
        let notBefore = Date().addingTimeInterval(-Self.clockSkewAllowance)
        let certificate = try Self.makeCertificate(
            commonName: commonName, publicKeyOf: key, issuer: nil, signer: key, notBefore: notBefore,
            notAfter: notBefore.addingTimeInterval(validity),
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ],
            uris: [], dnsNames: [], ipAddresses: [])
        return CertificateAuthority(certificate: certificate, key: key)
    }

    /// Loads a CA from PEM; throws if the certificate is not a CA or the key does not belong to it.
    package init(certificatePEM: String, keyPEM: String) throws {
        let certificate = try Certificate(pem: certificatePEM)
        let key = try PrivateKey(pem: keyPEM)
        guard certificate.isCertificateAuthority else {
            throw OpenSSLError(call: "X509_check_ca", messages: ["certificate is not a CA certificate"])
        }
        guard certificate.matches(key) else {
            throw OpenSSLError(call: "X509_check_private_key", messages: ["key does not match the CA certificate"])
        }
        self.certificate = certificate
        self.key = key
    }

    /// Issues a leaf certificate for the public half of `key`.
    package func issue(_ spec: CertificateSpec, publicKeyOf key: PrivateKey) throws -> Certificate {
        guard !(spec.uris.isEmpty && spec.dnsNames.isEmpty && spec.ipAddresses.isEmpty) else {
            throw OpenSSLError(
                call: "CertificateAuthority.issue", messages: ["a leaf certificate needs at least one subject alternative name"])
        }
        let extendedKeyUsage =
            switch spec.usage {
            case .server: "serverAuth"
            case .client: "clientAuth"
            case .serverAndClient: "serverAuth,clientAuth"
            }
        let notBefore = spec.notBefore ?? Date().addingTimeInterval(-Self.clockSkewAllowance)
        return try Self.makeCertificate(
            commonName: spec.commonName, publicKeyOf: key, issuer: self.certificate, signer: self.key,
            notBefore: notBefore, notAfter: notBefore.addingTimeInterval(spec.validity),
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, extendedKeyUsage),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ],
            uris: spec.uris, dnsNames: spec.dnsNames, ipAddresses: spec.ipAddresses)
    }

    /// Issues a leaf certificate for a fresh P-256 key.
    package func issueWithNewKey(_ spec: CertificateSpec) throws -> (certificate: Certificate, key: PrivateKey) {
        let key = try PrivateKey.generateP256()
        return (try self.issue(spec, publicKeyOf: key), key)
    }

    /// Issues a credential with a fresh key naming `identity` in its URI SAN and `commonName` (the human or tool
    /// holding it) as subject CN. Agents, operators and users are TLS clients, hence the default usage.
    package func issueCredential(
        for identity: EndpointIdentity, trustDomain: String, commonName: String, validity: TimeInterval,
        usage: CertificateSpec.Usage = .client
    ) throws -> (certificate: Certificate, key: PrivateKey) {
        let spec = CertificateSpec(
            commonName: commonName, uris: [identity.uri(trustDomain: trustDomain)],
            validity: validity, usage: usage)
        return try self.issueWithNewKey(spec)
    }

    private static func makeCertificate(
        commonName: String, publicKeyOf subjectKey: PrivateKey, issuer: Certificate?, signer: PrivateKey,
        notBefore: Date, notAfter: Date, extensions: [(Int32, String)], uris: [String], dnsNames: [String],
        ipAddresses: [String]
    ) throws -> Certificate {
        ERR_clear_error()
        guard let x509 = X509_new() else { throw OpenSSLError(call: "X509_new") }
        let certificate = Certificate(takingOwnershipOf: x509)
        guard X509_set_version(x509, Int(X509_VERSION_3)) == 1 else { throw OpenSSLError(call: "X509_set_version") }
        try Self.setRandomSerial(x509)
        guard ASN1_TIME_set(X509_getm_notBefore(x509), time_t(notBefore.timeIntervalSince1970)) != nil,
            ASN1_TIME_set(X509_getm_notAfter(x509), time_t(notAfter.timeIntervalSince1970)) != nil
        else { throw OpenSSLError(call: "ASN1_TIME_set") }
        guard let subject = X509_get_subject_name(x509),
            X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1
        else { throw OpenSSLError(call: "X509_NAME_add_entry_by_txt") }
        guard X509_set_issuer_name(x509, X509_get_subject_name(issuer?.x509 ?? x509)) == 1 else {
            throw OpenSSLError(call: "X509_set_issuer_name")
        }
        guard X509_set_pubkey(x509, subjectKey.pkey) == 1 else { throw OpenSSLError(call: "X509_set_pubkey") }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.x509 ?? x509, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw OpenSSLError(call: "X509V3_EXT_conf_nid", leading: ["extension \(nid) = \(value)"])
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else { throw OpenSSLError(call: "X509_add_ext") }
        }
        if !(uris.isEmpty && dnsNames.isEmpty && ipAddresses.isEmpty) {
            try Self.addSubjectAltNames(x509, uris: uris, dnsNames: dnsNames, ipAddresses: ipAddresses)
        }
        guard X509_sign(x509, signer.pkey, EVP_sha256()) > 0 else { throw OpenSSLError(call: "X509_sign") }
        return certificate
    }

    /// Sets a random positive 128-bit serial number (RFC 5280 allows up to 20 octets).
    private static func setRandomSerial(_ x509: OpaquePointer) throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else { throw OpenSSLError(call: "RAND_bytes") }
        bytes[0] = (bytes[0] & 0x7f) | 0x40  // positive, and always 16 octets long
        guard let bignum = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw OpenSSLError(call: "BN_bin2bn") }
        defer { BN_free(bignum) }
        guard BN_to_ASN1_INTEGER(bignum, X509_get_serialNumber(x509)) != nil else {
            throw OpenSSLError(call: "BN_to_ASN1_INTEGER")
        }
    }

    private static func addSubjectAltNames(
        _ x509: OpaquePointer, uris: [String], dnsNames: [String], ipAddresses: [String]
    ) throws {
        guard let names = GENERAL_NAMES_new() else { throw OpenSSLError(call: "GENERAL_NAMES_new") }
        defer { CTunnelShims_GENERAL_NAMES_free(names) }

        func append(type: Int32, value: UnsafeMutablePointer<ASN1_STRING>) throws {
            guard let name = GENERAL_NAME_new() else {
                ASN1_STRING_free(value)
                throw OpenSSLError(call: "GENERAL_NAME_new")
            }
            GENERAL_NAME_set0_value(name, type, UnsafeMutableRawPointer(value))
            guard CTunnelShims_sk_GENERAL_NAME_push(names, name) > 0 else {
                GENERAL_NAME_free(name)
                throw OpenSSLError(call: "sk_GENERAL_NAME_push")
            }
        }
        func ia5String(_ text: String) throws -> UnsafeMutablePointer<ASN1_STRING> {
            guard let string = ASN1_IA5STRING_new() else { throw OpenSSLError(call: "ASN1_IA5STRING_new") }
            let bytes = Array(text.utf8)
            guard ASN1_STRING_set(string, bytes, Int32(bytes.count)) == 1 else {
                ASN1_STRING_free(string)
                throw OpenSSLError(call: "ASN1_STRING_set")
            }
            return string
        }

        for uri in uris { try append(type: GEN_URI, value: try ia5String(uri)) }
        for dnsName in dnsNames { try append(type: GEN_DNS, value: try ia5String(dnsName)) }
        for address in ipAddresses {
            guard let octets = a2i_IPADDRESS(address) else {
                throw OpenSSLError(call: "a2i_IPADDRESS", leading: ["not an IP address: \(address)"])
            }
            try append(type: GEN_IPADD, value: octets)
        }
        let added = X509_add1_ext_i2d(
            x509, NID_subject_alt_name, UnsafeMutableRawPointer(names), 0, UInt(X509V3_ADD_DEFAULT))
        guard added == 1 else { throw OpenSSLError(call: "X509_add1_ext_i2d") }
    }
}
