import COpenSSL

/// A failed OpenSSL call: its name and the messages that were on the thread's error queue.
package struct OpenSSLError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The OpenSSL function (or operation) that failed, e.g. `SSL_do_handshake`.
    package let call: String
    /// Human-readable reasons, most specific first (a certificate verify reason leads when there is one).
    package let messages: [String]

    /// An error for `call` with explicit messages; the error queue is left alone.
    package init(call: String, messages: [String]) {
        self.call = call
        self.messages = messages
    }

    /// An error for `call` carrying `leading` messages followed by everything drained from the error queue.
    package init(call: String, leading: [String] = []) {
        self.call = call
        self.messages = leading + Self.drainErrorQueue()
    }

    package var description: String {
        self.messages.isEmpty ? "\(self.call) failed" : "\(self.call) failed: \(self.messages.joined(separator: "; "))"
    }

    /// Empties this thread's OpenSSL error queue, returning its messages oldest first.
    package static func drainErrorQueue() -> [String] {
        var messages: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages
    }
}
