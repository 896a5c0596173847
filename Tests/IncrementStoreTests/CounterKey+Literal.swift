import IncrementCore

// Test keys are literals known to satisfy the key rules.
extension CounterKey: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self.init(trusted: value)
    }
}
