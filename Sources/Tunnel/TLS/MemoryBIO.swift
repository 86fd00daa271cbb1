import COpenSSL
import CTunnelShims

/// A growable in-memory OpenSSL BIO, used to move PEM text in and out of OpenSSL.
final class MemoryBIO {
    let bio: OpaquePointer  // BIO *, owned

    /// An empty BIO to write into.
    init() throws {
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLError(call: "BIO_new") }
        self.bio = bio
    }

    /// A BIO holding a copy of `text`.
    convenience init(text: String) throws {
        try self.init()
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { BIO_write(self.bio, $0.baseAddress, Int32($0.count)) }
        guard bytes.isEmpty || written == Int32(bytes.count) else { throw OpenSSLError(call: "BIO_write") }
    }

    deinit {
        BIO_free(self.bio)
    }

    /// Everything written into the BIO and not yet read, as bytes.
    var bytes: [UInt8] {
        var data: UnsafeMutablePointer<CChar>?
        let count = CTunnelShims_BIO_get_mem_data(self.bio, &data)
        guard count > 0, let data else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: count) {
            Array(UnsafeBufferPointer(start: $0, count: count))
        }
    }

    /// Everything written into the BIO and not yet read, as UTF-8 text.
    var text: String {
        String(decoding: self.bytes, as: UTF8.self)
    }
}
