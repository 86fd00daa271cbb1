/// libFuzzer entry point of the `http2-server` target. The one-input logic is `HTTP2FuzzHarness`, in
/// Tests/TunnelTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    HTTP2FuzzHarness.serverTarget.fuzzOneInput(data, size)
}
