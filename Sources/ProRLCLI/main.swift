import ArgumentParser
import Foundation
import ProRL

/// `prorl`: the engine's command line. Public so tests can drive it.
public struct ProRLCommand: ParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "prorl",
        abstract: "Proactive recommendation with rectified policy gradients (ProRL), on CPU.",
        version: ProRL.version,
        subcommands: [Info.self, DataCommand.self, SimulatorCommand.self, PretrainCommand.self, TrainCommand.self, EvalCommand.self, GenerateCommand.self, ReportCommand.self, DemoCommand.self, BenchCommand.self]
    )
}

/// `prorl info`: what this build runs on.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the engine version, threads and SIMD level.")

    func run() throws {
        print("prorl \(ProRL.version)")
        print("kernels: OpenMP \(Kernels.openMP ? "on" : "off"), \(Kernels.threads) threads, SIMD \(Kernels.simdName)")
    }
}



ProRLCommand.main()
