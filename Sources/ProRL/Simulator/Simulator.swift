import Foundation

/// The user simulator: a trained ``SASRec`` and the raw item ids its rows
/// stand for. Saved as safetensors with RecBole's tensor names; the config
/// and item ids ride in the header metadata.
public final class Simulator: @unchecked Sendable {
    public let model: SASRec
    /// Raw id of each item-table row (index 0: "[PAD]").
    public let itemIDs: [String]

    public init(model: SASRec, itemIDs: [String]) {
        precondition(itemIDs.count == model.config.itemVocabulary, "item ids and item table differ in size")
        self.model = model
        self.itemIDs = itemIDs
    }

    public static let format = "prorl-simulator"

    /// Writes the checkpoint atomically.
    public func save(to path: String, extra: [String: String] = [:]) throws {
        let config = String(decoding: try JSONEncoder().encode(model.config), as: UTF8.self)
        let ids = String(decoding: try JSONEncoder().encode(itemIDs), as: UTF8.self)
        var meta = extra
        meta["format"] = Simulator.format
        meta["config"] = config
        meta["item_ids"] = ids
        try SafeTensors.write(model.store, metadata: meta, to: path)
    }

    /// Reads a checkpoint written by ``save(to:extra:)`` — or a RecBole
    /// SASRec state_dict converted to safetensors, given its config and item
    /// ids (`config`, `itemIDs`) when the file carries none.
    public static func load(_ path: String, config: SASRecConfig? = nil, itemIDs: [String]? = nil) throws -> Simulator {
        let (tensors, meta) = try SafeTensors.read(path)
        if let format = meta["format"], format != Simulator.format {
            throw DataError(file: path, "is a '\(format)' checkpoint, not a simulator")
        }
        let cfg: SASRecConfig
        if let text = meta["config"] {
            do { cfg = try JSONDecoder().decode(SASRecConfig.self, from: Data(text.utf8)) } catch {
                throw DataError(file: path, "metadata 'config' is not a simulator config: \(error)")
            }
        } else if let config { cfg = config } else {
            guard let table = tensors["item_embedding.weight"], table.shape.count == 2 else {
                throw DataError(file: path, "has no simulator config and no item_embedding.weight")
            }
            var c = SASRecConfig(itemVocabulary: table.shape[0])
            c.hidden = table.shape[1]
            c.maxLength = tensors["position_embedding.weight"]?.shape.first ?? c.maxLength
            c.layers = Set(tensors.keys.compactMap { k -> Int? in
                guard k.hasPrefix("trm_encoder.layer.") else { return nil }
                return Int(k.dropFirst("trm_encoder.layer.".count).prefix { $0.isNumber })
            }).count
            c.inner = tensors["trm_encoder.layer.0.feed_forward.dense_1.weight"]?.shape.first ?? c.inner
            cfg = c
        }
        let ids: [String]
        if let text = meta["item_ids"] {
            guard let list = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw DataError(file: path, "metadata 'item_ids' is not a list of strings")
            }
            ids = list
        } else if let itemIDs { ids = itemIDs } else {
            ids = ["[PAD]"] + (1..<cfg.itemVocabulary).map(String.init)
        }
        guard ids.count == cfg.itemVocabulary else {
            throw DataError(file: path, "has \(ids.count) item ids for an item table of \(cfg.itemVocabulary) rows")
        }
        let model: SASRec
        do { model = try SASRec(config: cfg) } catch let e as DataError { throw DataError(file: path, e.message) }
        try SafeTensors.load(tensors, into: model.store, file: path)
        return Simulator(model: model, itemIDs: ids)
    }

    /// The simulator's row of each catalogue item (nil when it has none).
    public func rows(for catalog: ItemCatalog) -> [Int32?] {
        var index: [String: Int32] = [:]
        for (i, id) in itemIDs.enumerated() where i > 0 { index[id] = Int32(i) }
        return catalog.rawIDs.enumerated().map { $0.offset == 0 ? 0 : index[$0.element] }
    }
}
