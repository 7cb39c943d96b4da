import ArgumentParser
import Foundation
import ProRL

/// `prorl simulator`: train, evaluate and import user simulators.
struct SimulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Train, evaluate and import user simulators (\(SequenceArchitectures.names.joined(separator: ", "))).",
        subcommands: [Train.self, Evaluate.self, Import.self]
    )

    struct ModelOptions: ParsableArguments {
        @Option(help: "Architecture: \(SequenceArchitectures.all.map { "'\($0.name)': \($0.summary)" }.joined(separator: "; ")).")
        var architecture = SequenceArchitectures.standard.name
        @Option(help: "Hidden width (sasrec: 64; gru4rec: the GRU's, 128).") var hidden: Int?
        @Option(help: "Item embedding width (gru4rec: 64; sasrec's is --hidden).") var embedding: Int?
        @Option(help: "Attention heads (sasrec: 2).") var heads: Int?
        @Option(help: "Feed-forward width (sasrec: 256).") var inner: Int?
        @Option(help: "Layers (sasrec: 2 transformer layers; gru4rec: 1 GRU layer).") var layers: Int?
        @Option(help: "Longest sequence the model reads (50).") var maxLength: Int?
        @Option(help: "Dropout (sasrec: 0.5 on hidden states and attention; gru4rec: 0.3 on embeddings).") var dropout: Float?

        var options: SequenceModelOptions {
            var o = SequenceModelOptions()
            o.hidden = hidden
            o.embedding = embedding
            o.heads = heads
            o.inner = inner
            o.layers = layers
            o.maxLength = maxLength
            o.dropout = dropout
            return o
        }

        /// A fresh model over `items` rows, or a one-line error naming the flag.
        func create(items: Int, seed: UInt64) throws -> any SequenceModel {
            do { return try SequenceArchitectures.named(architecture).create(items, options, seed) } catch let e as DataError {
                throw ValidationError(e.file == "architecture" ? "--architecture: \(e.message)" : e.message)
            }
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a simulator with leave-one-out splits and early stopping; save checkpoint and metrics.",
            discussion: """
                Writes OUT/simulator.safetensors (RecBole tensor names; config and item ids in the header) \
                and OUT/simulator.eval.json (validation and test HR/NDCG/MRR@10, full ranking and \
                sampled: 100 negatives drawn uniformly with replacement from all items but the target, \
                duplicates counted once — RecBole's uni100 rule). RecBole trains on every prefix of a \
                user's training items with the loss at its end: --loss last.
                """)

        @OptionGroup var log: LogOptions
        @OptionGroup var model: ModelOptions
        @Option(help: "Output directory.") var out: String
        @Option(help: "Loss positions: 'all' (every position of a window) or 'last' (RecBole's prefix samples).")
        var loss: SimulatorTraining.Loss = .allPositions
        @Option(help: "Sequences per batch.") var batchSize = 128
        @Flag(help: "Batch sequences of similar length together (less padding; batches still in random order).")
        var bucketByLength = false
        @Option(help: "Largest number of epochs.") var epochs = 200
        @Option(help: "Adam learning rate.") var lr: Float = 1e-3
        @Option(help: "Epochs without a better validation NDCG@10 before stopping.") var patience = 10
        @Option(help: "Seed for initialisation, shuffling and dropout.") var seed: UInt64 = 2020
        @Option(help: Precision.help)
        var precision = Precision.processDefault
        @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0

        func validate() throws {
            guard (1...65_536).contains(batchSize) else { throw ValidationError("--batch-size: expected 1...65536, found \(batchSize)") }
            guard (1...1_000_000).contains(epochs) else { throw ValidationError("--epochs: expected 1...1000000, found \(epochs)") }
            guard lr > 0, lr.isFinite else { throw ValidationError("--lr: expected a finite value > 0, found \(lr)") }
            _ = try model.create(items: 2, seed: seed)  // the architecture and its options, before reading the log
        }

        func run() throws {
            Kernels.threads = threads
            let log = try self.log.read()
            var s = SimulatorTraining()
            s.loss = loss
            s.batchSize = batchSize
            s.bucketByLength = bucketByLength
            s.epochs = epochs
            s.learningRate = lr
            s.patience = patience
            s.seed = seed
            s.precision = precision
            let trainer = try SimulatorTrainer(log: log, model: try model.create(items: log.catalog.vocabularySize, seed: seed),
                                               settings: s, collective: Distributed.world)
            print("simulator (\(trainer.model.architecture)): \(log.users.count) users, \(log.catalog.itemCount) items, \(log.eventCount) events; "
                  + "loss \(loss.rawValue), batch \(batchSize), \(Kernels.threads) threads")
            let t0 = Date()
            let result = try trainer.run { e in
                print(String(format: "epoch %3d  loss %.4f  valid ", e.epoch, e.loss) + e.validation.summary
                      + String(format: "  %.1fs%@", e.seconds, e.improved ? "  *" : ""))
                fflush(nil)
            }
            let seconds = Date().timeIntervalSince(t0)
            print("best validation: \(result.validation.summary)")
            print("test:            \(result.test.summary)")
            guard Distributed.world.isWriter else { return }  // rank 0 writes
            try Simulator(model: trainer.model, itemIDs: log.catalog.rawIDs).save(to: "\(out)/simulator.safetensors")
            let epochSeconds = seconds / Double(max(result.epochs, 1))
            let report: [String: Any] = [
                "architecture": trainer.model.architecture, "seconds_per_epoch": epochSeconds,
                "validation": try jsonObject(result.validation), "test": try jsonObject(result.test),
                "epochs": result.epochs, "seconds": seconds, "loss": loss.rawValue, "batch_size": batchSize, "bucket_by_length": bucketByLength,
                "users": log.users.count, "items": log.catalog.itemCount,
            ]
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]),
                                 to: "\(out)/simulator.eval.json")
            print("wrote \(out)/simulator.safetensors and simulator.eval.json (\(String(format: "%.0f", seconds)) s)")
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval", abstract: "Evaluate a simulator checkpoint on a log's leave-one-out splits.",
            discussion: """
                The checkpoint may be a RecBole state_dict saved as safetensors without the engine's \
                metadata: the architecture and sizes then come from its tensor names and shapes, and its \
                rows are the log's items in RecBole's order (read the log with --time-order recbole).
                """)

        @OptionGroup var log: LogOptions
        @Option(help: "Simulator checkpoint (.safetensors).") var checkpoint: String
        @Option(help: "Negatives per user of the sampled metrics.") var negatives = 100
        @Option(help: "Seed of the sampled negatives.") var seed: UInt64 = 2020

        func run() throws {
            let log = try self.log.read()
            let sim = try Simulator.load(checkpoint, itemIDs: log.catalog.rawIDs)
            var s = SimulatorTraining()
            s.epochs = 1
            s.sampledNegatives = negatives
            s.seed = seed
            let trainer = try SimulatorTrainer(log: log, model: sim.model, settings: s)
            print("\(sim.model.architecture), \(sim.model.itemVocabulary - 1) items")
            print("validation: \(trainer.evaluate(split: .validation).summary)")
            print("test:       \(trainer.evaluate(split: .test).summary)")
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a RecBole state_dict (safetensors) into a simulator checkpoint every command reads.",
            discussion: """
                Reads the architecture and sizes from the tensor names and shapes, takes the item ids \
                from the log it was trained on (RecBole's order: the log's first appearances, read with \
                --time-order recbole), checks that they fit, and writes OUT with the engine's metadata. \
                For a RecBole .pth, run tools/recbole_to_safetensors.py first.
                """)

        @OptionGroup var log: LogOptions
        @Option(help: "RecBole state_dict as safetensors.") var checkpoint: String
        @Option(help: "Simulator checkpoint to write.") var out: String

        func run() throws {
            let log = try self.log.read()
            let sim = try Simulator.load(checkpoint, itemIDs: log.catalog.rawIDs)
            try sim.save(to: out, extra: ["imported_from": checkpoint])
            print("wrote \(out): \(sim.model.architecture), \(sim.model.itemVocabulary - 1) items, "
                  + "\(sim.model.store.count) parameters")
        }
    }
}

extension SimulatorTraining.Loss: ExpressibleByArgument {}

func jsonObject<T: Encodable>(_ value: T) throws -> Any {
    try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value))
}

extension SimulatorCommand.Train: DataParallelCommand {}
