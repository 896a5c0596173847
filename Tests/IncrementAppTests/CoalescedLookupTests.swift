import Foundation
import HummingbirdTesting
@testable import IncrementApp
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

struct CoalescedLookupTests {
    /// Runs `body` with a lookup over `fetch`, the lookup's service running.
    private func withLookup(
        concurrentQueries: Int = 1,
        fetch: @escaping CoalescedLookup<Int, Int>.Fetch,
        _ body: @escaping @Sendable (CoalescedLookup<Int, Int>) async throws -> Void
    ) async throws {
        let lookup = CoalescedLookup(name: "test", concurrentQueries: concurrentQueries, timeout: .seconds(5), fetch: fetch)
        try await withThrowingTaskGroup { group in
            group.addTask { try await lookup.run() }
            try await body(lookup)
            group.cancelAll()
        }
    }

    @Test func concurrentLookupsShareQueriesAndEachGetsItsOwnKeys() async throws {
        let queries = Atomic<Int>(0)
        try await self.withLookup(fetch: { keys, _ in
            queries.add(1, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(5))
            // Even keys exist, with the value ten times the key.
            return Dictionary(uniqueKeysWithValues: keys.filter { $0 % 2 == 0 }.map { ($0, $0 * 10) })
        }) { lookup in
            try await withThrowingTaskGroup(of: (Int, Int?).self) { group in
                for key in 0..<500 {
                    group.addTask { (key, try await lookup.value(for: key)) }
                }
                for try await (key, value) in group {
                    #expect(value == (key % 2 == 0 ? key * 10 : nil))
                }
            }
            let many = try await lookup.values(for: [1, 2, 3, 4, 2])
            #expect(many == [2: 20, 4: 40])
        }
        #expect(queries.load(ordering: .relaxed) < 100, "\(queries.load(ordering: .relaxed)) queries for 501 look-ups")
    }

    /// A look-up made while a query runs is answered by a later query: never by one that began
    /// before it (a strong read, made after its barrier, must not get an older answer).
    @Test func aLookupIsAnsweredByAQueryThatStartedAfterIt() async throws {
        let started = Atomic<Int>(0)
        let (firstStarted, firstStartedSink) = AsyncStream.makeStream(of: Void.self)
        try await self.withLookup(fetch: { keys, _ in
            // Each query answers with its own number: 1 for the first, 2 for the next.
            let number = started.add(1, ordering: .relaxed).newValue
            if number == 1 {
                firstStartedSink.yield()
                try await Task.sleep(for: .milliseconds(200))
            }
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, number) })
        }) { lookup in
            async let early = lookup.value(for: 1)
            var iterator = firstStarted.makeAsyncIterator()
            await iterator.next()
            let late = try await lookup.value(for: 1)
            #expect(try await early == 1)
            #expect(late == 2)
        }
    }

    @Test func aFailedQueryFailsOnlyTheLookupsItAnswered() async throws {
        struct Refused: Error {}
        let calls = Atomic<Int>(0)
        try await self.withLookup(fetch: { keys, _ in
            if calls.add(1, ordering: .relaxed).newValue == 1 { throw Refused() }
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, 7) })
        }) { lookup in
            await #expect(throws: Refused.self) { try await lookup.value(for: 1) }
            let retried = try await lookup.value(for: 1)
            #expect(retried == 7)
        }
    }

    @Test func counterAnswersAreTheBytesJSONEncoderWrites() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let controls = String(decoding: (1..<0x20).map { UInt8($0) }, as: UTF8.self)
        for key in ["page:1", #"a"b\c/d"#, controls, "é/e\u{301} 🎉", "\u{7F}\u{2028}"] {
            var written = ByteBuffer()
            written.writeStaticString(#"{"key":"#)
            written.writeJSONString(key)
            written.writeStaticString("}")
            let expected = try encoder.encode(["key": key])
            #expect(Array(written.readableBytesView) == Array(expected), "\(key.debugDescription)")
        }
    }
}
