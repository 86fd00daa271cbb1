/// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) that keeps its
/// place across calls, so a text message split anywhere — even inside a character — is checked as one, and an
/// invalid byte is caught as soon as it arrives.
package struct UTF8Validator: Sendable, Equatable {
    /// Continuation bytes still expected for the current character.
    private var needed = 0
    /// The allowed range of the next continuation byte (narrower after E0, ED, F0 and F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    package init() {}

    /// Whether the bytes so far end on a character boundary.
    package var isComplete: Bool { self.needed == 0 }

    /// Checks `bytes`, returning false at the first byte that cannot continue valid UTF-8.
    package mutating func validate(_ bytes: some Sequence<UInt8>) -> Bool {
        for byte in bytes where !self.validate(byte) { return false }
        return true
    }

    /// Checks one byte.
    package mutating func validate(_ byte: UInt8) -> Bool {
        if self.needed > 0 {
            guard byte >= self.lower && byte <= self.upper else { return false }
            self.lower = 0x80
            self.upper = 0xBF
            self.needed -= 1
            return true
        }
        switch byte {
        case 0x00...0x7F: return true
        case 0xC2...0xDF: self.needed = 1
        case 0xE0: self.needed = 2; self.lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: self.needed = 2
        case 0xED: self.needed = 2; self.upper = 0x9F
        case 0xF0: self.needed = 3; self.lower = 0x90
        case 0xF1...0xF3: self.needed = 3
        case 0xF4: self.needed = 3; self.upper = 0x8F
        default: return false
        }
        return true
    }
}
