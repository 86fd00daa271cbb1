import Foundation
import Testing

@testable import Controller

struct DebugSessionCodingTests {
    @Test func timesPrintTheSameAfterAReadBack() throws {
        for offset in stride(from: 0.0, to: 2.0, by: 0.0137) {
            let date = Date(timeIntervalSince1970: 1_765_000_000.2185 + offset)
            let text = DebugSessionCoding.text(of: date)
            let again = try #require(DebugSessionCoding.date(from: text))
            #expect(DebugSessionCoding.text(of: again) == text)
            #expect(abs(again.timeIntervalSince(date)) <= 0.0005 + 1e-6)
        }
        #expect(DebugSessionCoding.text(of: Date(timeIntervalSince1970: 0.0004)) == "1970-01-01T00:00:00.000Z")
        #expect(DebugSessionCoding.text(of: Date(timeIntervalSince1970: 59.9996)) == "1970-01-01T00:01:00.000Z")
    }
}
