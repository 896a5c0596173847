import Testing

@testable import IncrementApp

/// The group-commit window: it runs to its limit unless the group it expects is complete.
struct GroupCommitWindowTests {
    @Test func beforeAnyFlushWithWaitersTheWindowRunsToItsLimit() async {
        let window = GroupCommitWindow()
        window.waiterArrived()
        let started = ContinuousClock.now
        await window.wait(atMost: .milliseconds(200))
        #expect(ContinuousClock.now - started >= .milliseconds(200))
    }

    @Test func closesOnceAsManyWaitersArrivedAsTheLastFlushCarried() async {
        let window = GroupCommitWindow()
        window.drained(waiters: 3)
        window.waiterArrived()
        let started = ContinuousClock.now
        async let waited: Void = window.wait(atMost: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        window.waiterArrived()
        window.waiterArrived()
        await waited
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aCompleteGroupDoesNotWaitAtAll() async {
        let window = GroupCommitWindow()
        window.drained(waiters: 1)
        window.waiterArrived()
        let started = ContinuousClock.now
        await window.wait(atMost: .seconds(30))
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func fewerWaitersThanLastTimeWaitTheWholeWindow() async {
        let window = GroupCommitWindow()
        window.drained(waiters: 5)
        window.drained(waiters: 0)  // a periodic flush without waiters keeps the expectation
        window.waiterArrived()
        window.waiterArrived()
        let started = ContinuousClock.now
        await window.wait(atMost: .milliseconds(200))
        #expect(ContinuousClock.now - started >= .milliseconds(200))
    }

    @Test func aCancelledWaitReturns() async {
        let window = GroupCommitWindow()
        let task = Task { await window.wait(atMost: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let started = ContinuousClock.now
        await task.value
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
