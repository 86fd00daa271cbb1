/// libFuzzer entry point of the `http1` target. The one-input logic is `HTTP1FuzzHarness`, in
/// Tests/TunnelTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    HTTP1FuzzHarness.target.fuzzOneInput(data, size)
}
