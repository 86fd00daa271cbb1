/// Lowercase hexadecimal digits as ASCII bytes, for writing hex without `String(format:)`.
package enum Hex {
    package static let digits = Array("0123456789abcdef".utf8)
}
