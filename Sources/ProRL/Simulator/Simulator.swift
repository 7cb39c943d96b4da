import Foundation

/// The user simulator: a trained ``SequenceModel`` and the raw item ids its
/// rows stand for. Saved as safetensors with RecBole's tensor names; the
/// architecture, config and item ids ride in the header metadata.
public final class Simulator: @unchecked Sendable {
    public let model: any SequenceModel
    /// Raw id of each item-table row (index 0: "[PAD]").
    public let itemIDs: [String]

    /// Throws when the ids and the item table differ in size.
    public init(model: any SequenceModel, itemIDs: [String]) throws {
        guard itemIDs.count == model.itemVocabulary else {
            throw DataError(file: "simulator", "\(itemIDs.count) item ids for an item table of \(model.itemVocabulary) rows")
        }
        self.model = model
        self.itemIDs = itemIDs
    }

    public static let format = "prorl-simulator"

    /// Writes the checkpoint atomically.
    public func save(to path: String, extra: [String: String] = [:]) throws {
        var meta = extra
        meta["format"] = Simulator.format
        meta["architecture"] = model.architecture
        meta["config"] = try model.encodedConfig()
        meta["item_ids"] = try stableJSON(itemIDs)
        try SafeTensors.write(model.store, metadata: meta, to: path)
    }

    /// Reads a checkpoint written by ``save(to:extra:)``, or a RecBole
    /// state_dict saved as safetensors (`safetensors.torch.save_file`): the
    /// architecture and sizes then come from the tensor names and shapes,
    /// and the item ids must be given (`itemIDs`: RecBole's order, e.g.
    /// from the log read with `--time-order recbole`). Ids in the file win
    /// over `itemIDs` only when they agree.
    public static func load(_ path: String, itemIDs given: [String]? = nil) throws -> Simulator {
        let (tensors, meta) = try SafeTensors.read(path)
        if let format = meta["format"], format != Simulator.format {
            throw DataError(file: path, "is a '\(format)' checkpoint, not a simulator")
        }
        let model: any SequenceModel
        do {
            if let config = meta["config"] {
                // checkpoints from before the registry carry no architecture: the standard one's
                let name = meta["architecture"] ?? SequenceArchitectures.standard.name
                model = try SequenceArchitectures.named(name).decode(config, tensors.mapValues(\.shape))
            } else {
                model = try SequenceArchitectures.infer(tensors.mapValues(\.shape), file: path)
            }
        } catch let e as DataError { throw e.file == path ? e : DataError(file: path, "\(e.file) \(e.message)") }
        let ids: [String]
        if let text = meta["item_ids"] {
            guard let list = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
                throw DataError(file: path, "metadata 'item_ids' is not a list of strings")
            }
            if let given, given != list {
                throw DataError(file: path, "its item ids differ from the log's (trained on another log or id order?)", kind: .incompatible)
            }
            ids = list
        } else if let given {
            ids = given
        } else {
            throw DataError(file: path, "has no item ids (a RecBole state_dict?): give the log it was trained on "
                            + "(`prorl simulator import --checkpoint … --inter … --time-order recbole`)")
        }
        if let d = ItemCatalog.firstDuplicate(ids) { throw DataError(file: path, "metadata 'item_ids' names item \"\(d)\" twice") }
        guard ids.count == model.itemVocabulary else {
            throw DataError(file: path, "has \(ids.count) item ids for an item table of \(model.itemVocabulary) rows")
        }
        try SafeTensors.load(tensors, into: model.store, file: path)
        return try Simulator(model: model, itemIDs: ids)
    }

    /// The simulator's row of each catalogue item (nil when it has none).
    public func rows(for catalog: ItemCatalog) -> [Int32?] {
        var index: [String: Int32] = [:]
        for (i, id) in itemIDs.enumerated() where i > 0 { index[id] = Int32(i) }
        return catalog.rawIDs.enumerated().map { $0.offset == 0 ? 0 : index[$0.element] }
    }
}
