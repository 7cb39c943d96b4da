import Foundation

/// The policy: a ``T5Policy`` with the item tokenizer it speaks and the raw
/// ids of the items (so a checkpoint stands on its own). Saved as
/// safetensors with HF T5 names; config, tokenizer and item ids ride in the
/// header metadata.
public final class Policy: @unchecked Sendable {
    public let model: T5Policy
    public let tokenizer: ItemTokenizer
    /// Raw id of each dense item id (index 0: "[PAD]").
    public let itemIDs: [String]

    public static let format = "prorl-policy"

    public init(model: T5Policy, tokenizer: ItemTokenizer, itemIDs: [String]) {
        precondition(model.config.vocabulary == tokenizer.vocabularySize && model.config.eosToken == tokenizer.eosToken,
                     "model and tokenizer disagree on the vocabulary")
        precondition(itemIDs.count == tokenizer.itemCount + 1, "item ids and tokenizer differ in size")
        self.model = model
        self.tokenizer = tokenizer
        self.itemIDs = itemIDs
    }

    /// A fresh policy of the reference architecture for `tokenizer`.
    public convenience init(tokenizer: ItemTokenizer, itemIDs: [String], configure: (inout T5Config) -> Void = { _ in },
                            seed: UInt64 = 2024) throws {
        var config = T5Config(vocabulary: tokenizer.vocabularySize, eosToken: tokenizer.eosToken)
        configure(&config)
        try self.init(model: T5Policy(config: config, seed: seed), tokenizer: tokenizer, itemIDs: itemIDs)
    }

    /// Encoder input of a task: the history items' tokens, the target's
    /// tokens, EOS (the reference's layout, without user token or padding).
    public func encoderTokens(history: [Int32], target: Int32) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity((history.count + 1) * tokenizer.tokensPerItem + 1)
        for item in history { out += tokenizer.tokens(of: item) }
        out += tokenizer.tokens(of: target)
        out.append(tokenizer.eosToken)
        return out
    }

    /// Decoder targets of a path: its items' tokens, then EOS.
    public func decoderTargets(path: [Int32]) -> [Int32] { tokenizer.encode(path) }

    /// Longest encoder input for histories of `historyLength` items.
    public func encoderLength(historyLength: Int = 10) -> Int { (historyLength + 1) * tokenizer.tokensPerItem + 1 }
    /// Longest decoder sequence for paths of up to `maxItems` items.
    public func decoderLength(maxItems: Int = 10) -> Int { maxItems * tokenizer.tokensPerItem + 1 }

    /// Writes the checkpoint atomically.
    public func save(to path: String, extra: [String: String] = [:]) throws {
        var meta = extra
        meta["format"] = Policy.format
        meta["config"] = try stableJSON(model.config)
        meta["tokenizer"] = try stableJSON(tokenizer)
        meta["item_ids"] = try stableJSON(itemIDs)
        try SafeTensors.write(model.store, metadata: meta, to: path)
    }

    /// Reads a checkpoint written by ``save(to:extra:)``.
    public static func load(_ path: String) throws -> Policy {
        let (tensors, meta) = try SafeTensors.read(path)
        guard meta["format"] == Policy.format else {
            throw DataError(file: path, meta["format"].map { "is a '\($0)' checkpoint, not a policy" } ?? "is not a policy checkpoint (no 'format' metadata)")
        }
        func decode<T: Decodable>(_ key: String, _ type: T.Type) throws -> T {
            guard let text = meta[key] else { throw DataError(file: path, "metadata '\(key)' is missing") }
            do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
                throw DataError(file: path, "metadata '\(key)' is malformed: \(error)")
            }
        }
        let config = try decode("config", T5Config.self)
        let tokenizer = try decode("tokenizer", ItemTokenizer.self)
        let ids = try decode("item_ids", [String].self)
        guard config.vocabulary == tokenizer.vocabularySize, ids.count == tokenizer.itemCount + 1 else {
            throw DataError(file: path, "config, tokenizer and item ids disagree")
        }
        if let d = ItemCatalog.firstDuplicate(ids) { throw DataError(file: path, "metadata 'item_ids' names item \"\(d)\" twice") }
        guard config.eosToken == tokenizer.eosToken else {
            throw DataError(file: path, "config's eosToken \(config.eosToken) is not the tokenizer's \(tokenizer.eosToken)")
        }
        do { try config.validate() } catch let e as DataError { throw DataError(file: path, e.message) }
        // the sizes the config names must be the tensors' before anything that big is allocated
        guard config.encoderLayers + config.decoderLayers <= tensors.count else {
            throw DataError(file: path, "config names \(config.encoderLayers) + \(config.decoderLayers) layers; the file has \(tensors.count) tensors")
        }
        for (name, shape) in T5Policy.layout(config) where tensors[name]?.shape != shape {
            throw DataError(file: path, "tensor '\(name)' has shape \(tensors[name].map { "\($0.shape)" } ?? "(missing)"), "
                            + "the config says \(shape)")
        }
        let model: T5Policy
        do { model = try T5Policy(config: config) } catch let e as DataError { throw DataError(file: path, e.message) }
        try model.load(tensors, file: path)
        return Policy(model: model, tokenizer: tokenizer, itemIDs: ids)
    }
}
