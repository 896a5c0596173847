import Configuration
import Foundation
import Hummingbird
import IncrementApp
import Logging
import Metrics
import Prometheus

// Reads settings from flags and environment, sets up logging and metrics, and runs the node
// until SIGTERM or SIGINT, when it drains and flushes before exiting.

if CommandLine.arguments.contains("--help") || CommandLine.arguments.contains("-h") {
    print(NodeSettings.helpText)
    exit(0)
}

let reader = ConfigReader(providers: [CommandLineArgumentsProvider(), EnvironmentVariablesProvider()])
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
    return handler
}
var logger = Logger(label: "increment-node")
logger.logLevel = settings.logLevel

let registry = PrometheusCollectorRegistry()
// Libraries' metrics (HTTP requests by route and status) go to the same registry as the node's.
MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

logger.info(
    "starting",
    metadata: [
        "http.address": "\(settings.host):\(settings.port)",
        "database": "\(settings.database.redactedDescription)",
    ]
)
do {
    let app = try await buildApplication(settings: settings, logger: logger, registry: registry)
    try await app.runService()
} catch {
    logger.critical("stopped by an error", metadata: ["error": "\(error)"])
    exit(1)
}
