import Foundation
import Testing

@testable import Tunnel

@Suite struct LogTests {
    private func decode(_ bytes: [UInt8]) throws -> [String: String] {
        #expect(bytes.last == UInt8(ascii: "\n"))
        #expect(bytes.dropLast().contains(UInt8(ascii: "\n")) == false, "one line only")
        let object = try JSONSerialization.jsonObject(with: Data(bytes))
        return try #require(object as? [String: String])
    }

    @Test func lineIsOneJSONObjectWithFieldsInOrder() throws {
        let time = timespec(tv_sec: 1_795_439_049, tv_nsec: 672_999_999)
        let bytes = Log.line(level: .warning, message: "backend request failed", fields: ["b": "2", "a": "1"],
                             component: Array("agent".utf8), time: time)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == #"{"time":"2026-11-23T13:04:09.672Z","level":"warning","component":"agent","#
                    + #""msg":"backend request failed","a":"1","b":"2"}"# + "\n")
        #expect(try self.decode(bytes)["level"] == "warning")
    }

    @Test func timestampMatchesTheCalendar() throws {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for seconds in [0, 951_782_400, 1_709_164_800 + 86_399, 4_102_444_799] {
            let time = timespec(tv_sec: seconds, tv_nsec: 5_000_000)
            let line = try self.decode(Log.line(level: .info, message: "m", fields: [:], component: [], time: time))
            #expect(line["time"] == formatter.string(from: Date(timeIntervalSince1970: Double(seconds) + 0.005)))
            #expect(line["component"] == nil)
        }
    }

    @Test(arguments: ["quote \" backslash \\ slash /", "new\nline\r\ttab", "\u{0}\u{1}\u{1f}\u{7f}", "üñí €𝄞",
                      "{\"injected\":\"field\"}"])
    func valuesRoundTripThroughJSON(value: String) throws {
        let line = try self.decode(Log.line(level: .error, message: value, fields: [value: value], component: [],
                                            time: timespec()))
        #expect(line["msg"] == value)
        #expect(line[value] == value)
        let literal = try JSONSerialization.jsonObject(with: Data(Log.jsonString(value).utf8),
                                                       options: .fragmentsAllowed)
        #expect(literal as? String == value)
    }

    @Test func millisecondsHaveOneDecimal() {
        let start = DispatchTime(uptimeNanoseconds: DispatchTime.now().uptimeNanoseconds - 12_345_678)
        let text = Log.milliseconds(since: start)
        let parts = text.split(separator: ".")
        #expect(parts.count == 2 && parts[1].count == 1, "\(text)")
        #expect((Double(text) ?? 0) >= 12.3)
    }

    @Test func randomIDsAreHexOfTheAskedLength() {
        for bytes in [1, 8, 9, 16] {
            let id = RandomID.make(bytes: bytes)
            #expect(id.count == bytes * 2 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        }
        #expect(Set((0..<1000).map { _ in RandomID.make() }).count == 1000)
        let requests = (0..<100_000).map { _ in RandomID.request() }
        #expect(Set(requests).count == requests.count)
        #expect(requests.allSatisfy { $0.count == 16 && $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } })
        // Not a visible sequence: neighbours differ in about half their bits.
        let flipped = zip(requests, requests.dropFirst()).map { (UInt64($0, radix: 16)! ^ UInt64($1, radix: 16)!).nonzeroBitCount }
        #expect((24...40).contains(flipped.reduce(0, +) / flipped.count))
    }
}
