/// A model's parameters, gradients and AdamW moments, each one contiguous
/// arena with the same layout, viewed through named tensors. The optimiser
/// and gradient clipping are single flat loops over the arenas.
public final class ParameterStore: @unchecked Sendable {
    /// One named parameter: `shape` as the reference library spells it,
    /// viewed here as `[rows, cols]` (rows = all but the last dimension).
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        public var rows: Int { shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *) }
        public var cols: Int { shape.last ?? 1 }
    }

    public let entries: [Entry]
    public let count: Int
    public let values: FloatBuffer
    public let grads: FloatBuffer
    private var moments: (m: FloatBuffer, v: FloatBuffer)?
    private var index: [String: Int] = [:]
    /// AdamW steps taken.
    public private(set) var step = 0

    /// Lays out `layout` contiguously in the given order (so parameters
    /// declared next to each other can be viewed as one, e.g. q, k, v).
    public init(layout: [(name: String, shape: [Int])]) {
        var entries: [Entry] = []
        var offset = 0
        for (name, shape) in layout {
            precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "parameter \(name) has shape \(shape)")
            entries.append(Entry(name: name, shape: shape, offset: offset))
            offset += shape.reduce(1, *)
        }
        self.entries = entries
        count = offset
        values = FloatBuffer(count: offset)
        grads = FloatBuffer(count: offset)
        for (i, e) in entries.enumerated() {
            precondition(index[e.name] == nil, "parameter \(e.name) declared twice")
            index[e.name] = i
        }
    }

    /// Position of a parameter by name.
    public func id(_ name: String) -> Int {
        guard let i = index[name] else { preconditionFailure("no parameter named \(name)") }
        return i
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The value of parameter `i` as `[rows, cols]`.
    public func value(_ i: Int) -> Tensor {
        let e = entries[i]
        return Tensor(values.base + e.offset, rows: e.rows, cols: e.cols)
    }

    /// The gradient of parameter `i` as `[rows, cols]`.
    public func grad(_ i: Int) -> Tensor {
        let e = entries[i]
        return Tensor(grads.base + e.offset, rows: e.rows, cols: e.cols)
    }

    /// Parameters `first...last` (consecutive in the layout) viewed as one
    /// `[Σ rows, cols]` value (e.g. fused q/k/v weights).
    public func fusedValue(_ ids: [Int]) -> Tensor { fused(ids, values.base) }
    public func fusedGrad(_ ids: [Int]) -> Tensor { fused(ids, grads.base) }

    private func fused(_ ids: [Int], _ base: UnsafeMutablePointer<Float>) -> Tensor {
        let first = entries[ids[0]]
        var rows = 0, expected = first.offset
        for i in ids {
            let e = entries[i]
            precondition(e.offset == expected && e.cols == first.cols, "parameters \(ids) are not contiguous")
            rows += e.rows
            expected += e.count
        }
        return Tensor(base + first.offset, rows: rows, cols: first.cols)
    }

    /// All values / all gradients as one flat view.
    public var allValues: Tensor { values.flat }
    public var allGrads: Tensor { grads.flat }

    public func zeroGrads() { grads.flat.zero() }

    /// Copies every value from `other` (same layout).
    public func copyValues(from other: ParameterStore) {
        precondition(other.entries == entries, "parameter layouts differ")
        values.flat.copy(from: other.values.flat)
    }

    /// One AdamW step over every parameter (torch.optim.AdamW semantics;
    /// weight decay 0 is Adam).
    public func adamW(lr: Float, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float) {
        if moments == nil { moments = (FloatBuffer(count: count), FloatBuffer(count: count)) }
        step += 1
        Kernels.adamW(params: values.flat, m: moments!.m.flat, v: moments!.v.flat, grads: grads.flat, lr: lr,
                      beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay, step: step)
    }

    /// The update every trainer makes once its gradients are accumulated —
    /// the one place this sequence lives: the gradient arena (one
    /// contiguous buffer) summed over the ranks of a data-parallel run in
    /// one call, its global norm clipped to `clip` (none when nil), then one
    /// AdamW step. Every rank holds the same sum, so every rank makes the
    /// same update. Returns the norm before clipping (nil without).
    @discardableResult
    public func update(lr: Float, weightDecay: Float, clip: Float?, collective: any Collective = SingleProcess.shared) throws -> Float? {
        if collective.size > 1 { try collective.allReduceSum(allGrads) }
        let norm = clip.map { Kernels.clipGradientNorm(allGrads, maxNorm: $0) }
        adamW(lr: lr, weightDecay: weightDecay)
        return norm
    }

    /// The optimiser state (step and moments), for resuming training.
    public var optimizerState: (step: Int, m: Tensor, v: Tensor)? {
        guard let moments else { return nil }
        return (step, moments.m.flat, moments.v.flat)
    }

    /// Restores optimiser state saved by ``optimizerState``.
    public func restoreOptimizer(step: Int, m: [Float], v: [Float]) {
        precondition(m.count == count && v.count == count, "optimiser state of the wrong size")
        moments = (FloatBuffer(count: count), FloatBuffer(count: count))
        moments!.m.flat.copy(from: m)
        moments!.v.flat.copy(from: v)
        self.step = step
    }
}

/// Deterministic normal samples (Box–Muller over splitmix64).
public struct GaussianSampler {
    private var rng: SplitMix64
    private var spare: Double? = nil

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    public mutating func next() -> Double {
        if let s = spare { spare = nil; return s }
        var u = rng.nextUnit()
        while u <= 0 { u = rng.nextUnit() }
        let v = rng.nextUnit()
        let r = (-2 * log(u)).squareRoot()
        spare = r * sin(2 * Double.pi * v)
        return r * cos(2 * Double.pi * v)
    }

    /// Fills `t` with normal(0, std) samples.
    public mutating func fill(_ t: Tensor, std: Double) {
        for i in 0..<t.count { t[i] = Float(next() * std) }
    }
}

import Foundation
