/// libFuzzer entry point of the `config` target. The one-input logic is `ConfigFuzzHarness`, in
/// Tests/AgentTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ConfigFuzzHarness.target.fuzzOneInput(data, size)
}
