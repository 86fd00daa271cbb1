import Testing
@testable import Tunnel

@Suite struct SmokeTests {
    @Test func versionIsSet() { #expect(!portholeVersion.isEmpty) }
}
