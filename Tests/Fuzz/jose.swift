/// libFuzzer entry point of the `jose` target. The one-input logic is `JOSEFuzzHarness`, in
/// Tests/TunnelTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    JOSEFuzzHarness.target.fuzzOneInput(data, size)
}
