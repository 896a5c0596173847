import CoreMetrics
import Logging

extension FlushBarrier {
    /// Passes the barrier, or throws the API's answer: `503 barrier_timeout` naming the nodes
    /// that did not confirm, `503 database_unavailable` when the database did not answer.
    func passOrThrowAPIError(logger: Logger) async throws(APIError) -> Passed {
        do {
            return try await self.pass()
        } catch let error as NotConfirmed {
            self.timeouts.increment()
            logger.warning(
                "flush barrier not confirmed",
                metadata: ["barrier": "\(error.barrier)", "barrier.waitingFor": "\(error.nodes.joined(separator: ","))"]
            )
            throw .barrierTimeout(error, timeout: self.settings.barrierTimeout)
        } catch {
            logger.warning("flush barrier failed", metadata: ["error": "\(describe(error))"])
            throw .databaseUnavailable
        }
    }
}
