/// libFuzzer entry point of the `websocket` target. The one-input logic is `WebSocketFuzzHarness`, in
/// Tests/TunnelTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    WebSocketFuzzHarness.target.fuzzOneInput(data, size)
}
