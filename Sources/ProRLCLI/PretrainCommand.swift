import ArgumentParser
import Foundation
import ProRL

/// `prorl pretrain`: supervised pretraining of the policy on reference paths.
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain the T5 policy on reference paths (teacher forcing, token cross-entropy).",
        discussion: """
            Reads TASKS/train.jsonl, TASKS/validation.jsonl and TASKS/catalog.json (as written by \
            'prorl data tasks' or 'prorl data import-splits --out'). Writes OUT/policy-sft.safetensors \
            (the best epoch by validation loss) and OUT/pretrain.jsonl (one line per epoch).
            """)

    @Option(help: "Directory with train.jsonl, validation.jsonl and catalog.json.") var tasks: String
    @Option(help: "Output directory.") var out: String
    @Option(help: """
        Item tokenizer: 'per-item' (one token per item), 'semantic-ids:FILE' (a .sem_ids file), \
        'tokenizer:FILE' (a tokenizer.json) or 'rq-kmeans:SIMULATOR' (semantic IDs by residual k-means \
        over a simulator checkpoint's item embeddings).
        """)
    var tokenizer = "per-item"
    @Option(help: "Epochs.") var epochs = 40
    @Option(help: "Tasks per batch.") var batchSize = 256
    @Option(help: "Peak learning rate (AdamW; linear warm-up over 5 % of steps, then cosine decay).") var lr: Float = 3e-3
    @Option(help: "AdamW weight decay.") var weightDecay: Float = 0.05
    @Option(help: "Dropout.") var dropout: Float = 0.1
    @Option(help: "Evaluate every this many epochs.") var evaluateEvery = 1
    @Option(help: "Seed for initialisation, shuffling and dropout.") var seed: UInt64 = 2024
    @Option(help: "Keep the epoch with the best validation 'loss', or 'ioi' / 'ior' of greedy paths (K = 1, no repeats) scored by --simulator.")
    var select = "loss"
    @Option(help: "Simulator checkpoint that scores validation paths (with --select ioi or ior).") var simulator: String?
    @Option(help: Precision.help)
    var precision = Precision.processDefault
    @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0

    func validate() throws {
        guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs: expected 1...1000000, found \(epochs)") }
        guard (1...65_536).contains(batchSize) else { throw ValidationError("--batch-size: expected 1...65536, found \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr: expected a finite value > 0, found \(lr)") }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw ValidationError("--weight-decay: expected a finite value ≥ 0, found \(weightDecay)")
        }
        guard (0..<1).contains(dropout) else { throw ValidationError("--dropout: expected a value in [0, 1), found \(dropout)") }
        guard ["loss", "ioi", "ior"].contains(select) else { throw ValidationError("--select: expected loss, ioi or ior, found '\(select)'") }
        if select != "loss" && simulator == nil { throw ValidationError("--select \(select) needs --simulator") }
    }

    func run() throws {
        Kernels.threads = threads
        let catalog = try ItemCatalog.read("\(tasks)/catalog.json")
        let train = try TaskFile.read("\(tasks)/train.jsonl", catalog: catalog)
        let validation = try TaskFile.read("\(tasks)/validation.jsonl", catalog: catalog)
        let tok = try makeTokenizer(tokenizer, catalog: catalog)
        let policy = try Policy(tokenizer: tok, itemIDs: catalog.rawIDs, configure: { $0.dropout = dropout }, seed: seed)
        var s = PretrainingSettings()
        s.epochs = epochs
        s.batchSize = batchSize
        s.learningRate = lr
        s.weightDecay = weightDecay
        s.evaluateEvery = evaluateEvery
        s.seed = seed
        s.precision = precision
        let trainer = try PolicyPretrainer(policy: policy, train: train, validation: validation, settings: s,
                                           collective: Distributed.world)
        print("pretraining: \(train.count) train / \(validation.count) validation tasks, \(tok.kind.rawValue) tokens "
              + "(\(tok.tokensPerItem) per item, vocabulary \(tok.vocabularySize)), \(Kernels.threads) threads"
              + precision.note)
        var lines: [String] = []
        var evaluate: (() -> [String: Double])? = nil
        if let simulator, select != "loss" {
            let evaluator = try PathEvaluator(simulator: try Simulator.load(simulator), catalog: catalog)
            let (tasks, _) = evaluator.scorable(validation)
            evaluate = {  // greedy paths, no repeats (the decoding defaults)
                let m = evaluator.evaluate(policy: policy, method: "policy", tasks: tasks, beams: 1,
                                           options: DecodingOptions()).top
                return ["ioi": m.ioi, "ior": m.ior, "ctr": m.ctr, "length": m.length]
            }
        }
        try trainer.run(evaluate: evaluate, selection: select == "loss" ? nil : select) { e in
            var v = e.validationLoss.map { String(format: "  valid %.4f", $0) } ?? ""
            for key in ["ioi", "ior", "ctr", "length"] { if let x = e.metrics[key] { v += String(format: "  %@ %.4g", key, x) } }
            print(String(format: "epoch %3d  train %.4f", e.epoch, e.trainLoss) + v
                  + String(format: "  lr %.2e  %.1fs", e.learningRate, e.seconds) + (e.improved ? "  *" : ""))
            fflush(nil)  // each epoch reaches a log file as it ends
            var fields = ["\"epoch\": \(e.epoch)", "\"train_loss\": \(e.trainLoss)", "\"lr\": \(e.learningRate)",
                          "\"seconds\": \(e.seconds)"]
            if let v = e.validationLoss { fields.append("\"validation_loss\": \(v)") }
            for (key, x) in e.metrics.sorted(by: { $0.key < $1.key }) { fields.append("\"validation_\(key)\": \(x)") }
            lines.append("{" + fields.joined(separator: ", ") + "}")
        }
        guard Distributed.world.isWriter else { return }  // rank 0 writes
        try policy.save(to: "\(out)/policy-sft.safetensors")
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: "\(out)/pretrain.jsonl")
        print("wrote \(out)/policy-sft.safetensors and pretrain.jsonl")
    }
}

/// Builds the item tokenizer a flag names.
func makeTokenizer(_ spec: String, catalog: ItemCatalog) throws -> ItemTokenizer {
    if spec == "per-item" { return try ItemTokenizer(perItem: catalog.itemCount) }
    if spec.hasPrefix("semantic-ids:") {
        return try ProRLDatamaps.tokenizer(semanticIDs: String(spec.dropFirst("semantic-ids:".count)), catalog: catalog)
    }
    if spec.hasPrefix("tokenizer:") {
        let path = String(spec.dropFirst("tokenizer:".count))
        guard let data = FileManager.default.contents(atPath: path) else { throw DataError.unreadable(path) }
        do { return try JSONDecoder().decode(ItemTokenizer.self, from: data) } catch {
            throw DataError(file: path, "is not a tokenizer: \(error)")
        }
    }
    if spec.hasPrefix("rq-kmeans:") {
        let path = String(spec.dropFirst("rq-kmeans:".count))
        let sim = try Simulator.load(path)
        let rows = sim.rows(for: catalog)
        var embeddings: [[Float]] = [[]]
        for item in 1...catalog.itemCount {
            guard let r = rows[item] else {
                throw DataError(file: path, "has no embedding for item \"\(catalog.rawIDs[item])\" of the catalogue")
            }
            embeddings.append(sim.model.items.row(Int(r)).toArray())
        }
        return try ItemTokenizer(semanticIDs: try ResidualKMeans.codes(embeddings: embeddings))
    }
    throw ValidationError("--tokenizer: expected per-item, semantic-ids:FILE, tokenizer:FILE or rq-kmeans:SIMULATOR, found '\(spec)'")
}

extension PretrainCommand: DataParallelCommand {}
