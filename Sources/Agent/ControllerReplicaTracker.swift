import Tunnel

/// The agent's bookkeeping for one configured controller name, sans I/O: which tunnels to dial so that it holds a
/// tunnel to every distinct controller replica behind the name (Konnectivity's `serverCount` pattern).
///
/// Two ways of reaching replicas combine here:
/// - **One tunnel per DNS record** (a headless Service): every resolved address gets a *primary* slot, kept for as
///   long as the address resolves, whichever replica it reaches.
/// - **One load-balanced name**: the controllers announce how many replicas serve (`porthole-replicas` in the
///   hello). While fewer distinct replicas are held than announced, *extra* slots dial the name again; an extra
///   that lands on a replica already held is dropped politely and dials again after its backoff.
///
/// Controllers that announce no count count as one replica per address, which is the per-record behaviour.
/// The owner feeds in resolutions, hellos and losses and carries out the returned actions.
package struct ControllerReplicaTracker: Sendable {
    /// Names one tunnel slot (one `AgentTunnel`, which redials by itself after a loss).
    package typealias SlotID = Int

    /// What the owner must do.
    package enum Action: Equatable, Sendable {
        /// Start a new slot: a tunnel that keeps dialling `address`.
        case dial(SlotID, address: String)
        /// Let the slot go for good (its address vanished, or it is no longer needed).
        case stop(SlotID)
        /// The slot's tunnel reached `instance`, which another slot already holds: close it politely and dial
        /// again after the slot's backoff. Ignored by the slot if it no longer holds `instance`.
        case dropDuplicate(SlotID, instance: String)
    }

    /// One tunnel slot.
    package struct Slot: Equatable, Sendable {
        package var address: String
        /// Primary slots exist one per resolved address and are never dropped as duplicates.
        package var isPrimary: Bool
        /// The replica its tunnel holds now; nil while dialling.
        package var instance: String?
    }

    package private(set) var slots: [SlotID: Slot] = [:]
    /// The addresses the name resolved to last, in resolver order.
    package private(set) var addresses: [String] = []
    /// The replica count the controllers announced last; nil until one did.
    package private(set) var announcedCount: Int?
    private var nextSlot: SlotID = 0
    private var nextExtraAddress = 0

    package init() {}

    /// How many distinct replicas this name should reach: the announced count, else one per address.
    package var expected: Int { self.announcedCount ?? self.addresses.count }

    /// How many distinct replicas tunnels are up to.
    package var connected: Int { Set(self.slots.values.compactMap(\.instance)).count }

    /// The name resolved to `addresses`: a primary slot for each new one, vanished ones let go.
    package mutating func addressesResolved(_ addresses: [String]) -> [Action] {
        var actions: [Action] = []
        let current = Set(addresses)
        for (id, slot) in self.slots.sorted(by: { $0.key < $1.key }) where !current.contains(slot.address) {
            self.slots[id] = nil
            actions.append(.stop(id))
        }
        let primaries = Set(self.slots.values.filter(\.isPrimary).map(\.address))
        for address in addresses where !primaries.contains(address) {
            actions.append(self.addSlot(address: address, isPrimary: true))
        }
        self.addresses = addresses
        return actions + self.rebalance()
    }

    /// A slot's tunnel said hello to controller replica `instance`, which announced `replicaCount` (nil: none).
    package mutating func helloAnswered(slot id: SlotID, instance: String, replicaCount: Int?) -> [Action] {
        guard self.slots[id] != nil else { return [] }
        self.slots[id]!.instance = instance
        if let replicaCount, replicaCount > 0 { self.announcedCount = replicaCount }
        return self.rebalance()
    }

    /// A slot's tunnel is down (lost, refused, or told to go away); the slot redials by itself.
    package mutating func tunnelLost(slot id: SlotID) -> [Action] {
        guard self.slots[id] != nil, self.slots[id]!.instance != nil else { return [] }
        self.slots[id]!.instance = nil
        return self.rebalance()
    }

    private mutating func addSlot(address: String, isPrimary: Bool) -> Action {
        let id = self.nextSlot
        self.nextSlot += 1
        self.slots[id] = Slot(address: address, isPrimary: isPrimary, instance: nil)
        return .dial(id, address: address)
    }

    /// Drops extras that duplicate a held replica, then adds or stops extras so that the slots up plus the slots
    /// dialling can reach `expected` distinct replicas, and no more.
    private mutating func rebalance() -> [Action] {
        let ordered = self.slots.keys.sorted()
        // Which slot keeps each replica: a primary if any holds it, else the oldest extra.
        var keeper: [String: SlotID] = [:]
        for id in ordered {
            guard let instance = self.slots[id]!.instance else { continue }
            if let held = keeper[instance], self.slots[held]!.isPrimary || !self.slots[id]!.isPrimary { continue }
            keeper[instance] = id
        }
        var duplicates: [(id: SlotID, instance: String)] = []
        for id in ordered {
            let slot = self.slots[id]!
            guard let instance = slot.instance, !slot.isPrimary, keeper[instance] != id else { continue }
            duplicates.append((id, instance))
            self.slots[id]!.instance = nil
        }
        let dialling = ordered.filter { self.slots[$0]!.instance == nil }
        let missing = self.expected - keeper.count - dialling.count
        var actions: [Action] = []
        var stopped: Set<SlotID> = []
        // Extras only on the controllers' word: without a count, one tunnel per address is all there is to hold.
        if missing > 0, self.announcedCount != nil, !self.addresses.isEmpty {
            for _ in 0..<missing {
                let address = self.addresses[self.nextExtraAddress % self.addresses.count]
                self.nextExtraAddress += 1
                actions.append(self.addSlot(address: address, isPrimary: false))
            }
        } else if missing < 0 {
            // Surplus: stop extras still dialling, those just found to be duplicates first.
            let duplicateIDs = duplicates.map(\.id)
            let others = dialling.filter { !duplicateIDs.contains($0) && !self.slots[$0]!.isPrimary }
            for id in (duplicateIDs + others).prefix(-missing) {
                self.slots[id] = nil
                stopped.insert(id)
            }
        }
        let drops = duplicates.filter { !stopped.contains($0.id) }.map {
            Action.dropDuplicate($0.id, instance: $0.instance)
        }
        return drops + stopped.sorted().map { .stop($0) } + actions
    }
}
