import BerthIP

/// The order in which host-local tries the addresses of a range set, reproduced exactly so the
/// two plugins continue each other's round robin on a shared store: starting after the last
/// reserved address (or at the first range's start), through the end of each range into the
/// next, wrapping around, skipping gateways, and stopping once back where it began.
public struct RoundRobin: Sequence, IteratorProtocol {
    private let set: RangeSet
    private var rangeIndex = 0
    private var current: IPAddress?
    private var startAddress: IPAddress?
    private var startRange = 0

    /// `lastReserved` outside the set (a config that changed) restarts from the beginning.
    public init(_ set: RangeSet, after lastReserved: IPAddress?) {
        self.set = set
        if let lastReserved, let index = set.ranges.firstIndex(where: { $0.contains(lastReserved) }) {
            rangeIndex = index
            current = lastReserved
        } else {
            startAddress = set.ranges[0].start
        }
    }

    /// The next candidate and its range; nil once every address was offered.
    public mutating func next() -> (address: IPAddress, range: AddressRange)? {
        while true {
            var range = set.ranges[rangeIndex]
            guard let position = current else {
                current = range.start
                startAddress = range.start
                if range.start == range.gateway { continue }
                return (range.start, range)
            }
            if position == range.end {
                rangeIndex = (rangeIndex + 1) % set.ranges.count
                range = set.ranges[rangeIndex]
                current = range.start
            } else {
                current = position.next
            }
            if startAddress == nil {
                startAddress = current
                startRange = rangeIndex
            } else if rangeIndex == startRange, current == startAddress {
                return nil
            }
            if current == range.gateway { continue }
            return (current!, range)
        }
    }
}
