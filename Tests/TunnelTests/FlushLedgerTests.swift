import Testing
@testable import Tunnel

@Suite struct FlushLedgerTests {
    final class Sender {
        var acknowledged = 0
    }

    @Test func bodyBytesAreAcknowledgedOnlyOnceTheirWholeWriteFlushed() {
        let first = Sender()
        let second = Sender()
        var ledger = FlushLedger<Sender>()
        ledger.record(written: 100, body: 0, for: nil)  // a response head
        ledger.record(written: 1_010, body: 1_000, for: first)  // a chunk: framing plus body
        ledger.record(written: 500, body: 500, for: second)
        ledger.flushed(600) { $0.acknowledged += $1 }
        #expect(first.acknowledged == 0)
        ledger.flushed(510) { $0.acknowledged += $1 }
        #expect(first.acknowledged == 1_000)
        #expect(second.acknowledged == 0)
        ledger.flushed(499) { $0.acknowledged += $1 }
        #expect(second.acknowledged == 0)
        ledger.flushed(1) { $0.acknowledged += $1 }
        #expect(second.acknowledged == 500)
    }

    @Test func closingGivesBackWhatNeverFlushed() {
        let sender = Sender()
        var ledger = FlushLedger<Sender>()
        ledger.record(written: 300, body: 300, for: sender)
        ledger.record(written: 200, body: 200, for: sender)
        ledger.flushed(300) { $0.acknowledged += $1 }
        #expect(sender.acknowledged == 300)
        ledger.removeAll { $0.acknowledged += $1 }
        #expect(sender.acknowledged == 500)
        ledger.flushed(1_000) { $0.acknowledged += $1 }
        #expect(sender.acknowledged == 500)
    }
}
