import Foundation

/// The collectives over MPI, through the plugin `libprorl_mpi.so`
/// (Sources/MPIPlugin/prorl_mpi.c, built by `make mpi` with the system's
/// mpicc) opened at run time. The engine never links MPI itself, so it
/// builds and runs where MPI is absent; only a process started by `mpirun`
/// opens the plugin.
///
/// The plugin is looked for in `$PRORL_MPI_PLUGIN`, next to the executable,
/// in `../lib` beside it, then on the library path.
public final class MPICollective: Collective {
    public let rank: Int
    public let size: Int
    /// The MPI library's version line.
    public let library: String
    private let handle: UnsafeMutableRawPointer

    private typealias Init = @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Int32
    private typealias ReduceF32 = @convention(c) (UnsafeMutablePointer<Float>, Int64) -> Int32
    private typealias ReduceF64 = @convention(c) (UnsafeMutablePointer<Double>, Int64) -> Int32
    private typealias Broadcast = @convention(c) (UnsafeMutableRawPointer, Int64, Int32) -> Int32
    private typealias Counts = @convention(c) (Int64, UnsafeMutablePointer<Int64>) -> Int32
    private typealias Gather = @convention(c) (UnsafeRawPointer?, Int64, UnsafeMutableRawPointer?, UnsafePointer<Int64>) -> Int32
    private typealias Barrier = @convention(c) () -> Int32
    private typealias Abort = @convention(c) (Int32) -> Void
    private typealias Text = @convention(c) (UnsafeMutablePointer<CChar>, Int32) -> Void
    private typealias ErrorText = @convention(c) (Int32, UnsafeMutablePointer<CChar>, Int32) -> Void
    private typealias Version = @convention(c) () -> Int32

    private let reduceF32: ReduceF32, reduceF64: ReduceF64, broadcastBytes: Broadcast
    private let counts: Counts, gather: Gather, barrierCall: Barrier, abortCall: Abort, errorText: ErrorText

    /// Where the plugin may be, in the order they are tried.
    static func candidates(_ env: [String: String]) -> [String] {
        if let p = env["PRORL_MPI_PLUGIN"] { return [p] }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .map { URL(fileURLWithPath: $0).deletingLastPathComponent() } ?? exe
        return [own.appendingPathComponent("libprorl_mpi.so").path,
                own.appendingPathComponent("../lib/libprorl_mpi.so").standardized.path,
                "libprorl_mpi.so"]
    }

    /// Opens the plugin and joins the MPI job (`launch` names the launcher
    /// variable that said there is one, for the error messages).
    public init(launchedWith launch: String, environment env: [String: String] = ProcessInfo.processInfo.environment) throws {
        let tried = Self.candidates(env)
        var opened: UnsafeMutableRawPointer? = nil
        var errors: [String] = []
        for path in tried {
            // RTLD_GLOBAL: MPI's own components (Open MPI's plugins) resolve against libmpi
            if let h = dlopen(path, RTLD_NOW | RTLD_GLOBAL) { opened = h; break }
            errors.append(dlerror().map { String(cString: $0) } ?? path)
        }
        guard let handle = opened else {
            throw DataError(file: "MPI", "started by an MPI launcher (\(launch)) but the MPI plugin libprorl_mpi.so did not open "
                            + "(tried \(tried.joined(separator: ", ")): \(errors.last ?? "")); build it with `make mpi`, "
                            + "or point PRORL_MPI_PLUGIN at it", kind: .distributed)
        }
        self.handle = handle
        func symbol<T>(_ name: String, as: T.Type) throws -> T {
            guard let p = dlsym(handle, name) else {
                throw DataError(file: "MPI", "the MPI plugin has no function \(name): rebuild it with `make mpi`", kind: .distributed)
            }
            return unsafeBitCast(p, to: T.self)
        }
        let version = try symbol("prorl_mpi_abi_version", as: Version.self)()
        guard version == 1 else {
            throw DataError(file: "MPI", "the MPI plugin has ABI version \(version), this engine needs 1: rebuild it with `make mpi`",
                            kind: .incompatible)
        }
        reduceF32 = try symbol("prorl_mpi_allreduce_f32", as: ReduceF32.self)
        reduceF64 = try symbol("prorl_mpi_allreduce_f64", as: ReduceF64.self)
        broadcastBytes = try symbol("prorl_mpi_broadcast", as: Broadcast.self)
        counts = try symbol("prorl_mpi_allgather_counts", as: Counts.self)
        gather = try symbol("prorl_mpi_allgather_bytes", as: Gather.self)
        barrierCall = try symbol("prorl_mpi_barrier", as: Barrier.self)
        abortCall = try symbol("prorl_mpi_abort", as: Abort.self)
        errorText = try symbol("prorl_mpi_error_string", as: ErrorText.self)
        var r: Int32 = 0, n: Int32 = 0
        let rc = try symbol("prorl_mpi_init", as: Init.self)(&r, &n)
        rank = Int(r)
        size = Int(n)
        var text = [CChar](repeating: 0, count: 256)
        try symbol("prorl_mpi_library", as: Text.self)(&text, 256)
        library = Self.string(text)
        try check(rc, "MPI_Init")
    }

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)
        errorText(rc, &text, 512)
        throw DataError(file: "MPI", "\(what) failed on rank \(rank) of \(size): \(Self.string(text))", kind: .distributed)
    }

    private static func string(_ c: [CChar]) -> String {
        String(decoding: c.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func allReduceSum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        try check(reduceF32(values, Int64(count)), "MPI_Allreduce")
    }

    public func allReduceSum(_ values: UnsafeMutablePointer<Double>, count: Int) throws {
        try check(reduceF64(values, Int64(count)), "MPI_Allreduce")
    }

    public func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) throws {
        try check(broadcastBytes(bytes, Int64(count), Int32(root)), "MPI_Bcast")
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        var sizes = [Int64](repeating: 0, count: size)
        try check(counts(Int64(bytes.count), &sizes), "MPI_Allgather")
        var all = [UInt8](repeating: 0, count: Int(sizes.reduce(0, +)))
        let rc = bytes.withUnsafeBytes { send in
            all.withUnsafeMutableBytes { gather(send.baseAddress, Int64(bytes.count), $0.baseAddress, sizes) }
        }
        try check(rc, "MPI_Allgatherv")
        var out: [[UInt8]] = [], at = 0
        for n in sizes { out.append(Array(all[at..<(at + Int(n))])); at += Int(n) }
        return out
    }

    public func barrier() throws { try check(barrierCall(), "MPI_Barrier") }

    public func abort(code: Int32) { abortCall(code) }
}
