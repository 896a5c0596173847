import IncrementCore
import Synchronization
import Testing

/// An increment whose key is valid by construction.
private func increment(_ key: String, _ delta: Int64) -> Increment {
    // Test keys are literals known to be valid.
    try! Increment(key: key, delta: delta)
}

/// What the writer and drainer tasks of the concurrency test share.
private final class SharedProgress: Sendable {
    let collected = Mutex<[CounterKey: Int64]>([:])
    let writersDone = Atomic<Int>(0)
}

struct IncrementBufferTests {
    @Test func sumsPerKeyAndDrainsOnce() throws {
        let buffer = IncrementBuffer(shardCount: 4, maximumPendingKeys: 100)
        try buffer.add(increment("a", 2))
        try buffer.add(increment("b", 5))
        try buffer.add(increment("a", -7))
        #expect(buffer.pendingKeys == 2)
        #expect(buffer.oldestPendingSince != nil)
        let drained = buffer.drain()
        #expect(drained.deltas == ["a": -5, "b": 5])
        #expect(buffer.pendingKeys == 0)
        #expect(buffer.oldestPendingSince == nil)
        #expect(buffer.drain().isEmpty)
    }

    @Test func concurrentAddsDuringDrainsLoseNothing() async throws {
        let buffer = IncrementBuffer(shardCount: 8, maximumPendingKeys: 1_000_000)
        let writers = 8
        let perWriter = 20_000
        let keys = (0..<50).map { "hot-\($0)" }
        let shared = SharedProgress()

        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for index in 0..<perWriter {
                        let key = keys[(writer &* 31 &+ index) % keys.count]
                        try? buffer.add(increment(key, Int64(index % 7) - 2))
                    }
                    shared.writersDone.add(1, ordering: .releasing)
                }
            }
            group.addTask {
                // Flush continuously while the writers run, as the flusher would.
                while shared.writersDone.load(ordering: .acquiring) < writers {
                    let drained = buffer.drain()
                    shared.collected.withLock { $0.merge(drained.deltas, uniquingKeysWith: +) }
                    await Task.yield()
                }
            }
        }
        let rest = buffer.drain()
        shared.collected.withLock { $0.merge(rest.deltas, uniquingKeysWith: +) }

        var expected: [CounterKey: Int64] = [:]
        for writer in 0..<writers {
            for index in 0..<perWriter {
                expected[CounterKey(trusted: keys[(writer &* 31 &+ index) % keys.count]), default: 0] += Int64(index % 7) - 2
            }
        }
        #expect(shared.collected.withLock { $0 } == expected)
    }

    @Test func refusesNewKeysPastTheCapButAcceptsExistingOnes() throws {
        let buffer = IncrementBuffer(shardCount: 2, maximumPendingKeys: 2)
        try buffer.add(increment("a", 1))
        try buffer.add(increment("b", 1))
        #expect(buffer.isFull)
        #expect(throws: AdmissionError.overloaded) { try buffer.add(increment("c", 1)) }
        try buffer.add(increment("a", 1))
        #expect(buffer.drain().deltas == ["a": 2, "b": 1])
        try buffer.add(increment("c", 1))
    }

    @Test func refusesAPendingTotalThatWouldOverflow() throws {
        let buffer = IncrementBuffer(shardCount: 2, maximumPendingKeys: 10)
        try buffer.add(increment("a", .max))
        #expect(throws: AdmissionError.pendingTotalOutOfRange(key: "a")) { try buffer.add(increment("a", 1)) }
        try buffer.add(increment("a", -1))
        #expect(buffer.drain().deltas == ["a": .max - 1] as [CounterKey: Int64])
    }

    @Test func aBatchIsAllOrNothing() throws {
        let buffer = IncrementBuffer(shardCount: 4, maximumPendingKeys: 10)
        try buffer.add(increment("full", .max))
        let batch = (0..<5).map { increment("k\($0)", 1) } + [increment("full", 1)]
        #expect(throws: AdmissionError.pendingTotalOutOfRange(key: "full")) { try buffer.add(batch) }
        #expect(buffer.drain().deltas == ["full": .max])

        let tooMany = (0..<11).map { increment("n\($0)", 1) }
        #expect(throws: AdmissionError.overloaded) { try buffer.add(tooMany) }
        #expect(buffer.pendingKeys == 0)

        try buffer.add([increment("x", 1), increment("x", 2), increment("y", 3)])
        #expect(buffer.drain().deltas == ["x": 3, "y": 3])
    }

    @Test func drainsWaitersWithTheirIncrements() throws {
        let buffer = IncrementBuffer(shardCount: 4, maximumPendingKeys: 10)
        let answers = Mutex<[CommitOutcome]>([])
        try buffer.add(increment("a", 1), waiter: CommitWaiter(key: "a") { outcome in answers.withLock { $0.append(outcome) } })
        let drained = buffer.drain()
        #expect(drained.waiters.map(\.key) == ["a"])
        drained.waiters.first?.resume(with: .committed(total: 1))
        #expect(answers.withLock { $0 } == [.committed(total: 1)])
    }
}
