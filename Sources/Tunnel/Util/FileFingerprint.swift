import Foundation

/// Identifies the current contents of files cheaply: inode, size and modification time of each, so a
/// rename-into-place (as Kubernetes Secret and projected-token mounts do) counts as a change.
package enum FileFingerprint {
    package static func of(_ paths: [String]) -> String {
        paths.map { path in
            var info = stat()
            guard stat(path, &info) == 0 else { return "missing" }
            return "\(info.st_ino)-\(info.st_size)-\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }.joined(separator: "/")
    }
}
