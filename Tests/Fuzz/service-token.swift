/// libFuzzer entry point of the `service-token` target. The one-input logic is `ServiceTokenFuzzHarness`, in
/// Tests/ControllerTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ServiceTokenFuzzHarness.target.fuzzOneInput(data, size)
}
