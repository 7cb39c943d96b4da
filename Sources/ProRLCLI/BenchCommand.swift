import ArgumentParser
import Foundation
import ProRL

/// `prorl bench`: the engine's end-to-end benchmark workloads as JSON lines.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run end-to-end benchmark workloads and print one JSON line each.",
        discussion: """
            Workloads: pretrain (policy pretraining step), sample (policy sampling with the KV cache), simulator \
            (a simulator training step, last- and all-position loss, at ML-1M shapes: 3,706 items, batch 256 × 50), \
            rewards (one-pass path rewards), rl (a whole \
            RL step, 8 prompts × 16 rollouts); allreduce (the gradient all-reduce of a data-parallel step, \
            under `mpirun -np N` only; not in the default set). Kernel \
            microbenchmarks: 'make bench-kernels'; both: 'make bench'.
            """)

    @Argument(help: "Workloads to run (default: all).") var workloads: [String] = []
    @Option(help: "Timed repetitions per workload (median reported).") var repetitions = 5
    @Option(help: "Kernel threads (0: one per core; at most 1024).", transform: parseThreads) var threads = 0
    @Option(help: Precision.help)
    var precision = Precision.processDefault
    @Option(help: "Prompts of the sample and rl workloads (default: 32 and 8).") var prompts: Int? = nil
    @Option(help: "Samples per prompt of the sample and rl workloads.") var rollouts = 16
    @Option(help: "Simulator architectures of the simulator and rewards workloads, comma-separated (\(SequenceArchitectures.names.joined(separator: ", "))).")
    var architecture = SequenceArchitectures.standard.name
    @Option(help: "Items of the catalogue of the simulator, rewards and rl workloads (3706: ML-1M, 1682: ML-100K).") var items = 3706
    @Flag(help: "rl: recompute the loss pass's decoder activations instead of taking those sampling recorded.")
    var recompute = false

    var architectures: [String] { architecture.split(separator: ",").map(String.init) }

    static let all = ["pretrain", "sample", "simulator", "rewards", "rl"]
    static let known = all + ["allreduce"]

    func validate() throws {
        for w in workloads where !BenchCommand.known.contains(w) {
            throw ValidationError("unknown workload '\(w)' (known: \(BenchCommand.known.joined(separator: ", ")))")
        }
        let world = Distributed.world
        if workloads.contains("allreduce") != (world.size > 1) || (world.size > 1 && workloads != ["allreduce"]) {
            throw ValidationError(world.size > 1 ? "under mpirun, bench runs the 'allreduce' workload alone"
                                                 : "the allreduce workload runs under mpirun -np N (N ≥ 2)")
        }
        guard repetitions >= 1 else { throw ValidationError("--repetitions: expected ≥ 1, found \(repetitions)") }
        guard (prompts ?? 1) >= 1, rollouts >= 1 else { throw ValidationError("--prompts and --rollouts: expected ≥ 1") }
        guard (2...1_000_000).contains(items) else { throw ValidationError("--items: expected 2...1000000, found \(items)") }
        for a in architectures {
            do { _ = try SequenceArchitectures.named(a) } catch let e as DataError { throw ValidationError("--architecture: \(e.message)") }
        }
    }

    func run() throws {
        Kernels.threads = threads
        Kernels.precision = precision
        for w in workloads.isEmpty ? BenchCommand.all : workloads {
            switch w {
            case "pretrain":
                print(try Workloads.pretrainStep(decoderLengths: Workloads.ml1mDecoderLengths(256), repetitions: repetitions,
                                                 label: "ml-1m path lengths").json)
                print(try Workloads.pretrainStep(repetitions: repetitions, label: "every decoder row 41 tokens").json)
            case "sample":
                print(try Workloads.sampling(prompts: prompts ?? 32, samples: rollouts, repetitions: repetitions).json)
            case "simulator":
                for a in architectures {
                    for loss in [SimulatorTraining.Loss.lastPosition, .allPositions] {
                        print(try Workloads.simulatorTrainStep(architecture: a, loss: loss, items: items,
                                                               repetitions: repetitions).json)
                    }
                }
            case "rewards":
                for a in architectures { print(try Workloads.rewards(architecture: a, items: items, repetitions: repetitions).json) }
            case "rl":
                print(try Workloads.rlStep(prompts: prompts ?? 8, rollouts: rollouts, items: items,
                                                 reuseSamplerActivations: !recompute, repetitions: repetitions).json)
            case "allreduce":
                print(try Workloads.allReduce(collective: Distributed.world, repetitions: max(repetitions, 20)).json)
            default: break
            }
        }
    }
}

/// Under mpirun only for its allreduce workload (validate() says so).
extension BenchCommand: DataParallelCommand {}
