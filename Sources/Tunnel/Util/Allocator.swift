import CTunnelShims

/// Process-wide allocator settings for the controller and the agent.
package enum Allocator {
    /// Keeps glibc from serving and returning the 64–256 KiB buffers of the data path with mmap/munmap: each
    /// such round trip costs page faults and zeroed pages on every bulk read and write. Blocks up to 4 MiB
    /// come from the heap instead, and the heap gives memory back to the system above 16 MiB free at its top.
    package static func tuneForProxying() {
        _ = CTunnelShims_tune_malloc(4 << 20, 16 << 20)
    }
}
