// libFuzzer entry point for the request body decoders: any bytes must either decode to
// increments that satisfy the key and value rules, or be refused with an IncrementInputError;
// nothing may crash. Built with `-sanitize=fuzzer,address` by system-tests/fuzz/run.sh.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    if let increment = try? IncrementBodyDecoder.decodeIncrement(from: bytes) {
        check(increment)
    }
    if let increments = try? IncrementBodyDecoder.decodeBatch(from: bytes, maximumItems: 50) {
        precondition(increments.count <= 50, "a batch over its item limit was accepted")
        increments.forEach(check)
    }
    return 0
}

private func check(_ increment: Increment) {
    let utf8 = increment.key.string.utf8
    precondition(!utf8.isEmpty && utf8.count <= CounterKey.maximumLength, "a key outside 1...256 bytes was accepted")
    precondition(!utf8.contains(0), "a key with NUL was accepted")
}
