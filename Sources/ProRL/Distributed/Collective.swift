import Foundation

/// The processes of a data-parallel run and what they do together: this
/// process is rank `rank` of `size`; every rank calls each operation in the
/// same order (a collective), and every rank gets the same result.
///
/// ``SingleProcess`` (size 1, every operation a no-op) is what a run has
/// unless it was started by an MPI launcher; ``MPICollective`` runs the
/// operations over MPI. Failures throw (``DataError/Kind/distributed``).
public protocol Collective: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Sums `count` floats at `values` over all ranks, in place.
    func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws
    /// Sums `count` doubles at `values` over all ranks, in place.
    func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws
    /// Rank `root`'s `count` bytes at `bytes`, to every rank.
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) throws
    /// Every rank's bytes, in rank order.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    func barrier() throws
    /// Ends every rank of the job after an error on this one (so no rank is
    /// left waiting in a collective); a no-op for a single process.
    func abort(code: Int32)
}

extension Collective {
    /// Whether this rank writes the run's files and prints (rank 0).
    public var isWriter: Bool { rank == 0 }

    /// The contiguous share of `0..<count` this rank works on: ranks take
    /// consecutive blocks in rank order, sizes differing by at most one.
    public func shard(_ count: Int) -> Range<Int> { Self.shard(count, rank: rank, size: size) }

    public static func shard(_ count: Int, rank: Int, size: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// This rank's dropout stream for training step `step`: the step itself
    /// in one process, else one stream per (step, rank), so no two ranks
    /// draw the same masks.
    public func dropoutStep(_ step: UInt64) -> UInt64 {
        size == 1 ? step : step &* UInt64(size) &+ UInt64(rank)
    }

    /// Sums a tensor over all ranks, in place (one call for the whole buffer).
    public func allReduceSum(_ t: Tensor) throws { try allReduceSum(t.base, count: t.count) }

    /// Sums doubles over all ranks.
    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try allReduceSum($0.baseAddress!, count: $0.count) }
        return v
    }

    /// Every rank's values of a plain type (numbers, Bool), in rank order.
    public func allGather<T: BitwiseCopyable>(_ values: [T]) throws -> [[T]] {
        let bytes = values.withUnsafeBytes { Array($0) }
        return try allGather(bytes).map { block in
            block.withUnsafeBytes { raw in Array(raw.bindMemory(to: T.self)) }
        }
    }

    /// Rank 0's value of a flag, on every rank (a decision only rank 0 can make,
    /// e.g. that the time limit has passed).
    public func agree(_ flag: Bool) throws -> Bool {
        var byte: UInt8 = flag ? 1 : 0
        try broadcast(&byte, count: 1, root: 0)
        return byte != 0
    }

    /// Throws unless every rank holds the same `values` (e.g. parameters,
    /// which must not drift apart between ranks); compares a 64-bit hash.
    public func checkIdentical(_ values: Tensor, what: String) throws {
        guard size > 1 else { return }
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        let words = UnsafeRawPointer(values.base).bindMemory(to: UInt32.self, capacity: values.count)
        for i in 0..<values.count { h = (h ^ UInt64(words[i])) &* 0x0000_0100_0000_01B3 }
        let all = try allGather([h])
        guard all.allSatisfy({ $0 == all[0] }) else {
            throw DataError(file: "MPI", "\(what) differ between ranks (hashes \(all.map { String($0[0], radix: 16) })): "
                            + "the ranks diverged; stopped", kind: .distributed)
        }
    }
}

/// One process: rank 0 of 1; every collective leaves its input as it is.
public final class SingleProcess: Collective, Sendable {
    public static let shared = SingleProcess()
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {}
    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) throws {}
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func barrier() throws {}
    public func abort(code: Int32) {}
}

/// The collective of this process: ``SingleProcess`` unless ``start()``
/// found an MPI launcher.
public enum Distributed {
    nonisolated(unsafe) public private(set) static var world: any Collective = SingleProcess.shared

    /// Environment variables an MPI launcher sets in every rank (Open MPI,
    /// PMIx, and the PMI of MPICH and Slurm), with the world size.
    static func launcherSize(_ env: [String: String]) -> (variable: String, size: Int)? {
        for name in ["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"] {
            if let v = env[name], let n = Int(v) { return (name, n) }
        }
        return nil
    }

    /// Joins the MPI job this process was started in, if any: under a
    /// launcher that started more than one rank, opens the MPI plugin
    /// (``MPICollective``) and makes it ``world``. Without a launcher, or
    /// with `PRORL_DISTRIBUTED=off`, the process stays a single one.
    public static func start(environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard env["PRORL_DISTRIBUTED"] != "off", let (variable, size) = launcherSize(env), size > 1 else { return }
        world = try MPICollective(launchedWith: "\(variable)=\(size)", environment: env)
    }
}
