import Foundation

/// An IPv4 or IPv6 socket address, as the kernel takes it.
package struct SocketAddress: Sendable, CustomStringConvertible {
    var storage: sockaddr_storage
    var length: socklen_t

    /// Parses a numeric host and port (`127.0.0.1`, `::1`), or resolves a name with getaddrinfo (blocking).
    package static func resolve(host: String, port: UInt16) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let lookup = host.isEmpty ? "0.0.0.0" : host
        let rc = getaddrinfo(lookup, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            // getaddrinfo reports in its own codes; errno means something only for EAI_SYSTEM.
            let reason = rc == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(rc))
            throw ConnectionError.resolution(host: lookup, reason: reason)
        }
        defer { freeaddrinfo(result) }
        var addresses: [SocketAddress] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let info = next {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { target in
                target.copyMemory(from: UnsafeRawBufferPointer(start: info.pointee.ai_addr,
                                                               count: Int(info.pointee.ai_addrlen)))
            }
            let address = SocketAddress(storage: storage, length: info.pointee.ai_addrlen)
            if !addresses.contains(where: { $0.description == address.description }) { addresses.append(address) }
            next = info.pointee.ai_next
        }
        return addresses
    }

    package var family: Int32 { Int32(self.storage.ss_family) }

    /// The host part as text (`127.0.0.1`, `::1`).
    package var host: String {
        var copy = self.storage
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafePointer(to: &copy) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                _ = getnameinfo(address, self.length, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST)
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package var port: UInt16 {
        var copy = self.storage
        return withUnsafePointer(to: &copy) { pointer in
            if self.family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// `host:port`, with brackets around IPv6 hosts.
    package var description: String {
        self.family == AF_INET6 ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var copy = self.storage
        return withUnsafePointer(to: &copy) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, self.length) }
        }
    }

    static func local(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return rc == 0 ? SocketAddress(storage: storage, length: length) : nil
    }

    static func peer(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        return rc == 0 ? SocketAddress(storage: storage, length: length) : nil
    }
}
