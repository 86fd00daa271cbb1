/// libFuzzer entry point of the `kubeconfig` target. The one-input logic is `KubeconfigFuzzHarness`, in
/// Tests/AgentTests/FuzzHarness, which the unit tests also run over the corpus.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    KubeconfigFuzzHarness.target.fuzzOneInput(data, size)
}
