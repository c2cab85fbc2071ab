/// Byte comparison whose running time depends only on the lengths of its inputs, never on where they differ.
public enum ConstantTime {
    /// True when both byte sequences are equal. Every byte of the longer input is visited and no branch depends on
    /// the byte values; only the lengths (which are not secret here: SHA-256 digests are always 32 bytes) can
    /// change the time taken.
    public static func equals(_ lhs: some Collection<UInt8>, _ rhs: some Collection<UInt8>) -> Bool {
        let lhs = Array(lhs)
        let rhs = Array(rhs)
        let count = max(lhs.count, rhs.count)
        var difference: UInt8 = lhs.count == rhs.count ? 0 : 1
        for index in 0..<count {
            // Indexing past the end of the shorter input reads 0 instead; the length mismatch is already recorded.
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }
}
