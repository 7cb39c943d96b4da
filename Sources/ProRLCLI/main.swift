import ArgumentParser
import Foundation
import ProRL

/// `prorl`: the engine's command line. Public so tests can drive it.
public struct ProRLCommand: ParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(
        commandName: "prorl",
        abstract: "Proactive recommendation with rectified policy gradients (ProRL), on CPU.",
        discussion: """
            Data-parallel training: `mpirun -np N prorl train|pretrain|simulator train …` with the same flags \
            (--threads per rank) runs N ranks that share each step's batch; rank 0 prints and writes. It needs \
            the MPI plugin (`make mpi`); see the README.
            """,
        version: ProRL.version,
        subcommands: [Info.self, DataCommand.self, SimulatorCommand.self, PretrainCommand.self, TrainCommand.self, EvalCommand.self, GenerateCommand.self, ReportCommand.self, DemoCommand.self, BenchCommand.self]
    )
}

/// A command that runs data-parallel under `mpirun` (every rank runs it
/// with the same flags; rank 0 prints and writes). Every other command
/// refuses to run in more than one process.
protocol DataParallelCommand {}

/// `prorl info`: what this build runs on.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the engine version, threads and SIMD level.")

    func run() throws {
        print("prorl \(ProRL.version)")
        print("kernels: OpenMP \(Kernels.openMP ? "on" : "off"), \(Kernels.threads) threads, SIMD \(Kernels.simdName), "
              + "products \(Precision.processDefault.rawValue) by default (bf16 \(Kernels.bf16Available ? "available" : "unavailable"))")
        let world = Distributed.world
        if let mpi = world as? MPICollective { print("MPI: rank \(world.rank) of \(world.size), \(mpi.library)") }
    }
}

extension Info: DataParallelCommand {}

/// Parses and runs the command; under an MPI launcher, first joins the job.
/// Ranks other than 0 print nothing (their standard output is discarded);
/// an error on any rank is printed by that rank and ends every rank (no
/// rank is left waiting in a collective), the run's files as their last
/// atomic write left them.
func runCommand() {
    do {
        try Distributed.start()
    } catch {
        ProRLCommand.exit(withError: error)
    }
    let world = Distributed.world
    if world.size > 1 && !world.isWriter {
        let null = open("/dev/null", O_WRONLY)
        if null >= 0 { dup2(null, STDOUT_FILENO); close(null) }
    }
    do {
        try Precision.checkEnvironment()
        var command = try ProRLCommand.parseAsRoot()
        if world.size > 1 && !(command is DataParallelCommand) {
            throw ValidationError("this command runs in one process; under mpirun (\(world.size) ranks) only "
                                  + "'train', 'pretrain' and 'simulator train' run data-parallel")
        }
        try command.run()
    } catch {
        guard world.size > 1 else { ProRLCommand.exit(withError: error) }
        let code = ProRLCommand.exitCode(for: error)
        if code != .success {
            let message = ProRLCommand.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("Error: [rank \(world.rank) of \(world.size)] \(message)\n".utf8))
            world.abort(code: code.rawValue)
        }
        ProRLCommand.exit(withError: error)
    }
}

runCommand()
