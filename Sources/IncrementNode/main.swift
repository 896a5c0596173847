import Configuration
import Foundation
import Hummingbird
import IncrementApp
import Logging
import Metrics
import Prometheus

// Reads settings from flags and environment, sets up logging and metrics, and runs the node
// until SIGTERM or SIGINT, when it drains and flushes before exiting. `increment-node migrate`
// applies the schema migrations and exits.

let arguments = Array(CommandLine.arguments.dropFirst())
let migrateOnly = arguments.first == "migrate"
if arguments.contains("--help") || arguments.contains("-h") {
    print(NodeSettings.helpText)
    exit(0)
}

let reader = ConfigReader(providers: [
    CommandLineArgumentsProvider(arguments: [CommandLine.arguments[0]] + (migrateOnly ? Array(arguments.dropFirst()) : arguments)),
    EnvironmentVariablesProvider(),
])
let settings: NodeSettings
do {
    settings = try NodeSettings(reader: reader)
} catch {
    FileHandle.standardError.write(Data("increment-node: \(error)\nSee increment-node --help.\n".utf8))
    exit(2)
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardOutput(label: label)
    handler.logLevel = settings.logLevel
    return LazyMetadataLogHandler(handler)
}
var logger = Logger(label: "increment-node")
logger.logLevel = settings.logLevel

let registry = PrometheusCollectorRegistry()
// Libraries' metrics (HTTP requests by route and status) go to the same registry as the node's.
MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

if migrateOnly {
    do {
        let applied = try await migrateDatabase(settings: settings, logger: logger)
        logger.info("migrations applied", metadata: ["migration.versions": "\(applied)"])
        exit(0)
    } catch {
        logger.critical("migration failed", metadata: ["error": "\(error)"])
        exit(1)
    }
}

logger.info(
    "starting",
    metadata: [
        "http.address": "\(settings.host):\(settings.port)",
        "database": "\(settings.database.redactedDescription)",
        "flush.spillDirectory": "\(settings.flush.spillDirectory ?? "off")",
    ]
)
if settings.flush.spillDirectory == nil {
    logger.warning("FLUSH_SPILL_DIR=off: increments the database cannot take by the shutdown deadline will be lost")
}
do {
    try await runNode(settings: settings, logger: logger, registry: registry)
} catch let error as SpillDirectoryUnusable {
    logger.critical("cannot start", metadata: ["error": "\(error)"])
    exit(2)
} catch let error as FinalFlushIncomplete {
    logger.critical("stopped with increments not written to the database", metadata: ["error": "\(error)"])
    exit(error.exitStatus)
} catch {
    logger.critical("stopped by an error", metadata: ["error": "\(error)"])
    exit(1)
}
