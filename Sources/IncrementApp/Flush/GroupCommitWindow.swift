import IncrementCore
import Synchronization

/// The wait before a flush that `wait=commit` requests asked for, so that one transaction serves
/// many of them.
///
/// It ends after ``FlushSettings/groupCommitWindow``, or as soon as as many waiting requests have
/// arrived as the last flush with waiters carried, whichever comes first. Under steady load that
/// is the moment the last group's clients are all back, so the window costs their round trip and
/// no more; with fewer clients than last time it runs to its end, as a fixed window would.
final class GroupCommitWindow: Sendable {
    private struct State {
        /// Waiting requests buffered since the last drain.
        var arrived = 0
        /// How many the last flush with waiters carried; until one ran, the window runs to its end.
        var expected = Int.max
        /// The open window, if the flusher is waiting in one.
        var open: OneShot<Void>?
    }

    private let state = Mutex(State())

    /// Counts a `wait=commit` request just buffered; closes the window once the group is complete.
    func waiterArrived() {
        let complete: OneShot<Void>? = self.state.withLock { state in
            state.arrived += 1
            guard state.arrived >= state.expected, let open = state.open else { return nil }
            state.open = nil
            return open
        }
        complete?.set(())
    }

    /// Records a drain of the buffer that took `waiters` waiting requests: from here on arrivals
    /// wait for the next flush.
    func drained(waiters: Int) {
        self.state.withLock { state in
            state.arrived = 0
            if waiters > 0 { state.expected = waiters }
        }
    }

    /// Waits until the group is complete or `limit` has passed. Returns at once when cancelled.
    func wait(atMost limit: Duration) async {
        let window = OneShot<Void>()
        let complete = self.state.withLock { state in
            if state.arrived >= state.expected { return true }
            state.open = window
            return false
        }
        if complete { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Whether the sleep ends or is cancelled, the window closes.
                try? await Task.sleep(for: limit)
                window.set(())
            }
            await window.value()
            group.cancelAll()
        }
        self.state.withLock { state in
            if state.open === window { state.open = nil }
        }
    }
}
