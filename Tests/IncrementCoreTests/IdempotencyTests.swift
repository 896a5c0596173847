import IncrementCore
import Testing

/// Idempotency keys, request fingerprints, the node's in-flight table and their place in the
/// buffer and the batch; no database.
struct IdempotencyTests {
    @Test(arguments: [
        (#""8e03978e-40d5-43e8-bc93-6894a57f9324""#, "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("  order-1234 ", "order-1234"),
        (#""with \"quote\" and \\ backslash""#, #"with "quote" and \ backslash"#),
        (#""spaces are fine""#, "spaces are fine"),
    ])
    func parsesStructuredFieldStringsAndBareValues(header: String, value: String) throws {
        #expect(try IdempotencyKey(headerValue: header).value == value)
    }

    @Test(arguments: ["", "\"\"", "\"open", "\"a\"b", "two words", "\"tab\there\"", "\"é\"", "a\"b", String(repeating: "x", count: 256)])
    func refusesMalformedKeys(header: String) {
        #expect(throws: IdempotencyKeyError.self) { try IdempotencyKey(headerValue: header) }
    }

    @Test func fingerprintsAreFixedAndTellRequestsApart() throws {
        let key = try IdempotencyKey(headerValue: "k")
        let single = IdempotentRequest(key: key, route: .single, increments: [increment("page:home", 1)])
        // Fixed vectors: every node and release must agree.
        #expect(single.fingerprint == -2_357_496_218_876_233_854)
        let batch = IdempotentRequest(
            key: key, route: .batch, increments: [increment("a", 1), increment("b", -2)])
        #expect(batch.fingerprint == -7_593_925_686_971_037_698)
        let sameAsBatch = IdempotentRequest(key: key, route: .single, increments: batch.increments)
        #expect(sameAsBatch.fingerprint != batch.fingerprint)
        // Key bytes, not canonical equivalence.
        let precomposed = IdempotentRequest(key: key, route: .single, increments: [increment("\u{E9}", 1)])
        let decomposed = IdempotentRequest(key: key, route: .single, increments: [increment("e\u{301}", 1)])
        #expect(precomposed.fingerprint != decomposed.fingerprint)
        #expect(single.totalKey == "page:home")
        #expect(batch.totalKey == nil)
    }

    @Test func theTableTellsRepeatsAndMismatchesApart() throws {
        let table = IdempotencyTable()
        let key = try IdempotencyKey(headerValue: "k")
        #expect(table.claim(key, fingerprint: 1) == .claimed)
        #expect(table.claim(key, fingerprint: 1) == .repeated(.admitting))
        #expect(table.claim(key, fingerprint: 2) == .mismatched)
        table.settle(key, as: .buffered)
        #expect(table.claim(key, fingerprint: 1) == .repeated(.buffered))
        table.release([key])
        #expect(table.count == 0)
        table.settle(key, as: .waiting)  // a released key is not brought back
        #expect(table.claim(key, fingerprint: 2) == .claimed)
    }

    @Test func idempotentRequestsDrainWholeWithTheBufferAndLockTheirKeysShard() throws {
        let buffer = IncrementBuffer(shardCount: 4, maximumPendingKeys: 3)
        let request = IdempotentRequest(
            key: try IdempotencyKey(headerValue: "r"), route: .batch,
            increments: [increment("a", 1), increment("a", 2)])
        try buffer.add(increment("a", 10))
        try buffer.add(request)
        #expect(buffer.pendingKeys == 3)
        #expect(throws: AdmissionError.overloaded) { try buffer.add(request) }
        let drained = buffer.drain()
        #expect(drained.deltas == ["a": 10])
        #expect(drained.idempotent.map(\.key) == [request.key])
        #expect(buffer.pendingKeys == 0)

        let map = ClusterShardMap(shardCount: 64)
        let batch = FlushBatch(
            id: BatchID(nodeID: "n", sequence: 1), deltas: drained.deltas, idempotent: drained.idempotent + drained.idempotent,
            shardMap: map)
        #expect(batch.idempotent.count == 1)
        #expect(batch.count == 3)
        let keyShard = map.shard(for: CounterKey(trusted: "idempotency-key:r"))
        #expect(batch.clusterShards.contains(keyShard))
        #expect(batch.clusterShards == batch.clusterShards.sorted())
    }
}

/// An increment of a literal key.
private func increment(_ key: CounterKey, _ delta: Int64) -> Increment {
    Increment(key: key, delta: delta)
}
