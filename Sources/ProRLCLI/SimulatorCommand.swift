import ArgumentParser
import Foundation
import ProRL

/// `prorl simulator`: train and evaluate the SASRec user simulator.
struct SimulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulator",
        abstract: "Train and evaluate the SASRec user simulator on an interaction log.",
        subcommands: [Train.self, Evaluate.self]
    )

    struct ModelOptions: ParsableArguments {
        @Option(help: "Hidden width.") var hidden = 64
        @Option(help: "Attention heads.") var heads = 2
        @Option(help: "Feed-forward width.") var inner = 256
        @Option(help: "Transformer layers.") var layers = 2
        @Option(help: "Longest sequence the model reads.") var maxLength = 50
        @Option(help: "Dropout on hidden states and attention probabilities.") var dropout: Float = 0.5

        func config(items: Int) -> SASRecConfig {
            var c = SASRecConfig(itemVocabulary: items)
            c.hidden = hidden
            c.heads = heads
            c.inner = inner
            c.layers = layers
            c.maxLength = maxLength
            c.hiddenDropout = dropout
            c.attentionDropout = dropout
            return c
        }
    }

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train SASRec with leave-one-out splits and early stopping; save checkpoint and metrics.",
            discussion: """
                Writes OUT/simulator.safetensors (RecBole tensor names; config and item ids in the header) \
                and OUT/simulator.eval.json (validation and test HR/NDCG/MRR@10, full ranking and \
                100 sampled negatives).
                """)

        @OptionGroup var log: LogOptions
        @OptionGroup var model: ModelOptions
        @Option(help: "Output directory.") var out: String
        @Option(help: "Loss positions: 'all' (every position of a window) or 'last' (RecBole's prefix samples).")
        var loss: SimulatorTraining.Loss = .allPositions
        @Option(help: "Sequences per batch.") var batchSize = 128
        @Option(help: "Largest number of epochs.") var epochs = 200
        @Option(help: "Adam learning rate.") var lr: Float = 1e-3
        @Option(help: "Epochs without a better validation NDCG@10 before stopping.") var patience = 10
        @Option(help: "Seed for initialisation, shuffling and dropout.") var seed: UInt64 = 2020
        @Option(help: "Kernel threads (0: one per core).") var threads = 0

        func validate() throws {
            guard batchSize >= 1 else { throw ValidationError("--batch-size: expected ≥ 1, found \(batchSize)") }
            guard epochs >= 1 else { throw ValidationError("--epochs: expected ≥ 1, found \(epochs)") }
            guard lr > 0 else { throw ValidationError("--lr: expected > 0, found \(lr)") }
        }

        func run() throws {
            Kernels.threads = threads
            let log = try self.log.read()
            var s = SimulatorTraining()
            s.loss = loss
            s.batchSize = batchSize
            s.epochs = epochs
            s.learningRate = lr
            s.patience = patience
            s.seed = seed
            let trainer = try SimulatorTrainer(log: log, config: model.config(items: log.catalog.vocabularySize), settings: s)
            print("simulator: \(log.users.count) users, \(log.catalog.itemCount) items, \(log.eventCount) events; "
                  + "loss \(loss.rawValue), batch \(batchSize), \(Kernels.threads) threads")
            let t0 = Date()
            let result = trainer.run { e in
                print(String(format: "epoch %3d  loss %.4f  valid ", e.epoch, e.loss) + e.validation.summary
                      + String(format: "  %.1fs%@", e.seconds, e.improved ? "  *" : ""))
            }
            let seconds = Date().timeIntervalSince(t0)
            print("best validation: \(result.validation.summary)")
            print("test:            \(result.test.summary)")
            try Simulator(model: trainer.model, itemIDs: log.catalog.rawIDs).save(to: "\(out)/simulator.safetensors")
            let report: [String: Any] = [
                "validation": try jsonObject(result.validation), "test": try jsonObject(result.test),
                "epochs": result.epochs, "seconds": seconds, "loss": loss.rawValue, "batch_size": batchSize,
                "users": log.users.count, "items": log.catalog.itemCount,
            ]
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys]),
                                 to: "\(out)/simulator.eval.json")
            print("wrote \(out)/simulator.safetensors and simulator.eval.json (\(String(format: "%.0f", seconds)) s)")
        }
    }

    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval", abstract: "Evaluate a simulator checkpoint on a log's leave-one-out test items.")

        @OptionGroup var log: LogOptions
        @Option(help: "Simulator checkpoint (.safetensors).") var checkpoint: String

        func run() throws {
            let log = try self.log.read()
            let sim = try Simulator.load(checkpoint)
            guard sim.itemIDs == log.catalog.rawIDs else {
                throw ValidationError("\(checkpoint): its items differ from the log's catalogue (trained on another log?)")
            }
            var s = SimulatorTraining()
            s.epochs = 1
            let trainer = try SimulatorTrainer(log: log, config: sim.model.config, settings: s)
            trainer.model.store.copyValues(from: sim.model.store)
            print("validation: \(trainer.evaluate(split: .validation).summary)")
            print("test:       \(trainer.evaluate(split: .test).summary)")
        }
    }
}

extension SimulatorTraining.Loss: ExpressibleByArgument {}

func jsonObject<T: Encodable>(_ value: T) throws -> Any {
    try JSONSerialization.jsonObject(with: try JSONEncoder().encode(value))
}
