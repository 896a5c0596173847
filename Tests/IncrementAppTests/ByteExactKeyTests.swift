import Foundation
import Hummingbird
import HummingbirdTesting
@testable import IncrementApp
import IncrementTesting
import Testing

/// Keys that Swift's `String ==` calls equal (canonical equivalence) but whose bytes differ are
/// two counters everywhere: buffer, batch, committed totals and reads.
struct ByteExactKeyTests {
    @Test func canonicallyEquivalentKeysStayTwoCounters() async throws {
        let database = try await TestDatabase.create()
        try await withReadyNode(try testSettings(database)) { client in
            // Same flush window: "é" precomposed (1) and decomposed (10).
            #expect(try await client.post("/increment", #"{"key":"\u00e9","value":1}"#).status == .accepted)
            let decomposed = try await client.post("/increment?wait=commit", #"{"key":"e\u0301","value":10}"#)
            #expect(decomposed.status == .ok)
            #expect(decomposed.text == "{\"key\":\"e\u{301}\",\"value\":10}")
            // One batch holding the Ångström sign and Å.
            let batch = try await client.post(
                "/increments", #"{"increments":[{"key":"\u212b","value":100},{"key":"\u00c5","value":1000}]}"#)
            #expect(batch.status == .accepted)
            #expect(try await client.post("/increment?wait=commit", #"{"key":"\u00c5","value":0}"#).status == .ok)

            #expect(try await client.get("/counters/%C3%A9").text == "{\"key\":\"\u{E9}\",\"value\":1}")
            #expect(try await client.get("/counters/e%CC%81").text == "{\"key\":\"e\u{301}\",\"value\":10}")
            #expect(try await client.get("/counters/%E2%84%AB").text == "{\"key\":\"\u{212B}\",\"value\":100}")
        }
        #expect(
            try await countersByBytes(in: database) == [
                [0xC3, 0xA9]: 1, [0x65, 0xCC, 0x81]: 10, [0xE2, 0x84, 0xAB]: 100, [0xC3, 0x85]: 1_000,
            ])
    }
}
