import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import PostgresNIO
import Testing

struct BoundedWaitTests {
    @Test func aCommitWaitEndsAtItsTimeoutWithPendingAndTheIncrementStillLands() async throws {
        let database = try await TestDatabase.create()
        let settings = try testSettings(database, flushInterval: .milliseconds(50)) {
            $0.flush.commitWaitTimeout = .milliseconds(400)
        }
        try await withReadyNode(settings) { client in
            try await breakFlushes(database)
            let started = ContinuousClock.now
            let waited = try await client.post("/increment?wait=commit", #"{"key":"a","value":3}"#)
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(waited.status == .accepted)
            #expect(waited.body.readableBytes == 0)

            // Once flushes work again the pending increment lands (after the retry back-off,
            // which may outlast the 400 ms wait), and the next wait=commit sees it.
            try await breakFlushes(database, false)
            let deadline = ContinuousClock.now + .seconds(10)
            while try await client.get("/counters/a").text != #"{"key":"a","value":3}"#, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let committed = try await client.post("/increment?wait=commit", #"{"key":"a","value":4}"#)
            // On a loaded machine this wait too may outlast its 400 ms and answer pending; an
            // answer with a value has the committed total.
            if committed.status == .ok {
                #expect(committed.text == #"{"key":"a","value":7}"#)
            } else {
                #expect(committed.status == .accepted)
            }
        }
        #expect(try await counters(in: database) == ["a": 7])
    }

    @Test func aNodeThatCannotWriteAtShutdownSpillsAndTheNextNodeAppliesItOnce() async throws {
        let database = try await TestDatabase.create()
        let spill = FileManager.default.temporaryDirectory.appendingPathComponent("spill-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: spill) }
        let settings = try testSettings(database, flushInterval: .milliseconds(50)) {
            $0.flush.shutdownTimeout = .seconds(2)
            $0.flush.spillDirectory = spill
        }
        let first = try await buildApplication(settings: settings, logger: appTestLogger)
        // The flusher ends with FinalFlushIncomplete (the process exits 75); the router test
        // harness does not pass service errors on, so the spilled files are what is checked.
        do {
            try await first.test(.router) { client in
                try await client.waitUntilReady()
                #expect(try await client.post("/increment?wait=commit", #"{"key":"a","value":1}"#).status == .ok)
                try await breakFlushes(database)
                // One batch fails and is retained; more buffer behind it.
                #expect(try await client.post("/increment", #"{"key":"a","value":2}"#).status == .accepted)
                try await Task.sleep(for: .milliseconds(200))
                #expect(try await client.post("/increments", #"{"increments":[{"key":"a","value":4},{"key":"b","value":8}]}"#).status == .accepted)
            }
        } catch is FinalFlushIncomplete {}
        let files = try FileManager.default.contentsOfDirectory(atPath: spill).filter { $0.hasSuffix(".spill.json") }
        #expect(files.count == 2)

        try await breakFlushes(database, false)
        let second = try await buildApplication(settings: settings, logger: appTestLogger)
        try await second.test(.router) { client in
            try await client.waitUntilReady()
            #expect(try await client.get("/counters/a").text == #"{"key":"a","value":7}"#)
            #expect(try await client.get("/counters/b").text == #"{"key":"b","value":8}"#)
        }
        #expect(try await counters(in: database) == ["a": 7, "b": 8])
        #expect(try FileManager.default.contentsOfDirectory(atPath: spill).filter { $0.hasSuffix(".spill.json") }.isEmpty)
        // Both nodes' ledger entries are gone: the first's after its batches were replayed,
        // the second's at its clean shutdown.
        let ledgerRows = try await database.withClient { client in
            var count: Int64 = -1
            for try await value in try await client.query("SELECT count(*)::bigint FROM flush_ledger", logger: appTestLogger)
                .decode(Int64.self)
            {
                count = value
            }
            return count
        }
        #expect(ledgerRows == 0)
    }
}
