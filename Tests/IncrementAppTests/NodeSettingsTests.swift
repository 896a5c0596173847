import Configuration
import Foundation
@testable import IncrementApp
import Logging
import PostgresNIO
import Testing

struct NodeSettingsTests {
    private func settings(environment: [String: String], arguments: [String] = []) throws -> NodeSettings {
        let reader = ConfigReader(providers: [
            CommandLineArgumentsProvider(arguments: ["increment-node"] + arguments),
            EnvironmentVariablesProvider(environmentVariables: environment),
        ])
        return try NodeSettings(reader: reader)
    }

    @Test func readsEnvironmentVariablesAndFlagsWin() throws {
        let settings = try self.settings(
            environment: [
                "PORT": "9000", "FLUSH_INTERVAL_MS": "250", "BUFFER_SHARDS": "8", "CLUSTER_SHARDS": "128",
                "BUFFER_MAX_PENDING_KEYS": "5_000", "LOG_LEVEL": "DEBUG",
                "DATABASE_URL": "postgres://app:s%40cret@db.internal:6543/counts?sslmode=require",
            ],
            arguments: ["--port", "9100", "--flush-group-commit-ms", "5"]
        )
        #expect(settings.port == 9100)
        #expect(settings.flush.interval == .milliseconds(250))
        #expect(settings.flush.groupCommitWindow == .milliseconds(5))
        #expect(settings.bufferShards == 8)
        #expect(settings.flush.clusterShards == 128)
        #expect(settings.maximumPendingKeys == 5_000)
        #expect(settings.logLevel == .debug)
        #expect(
            settings.database
                == DatabaseSettings(
                    host: "db.internal", port: 6543, username: "app", password: "s@cret", database: "counts",
                    tlsMode: .require, poolSize: 4
                )
        )
    }

    @Test func fallsBackToLibpqVariablesThenDefaults() throws {
        let settings = try self.settings(environment: ["PGHOST": "/var/run/postgresql", "PGUSER": "me", "PGSSLMODE": "disable"])
        #expect(settings.database.host == "/var/run/postgresql")
        #expect(settings.database.username == "me")
        #expect(settings.database.database == "me")
        #expect(settings.database.tlsMode == .disable)
        #expect(settings.port == 8080)
        #expect(settings.flush.interval == .seconds(1))
        #expect(settings.database.clientConfiguration.unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
    }

    @Test(arguments: [
        ["PORT": "eighty"],
        ["PORT": "70000"],
        ["FLUSH_INTERVAL_MS": "0"],
        ["LOG_LEVEL": "loud"],
        ["DATABASE_URL": "mysql://x@y/z"],
        ["PGSSLMODE": "maybe"],
    ])
    func refusesUnusableValues(environment: [String: String]) {
        #expect(throws: SettingsError.self) { try self.settings(environment: environment) }
    }

    @Test func spillsByDefaultIntoADirectoryUnderTheWorkingDirectoryUnlessTurnedOff() throws {
        let workingDirectory = FileManager.default.currentDirectoryPath
        #expect(try self.settings(environment: [:]).flush.spillDirectory == "\(workingDirectory)/increment-spill")
        #expect(try self.settings(environment: ["FLUSH_SPILL_DIR": ""]).flush.spillDirectory == "\(workingDirectory)/increment-spill")
        #expect(try self.settings(environment: ["FLUSH_SPILL_DIR": "state/spill"]).flush.spillDirectory == "\(workingDirectory)/state/spill")
        #expect(try self.settings(environment: ["FLUSH_SPILL_DIR": "/var/lib/increment/spill"]).flush.spillDirectory == "/var/lib/increment/spill")
        #expect(try self.settings(environment: ["FLUSH_SPILL_DIR": "off"]).flush.spillDirectory == nil)
        #expect(try self.settings(environment: [:], arguments: ["--flush-spill-dir", "OFF"]).flush.spillDirectory == nil)
    }

    @Test func aSpillDirectoryThatCannotBeWrittenIsRefusedAtStart() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("not-a-directory-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let error = #expect(throws: SpillDirectoryUnusable.self) { try SpillDirectory(path: "\(file)/spill") }
        #expect(error?.description.contains("FLUSH_SPILL_DIR=off") == true)
    }

    @Test func helpNamesEverySettingWithItsVariableAndFlag() {
        let help = NodeSettings.helpText
        for setting in NodeSettings.catalog {
            #expect(help.contains("\(setting.flag) / \(setting.environmentVariable)"))
        }
        #expect(help.contains("--flush-interval-ms / FLUSH_INTERVAL_MS"))
        #expect(help.contains("--database-url / DATABASE_URL"))
    }
}
