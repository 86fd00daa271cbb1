import Foundation
import Synchronization

/// Identities of tokens that passed verification, keyed by the token's SHA-256, until the token expires; so a
/// client sending the same token on every request pays for the signature once. Bounded: when full, expired entries
/// go first, then everything. Clear it when the issuer's configuration changes.
package final class VerifiedIdentityCache: Sendable {
    private let entries = Mutex<[TokenDigest: VerifiedIdentity]>([:])
    /// The most identities kept.
    package let capacity: Int

    /// An empty cache holding at most `capacity` identities.
    package init(capacity: Int = 10_000) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// The identity of the token with `digest`, if it was verified before and has not expired at `now`.
    package func identity(for digest: TokenDigest, now: Date) -> VerifiedIdentity? {
        self.entries.withLock { entries in
            guard let identity = entries[digest] else { return nil }
            guard now < identity.expiresAt else {
                entries[digest] = nil
                return nil
            }
            return identity
        }
    }

    /// Keeps `identity` until its token expires.
    package func remember(_ identity: VerifiedIdentity, now: Date) {
        guard now < identity.expiresAt else { return }
        self.entries.withLock { entries in
            if entries.count >= self.capacity, entries[identity.tokenDigest] == nil {
                entries = entries.filter { now < $0.value.expiresAt }
                if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[identity.tokenDigest] = identity
        }
    }

    /// Forgets every identity.
    package func removeAll() {
        self.entries.withLock { $0.removeAll() }
    }

    /// How many identities are kept.
    package var count: Int {
        self.entries.withLock { $0.count }
    }
}
