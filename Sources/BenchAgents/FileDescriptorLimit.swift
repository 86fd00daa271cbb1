import Foundation

/// Raising RLIMIT_NOFILE: thousands of tunnels need thousands of descriptors.
enum FileDescriptorLimit {
    /// Raises the soft limit to at least `wanted` (and the hard limit too, where the process may), and returns the
    /// soft limit in force afterwards.
    @discardableResult
    static func raise(to wanted: Int) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return -1 }
        let target = rlim_t(wanted)
        if limit.rlim_max < target {
            var raised = limit
            raised.rlim_max = target
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return wanted }
        }
        limit.rlim_cur = max(limit.rlim_cur, min(target, limit.rlim_max))
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(limit.rlim_cur)
    }
}
