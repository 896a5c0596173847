import Foundation
import IncrementCore

/// Batches written to disk by a node that could not reach PostgreSQL at shutdown, and read back
/// by any node started with the same directory, which applies them through the normal flush
/// (and so through the ledger: a spilled batch is applied exactly once, even if its node's last
/// attempt committed after all).
///
/// One file per batch, `<node id>.<sequence>.spill.json`, written to a temporary name, fsynced,
/// renamed, and the directory fsynced: a file that exists is whole.
public struct SpillDirectory: Sendable {
    /// One spilled batch as stored: keys as base64 of their exact UTF-8 bytes.
    struct Record: Codable {
        var node: String
        var sequence: Int64
        var mayHaveCommitted: Bool
        var keys: [Data]
        var deltas: [Int64]
        /// Requests sent with an idempotency key (absent in files written before they existed).
        var idempotent: [IdempotentRecord]?
        /// The batch's ``FlushBatch/barrier`` (absent in files written before deletes existed:
        /// read as 0, older than every delete).
        var barrier: Int64?
    }

    /// One idempotent request as stored.
    struct IdempotentRecord: Codable {
        var key: String
        var fingerprint: Int64
        var route: UInt8
        var keys: [Data]
        var deltas: [Int64]
    }

    /// A batch read back from the directory.
    public struct SpilledBatch: Sendable {
        /// Where it is stored; remove it once applied.
        public let path: String
        /// The batch, with its original id.
        public let batch: FlushBatch
        /// Whether an attempt of the batch may have committed before it was spilled.
        public let mayHaveCommitted: Bool
    }

    /// The directory.
    public let path: String

    /// Creates the directory if needed and checks that this process can write files in it: a
    /// directory that cannot take a batch should stop the node at start, not lose the batch at shutdown.
    public init(path: String) throws {
        self.path = path
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            let probe = (path as NSString).appendingPathComponent(".write-check-\(getpid())")
            guard FileManager.default.createFile(atPath: probe, contents: nil) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: probe])
            }
            try FileManager.default.removeItem(atPath: probe)
        } catch {
            throw SpillDirectoryUnusable(path: path, underlying: error)
        }
    }

    /// Writes `batch` durably; returns the file's path.
    @discardableResult
    public func write(_ batch: FlushBatch, mayHaveCommitted: Bool) throws -> String {
        let record = Record(
            node: batch.id.nodeID,
            sequence: batch.id.sequence,
            mayHaveCommitted: mayHaveCommitted,
            keys: batch.keys.map { key in key.withUTF8 { Data($0) } },
            deltas: batch.deltas,
            idempotent: batch.idempotent.map { request in
                IdempotentRecord(
                    key: request.key.value,
                    fingerprint: request.fingerprint,
                    route: request.route.rawValue,
                    keys: request.increments.map { increment in increment.key.withUTF8 { Data($0) } },
                    deltas: request.increments.map(\.delta)
                )
            },
            barrier: batch.barrier
        )
        let data = try JSONEncoder().encode(record)
        let name = "\(batch.id.nodeID).\(batch.id.sequence).spill.json"
        let final = (self.path as NSString).appendingPathComponent(name)
        let temporary = final + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        if rename(temporary, final) != 0 {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: final])
        }
        try self.synchronizeDirectory()
        return final
    }

    /// Every whole spilled batch, in (node, sequence) order: a node's batches apply in order.
    public func batches(shardMap: ClusterShardMap) throws -> [SpilledBatch] {
        var batches: [SpilledBatch] = []
        for name in try self.fileNames() {
            let path = (self.path as NSString).appendingPathComponent(name)
            let record = try JSONDecoder().decode(Record.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            let keys = record.keys.map { CounterKey(trusted: String(decoding: $0, as: UTF8.self)) }
            let idempotent = (record.idempotent ?? []).map { stored in
                IdempotentRequest(
                    key: IdempotencyKey(trusted: stored.key),
                    route: IdempotentRequest.Route(rawValue: stored.route) ?? .batch,
                    increments: zip(stored.keys, stored.deltas).map { key, delta in
                        Increment(key: CounterKey(trusted: String(decoding: key, as: UTF8.self)), delta: delta)
                    },
                    fingerprint: stored.fingerprint
                )
            }
            let batch = FlushBatch(
                id: BatchID(nodeID: record.node, sequence: record.sequence),
                keys: keys,
                deltas: record.deltas,
                idempotent: idempotent,
                barrier: record.barrier ?? 0,
                shardMap: shardMap
            )
            batches.append(SpilledBatch(path: path, batch: batch, mayHaveCommitted: record.mayHaveCommitted))
        }
        return batches.sorted {
            ($0.batch.id.nodeID, $0.batch.id.sequence) < ($1.batch.id.nodeID, $1.batch.id.sequence)
        }
    }

    /// The nodes that have batches here, read from the file names alone.
    public func nodesWithBatches() throws -> Set<String> {
        Set(try self.fileNames().compactMap { $0.split(separator: ".").first.map(String.init) })
    }

    /// The names of the whole batch files (`<node id>.<sequence>.spill.json`).
    private func fileNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: self.path).filter { $0.hasSuffix(".spill.json") }
    }

    /// Removes an applied batch's file, durably.
    public func remove(_ spilled: SpilledBatch) throws {
        try FileManager.default.removeItem(atPath: spilled.path)
        try self.synchronizeDirectory()
    }

    private func synchronizeDirectory() throws {
        let descriptor = open(self.path, O_RDONLY)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}

/// The spill directory cannot be created or written at start.
public struct SpillDirectoryUnusable: Error, CustomStringConvertible {
    /// The directory.
    public let path: String
    /// Why it cannot be used.
    public let underlying: any Error

    public var description: String {
        "spill directory \(self.path) cannot be written (\(self.underlying)); set FLUSH_SPILL_DIR to a writable directory, or FLUSH_SPILL_DIR=off to lose what the database cannot take at shutdown"
    }
}
