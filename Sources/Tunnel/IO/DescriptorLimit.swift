import Foundation

/// The process's open-file limit (RLIMIT_NOFILE): every connection costs a descriptor, and a soft limit left at
/// a distribution's 1024 turns a busy listener into a stream of EMFILE.
package enum DescriptorLimit {
    /// Raises the soft limit to the hard limit and logs both. Returns the soft limit now in force (-1 if it
    /// cannot be read).
    @discardableResult
    package static func raiseToHardLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            Log.warning("reading the descriptor limit failed", ["error": "\(IOError(errno: errno, call: "getrlimit"))"])
            return -1
        }
        let before = limit.rlim_cur
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 {
                limit = raised
            } else {
                Log.warning("raising the descriptor limit failed", [
                    "error": "\(IOError(errno: errno, call: "setrlimit"))", "hard": Self.format(limit.rlim_max),
                ])
            }
        }
        Log.info("descriptor limit", ["soft": Self.format(limit.rlim_cur), "hard": Self.format(limit.rlim_max),
                                      "before": Self.format(before)])
        return limit.rlim_cur == Self.infinity ? Int.max : Int(limit.rlim_cur)
    }

    private static func format(_ value: rlim_t) -> String {
        value == Self.infinity ? "unlimited" : "\(value)"
    }

    /// RLIM_INFINITY (all bits set), which Swift does not import.
    private static let infinity = rlim_t.max
}
