import Testing

@testable import Controller

@Suite struct ControllerTargetTests {
    @Test func importsTheExecutableTarget() {
        #expect(CancellationBudget.self == CancellationBudget.self)
    }
}
