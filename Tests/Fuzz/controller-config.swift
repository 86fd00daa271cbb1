/// libFuzzer entry point of the `controller-config` target. The one-input logic is `ControllerConfigFuzzHarness`, in
/// Tests/ControllerTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ControllerConfigFuzzHarness.target.fuzzOneInput(data, size)
}
