import Foundation
import ProRL

/// A golden fixture written by one of tools/golden_*.py: the reference
/// library's weights (`weights.NAME`), its outputs and gradients
/// (`grad.NAME`), and the JSON in the header metadata.
public struct GoldenFixture {
    public let path: String
    public let tensors: [String: SafeTensors.Tensor]
    public let metadata: [String: String]

    /// Reads `Tests/Fixtures/NAME.safetensors`.
    public init(_ name: String) throws {
        path = TestPaths.packageRoot + "/Tests/Fixtures/\(name).safetensors"
        (tensors, metadata) = try SafeTensors.read(path)
    }

    /// The reference library's state_dict (the `weights.` tensors, prefix removed).
    public var weights: [String: SafeTensors.Tensor] {
        var out: [String: SafeTensors.Tensor] = [:]
        for (k, v) in tensors where k.hasPrefix("weights.") { out[String(k.dropFirst("weights.".count))] = v }
        return out
    }

    /// Metadata field `key` parsed as JSON.
    public func json<T>(_ key: String, as: T.Type = T.self) throws -> T {
        guard let text = metadata[key], let value = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? T else {
            throw DataError(file: path, "metadata '\(key)' missing or not a \(T.self)")
        }
        return value
    }

    /// The fixture's right-padded sequences (`sequences`, `lengths`) and their targets.
    public func batch(maxLength: Int) throws -> (batch: SequenceBatch, targets: [Int32]) {
        let seqs: [[Int]] = try json("sequences"), lengths: [Int] = try json("lengths"), targets: [Int] = try json("targets")
        let batch = SequenceBatch(zip(seqs, lengths).map { s, n in s.prefix(n).map(Int32.init) }, maxLength: maxLength)
        return (batch, targets.map(Int32.init))
    }

    /// Whether `observed` matches tensor `name`: each entry within
    /// `relative` × max(max|reference|, floor) — `floor` being the scale of
    /// the quantities the values are made of (for gradients, the model's
    /// largest gradient), so a tensor that is zero up to rounding is judged
    /// against that, not its own noise — or, at bf16 products, normwise as
    /// ``Products/mismatch(_:_:tolerance:floor:)`` says. Returns the mismatch
    /// (nil when they agree) and the elementwise tolerance.
    public func compare(_ observed: [Float], to name: String, relative: Double, floor: Double = 1e-6)
        -> (mismatch: String?, tolerance: Double) {
        guard let reference = tensors[name] else { return ("no tensor '\(name)' in \(path)", 0) }
        let expected = reference.values.map { Double($0) }
        let tol = relative * max(expected.map(abs).max() ?? 1, floor)
        return (Products.mismatch(observed, expected, tolerance: tol, floor: floor), tol)
    }

    /// The largest |gradient| among the `grad.` tensors.
    public var largestGradient: Double {
        tensors.filter { $0.key.hasPrefix("grad.") }.values.flatMap(\.values).map { Double(abs($0)) }.max() ?? 0
    }
}
