import Foundation

/// What a user simulator is to the rest of the engine: a causal model of
/// item sequences whose state after every prefix scores every item against
/// its item table. Training, rewards, evaluation and the greedy baseline use
/// only this; each architecture lives in its own folder and registers itself
/// in ``SequenceArchitectures``.
public protocol SequenceModel: AnyObject, Sendable {
    /// The registry key, written to checkpoints as `architecture`.
    static var architecture: String { get }
    /// Parameters under the reference library's (RecBole's) names.
    var store: ParameterStore { get }
    /// Store id of the item table `[itemVocabulary, width]` (row 0: padding),
    /// which is also the output layer.
    var itemTableID: Int { get }
    /// Longest sequence the model reads; longer ones keep their last items.
    var maxLength: Int { get }
    /// The hyper-parameters, JSON-encoded (checkpoint metadata `config`).
    func encodedConfig() throws -> String
    /// Forward/backward workspace for batches of up to `maxBatch` sequences.
    func makePass(maxBatch: Int) -> any SequencePass
}

extension SequenceModel {
    public var architecture: String { Self.architecture }
    /// The item table `[itemVocabulary, width]`.
    public var items: Tensor { store.value(itemTableID) }
    /// Rows of the item table: items + 1.
    public var itemVocabulary: Int { store.entries[itemTableID].shape[0] }
    /// Width of states and item vectors.
    public var width: Int { store.entries[itemTableID].shape[1] }
}

/// One forward/backward pass of a ``SequenceModel`` over right-padded
/// batches; activations live in memory sized once.
public protocol SequencePass: AnyObject {
    var maxBatch: Int { get }
    /// States `[B·T, width]` after every prefix (row `b·T + t`: after item t of
    /// sequence b; rows past a sequence's length are meaningless), or with
    /// `lastOnly` `[B, width]`: after each whole sequence. With `training`,
    /// dropout is on, drawn from `(seed, step)`.
    func forward(_ batch: SequenceBatch, training: Bool, seed: UInt64, step: UInt64, lastOnly: Bool) -> Tensor
    /// Accumulates parameter gradients given the gradient of the loss with
    /// respect to the last forward's output (same shape).
    func backward(_ dOut: Tensor)
}

extension SequencePass {
    /// Inference: dropout off.
    @discardableResult
    public func forward(_ batch: SequenceBatch, lastOnly: Bool = false) -> Tensor {
        forward(batch, training: false, seed: 0, step: 0, lastOnly: lastOnly)
    }
}

/// A right-padded batch of item sequences: `ids[b·T + t]`, with
/// `lengths[b]` real items per row (≥ 1).
public struct SequenceBatch: Sendable {
    public var ids: [Int32]
    public var lengths: [Int32]
    public let batch: Int
    public let length: Int

    /// Packs sequences, keeping the last `maxLength` items of each; the
    /// batch length is the longest kept sequence.
    public init(_ sequences: [[Int32]], maxLength: Int) {
        let kept = sequences.map { Array($0.suffix(maxLength)) }
        batch = kept.count
        length = max(1, kept.map(\.count).max() ?? 1)
        ids = [Int32](repeating: 0, count: batch * length)
        lengths = kept.map { Int32($0.count) }
        for (b, s) in kept.enumerated() {
            for (t, item) in s.enumerated() { ids[b * length + t] = item }
        }
    }
}

/// Hyper-parameters given on the command line; nil keeps the
/// architecture's default. An architecture refuses the ones it has not.
public struct SequenceModelOptions: Sendable, Equatable {
    public var hidden: Int? = nil
    public var embedding: Int? = nil
    public var heads: Int? = nil
    public var inner: Int? = nil
    public var layers: Int? = nil
    public var maxLength: Int? = nil
    public var dropout: Float? = nil

    public init() {}

    /// Throws when an option outside `allowed` (flag names) is set.
    public func check(allowed: Set<String>, architecture: String) throws {
        let set: [(String, Bool)] = [("hidden", hidden != nil), ("embedding", embedding != nil), ("heads", heads != nil),
                                     ("inner", inner != nil), ("layers", layers != nil),
                                     ("max-length", maxLength != nil), ("dropout", dropout != nil)]
        for (name, given) in set where given && !allowed.contains(name) {
            throw DataError(file: "simulator options", "--\(name) does not apply to \(architecture) "
                            + "(its options: \(allowed.sorted().map { "--" + $0 }.joined(separator: ", ")))")
        }
    }
}

/// What the registry needs of an architecture's hyper-parameters.
public protocol SequenceModelConfig: Codable {
    var layers: Int { get }
    /// Throws a DataError naming the first value out of range.
    func validate() throws
}

/// One architecture the engine can train, load and score with.
public struct SequenceArchitecture: Sendable {
    /// Registry key (`--architecture`, checkpoint metadata).
    public let name: String
    /// One line for help texts.
    public let summary: String
    /// A new model over `itemVocabulary` rows, initialised as the reference
    /// library initialises it.
    public let create: @Sendable (_ itemVocabulary: Int, _ options: SequenceModelOptions, _ seed: UInt64) throws
        -> any SequenceModel
    /// A model of the config in checkpoint metadata, checked against the
    /// file's tensor shapes before it is allocated (weights to be loaded).
    public let decode: @Sendable (_ config: String, _ shapes: [String: [Int]]) throws -> any SequenceModel
    /// When a RecBole state_dict's tensor names are this architecture's: a
    /// model sized by their shapes; nil otherwise.
    public let infer: @Sendable (_ shapes: [String: [Int]]) throws -> (any SequenceModel)?
}

/// The registry of architectures.
public enum SequenceArchitectures {
    public static let all: [SequenceArchitecture] = [SASRec.registration, GRU4Rec.registration]
    /// What `simulator train` builds unless told otherwise.
    public static var standard: SequenceArchitecture { all[0] }
    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) throws -> SequenceArchitecture {
        guard let a = all.first(where: { $0.name == name.lowercased() }) else {
            throw DataError(file: "architecture", "'\(name)' is not one of \(names.joined(separator: ", "))")
        }
        return a
    }

    /// A config from checkpoint metadata (`text`, an architecture's
    /// `Config` JSON), validated, and with every parameter of its `layout`
    /// found in the file's `shapes` — checked before a model that size is
    /// allocated, so a config that lies cannot ask for terabytes.
    public static func decodeConfig<Config: SequenceModelConfig>(
        _ text: String, as type: Config.Type, architecture: String, shapes: [String: [Int]],
        layout: (Config) -> [(name: String, shape: [Int])]
    ) throws -> Config {
        let c: Config
        do { c = try JSONDecoder().decode(Config.self, from: Data(text.utf8)) } catch {
            throw DataError(file: "metadata 'config'", "is not a \(architecture) config: \(error)")
        }
        try c.validate()
        guard c.layers <= shapes.count else {
            throw DataError(file: "metadata 'config'", "names \(c.layers) layers; the file has \(shapes.count) tensors")
        }
        for (name, shape) in layout(c) where shapes[name] != shape {
            throw DataError(file: "checkpoint", "tensor '\(name)' has shape \(shapes[name].map { "\($0)" } ?? "(missing)"), "
                            + "the config says \(shape)")
        }
        return c
    }

    /// The architecture whose tensor names `shapes` has, and a model sized
    /// by them.
    public static func infer(_ shapes: [String: [Int]], file: String) throws -> any SequenceModel {
        for a in all {
            do { if let m = try a.infer(shapes) { return m } } catch let e as DataError { throw DataError(file: file, e.message) }
        }
        throw DataError(file: file, "its tensor names are none of \(names.joined(separator: ", ")) "
                        + "(expected e.g. item_embedding.weight with trm_encoder.* or gru_layers.*)")
    }
}
