import CProRLAPI
import Foundation
import ProRL

// The C embedding API (prorl.h), implemented over the Swift engine. Every
// entry point validates its arguments before the engine sees them, turns
// every error into a status and a thread-local message, and never lets a
// Swift error or trap cross into C.

// MARK: Errors

/// A failure of a call's arguments, of the engine's own kinds.
struct APIError: Error {
    let kind: DataError.Kind
    let message: String
    init(_ kind: DataError.Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// The C status of each kind of error: one status per kind, and back.
func status(of kind: DataError.Kind) -> prorl_status {
    switch kind {
    case .invalidArgument: return PRORL_ERR_INVALID_ARGUMENT
    case .notFound: return PRORL_ERR_NOT_FOUND
    case .badFile: return PRORL_ERR_BAD_FILE
    case .incompatible: return PRORL_ERR_INCOMPATIBLE
    case .unknownItem: return PRORL_ERR_UNKNOWN_ITEM
    case .bufferTooSmall: return PRORL_ERR_BUFFER_TOO_SMALL
    case .busy: return PRORL_ERR_BUSY
    case .diverged: return PRORL_ERR_DIVERGED
    case .distributed: return PRORL_ERR_DISTRIBUTED
    }
}

// MARK: Versioned structs

/// The `struct_size` (the first field) of a caller's struct, checked by the
/// one rule of prorl.h: it must be one of the sizes the struct has had
/// (`sizes`; each version appends fields).
func structSize<T>(_ p: UnsafePointer<T>, sizes: [Int], _ what: String) throws -> Int {
    let size = UnsafeRawPointer(p).load(as: Int.self)
    guard sizes.contains(size) else {
        throw APIError(.invalidArgument, "\(what).struct_size \(size): expected one of \(sizes) (sizeof as compiled; "
                       + "the *_default_params() functions set it)")
    }
    return size
}

/// A caller's struct read by that rule: the fields its size covers are
/// copied over `defaults`, the rest keep them.
func versioned<T>(_ p: UnsafePointer<T>, sizes: [Int], defaults: T, _ what: String) throws -> T {
    let size = try structSize(p, sizes: sizes, what)
    var out = defaults
    withUnsafeMutableBytes(of: &out) { dst in dst.copyMemory(from: UnsafeRawBufferPointer(start: p, count: size)) }
    return out
}

/// Writes `value` into a caller's out-struct of `size` bytes (checked by
/// ``structSize(_:sizes:_:)``): as much of it as that covers.
func writeVersioned<T>(_ value: T, to p: UnsafeMutablePointer<T>, size: Int) {
    var v = value
    withUnsafeBytes(of: &v) { src in UnsafeMutableRawPointer(p).copyMemory(from: src.baseAddress!, byteCount: size) }
    UnsafeMutableRawPointer(p).storeBytes(of: size, as: Int.self)
}

/// Runs `body`; errors become a status and the thread's last-error message.
func guarded(_ body: () throws -> Void) -> prorl_status {
    do {
        try body()
        prorl_set_last_error("")
        return PRORL_OK
    } catch let e as APIError {
        prorl_set_last_error(e.message)
        return status(of: e.kind)
    } catch let e as DataError {
        prorl_set_last_error(e.description)
        return status(of: e.kind)
    } catch {
        prorl_set_last_error("\(error)")
        return PRORL_ERR_INTERNAL
    }
}

func string(_ p: UnsafePointer<CChar>?, _ what: String) throws -> String {
    guard let p else { throw APIError(.invalidArgument, "\(what) is NULL") }
    return String(cString: p)
}

func existing(_ path: String, _ what: String) throws -> String {
    guard FileManager.default.fileExists(atPath: path) else { throw APIError(.notFound, "\(what) \(path): no such file") }
    return path
}

func checked<T>(_ handle: OpaquePointer?, _ what: String, as: T.Type) throws -> T where T: AnyObject {
    guard let handle else { throw APIError(.invalidArgument, "\(what) is NULL") }
    return Unmanaged<T>.fromOpaque(UnsafeRawPointer(handle)).takeUnretainedValue()
}

func threadCount(_ params: UnsafePointer<prorl_model_params>?) throws -> Int {
    guard let params else { return 0 }
    var defaults = prorl_model_params()
    capiModelDefaultParams(&defaults)
    let p = try versioned(params, sizes: [MemoryLayout<prorl_model_params>.size], defaults: defaults, "params")
    return try threadCount(p.n_threads)
}

// MARK: Model

/// A loaded policy, simulator and catalogue, with C copies of every item's
/// id and title (owned here, freed with the model).
final class Model {
    let policy: Policy
    let simulator: Simulator
    let catalog: ItemCatalog
    var threads: Int
    private let ids: [UnsafeMutablePointer<CChar>]
    private let titles: [UnsafeMutablePointer<CChar>]
    private var decoder: (prompts: Int, rows: Int, length: Int, steps: Int, decoder: T5Decoder)? = nil

    init(policyPath: String, simulatorPath: String, catalogPath: String?, threads: Int) throws {
        let policy: Policy, simulator: Simulator
        do { policy = try Policy.load(try existing(policyPath, "policy")) } catch let e as DataError {
            throw APIError(.badFile, e.description)
        }
        do { simulator = try Simulator.load(try existing(simulatorPath, "simulator")) } catch let e as DataError {
            throw APIError(.badFile, e.description)
        }
        var catalog = ItemCatalog()
        if let catalogPath {
            catalog = try ItemCatalog.read(try existing(catalogPath, "catalogue"))
            guard catalog.rawIDs == policy.itemIDs else {
                throw APIError(.incompatible, "catalogue \(catalogPath) and policy \(policyPath) name different items")
            }
        } else {
            for id in policy.itemIDs.dropFirst() { catalog.add(id) }
        }
        guard simulator.rows(for: catalog).dropFirst().contains(where: { $0 != nil }) else {
            throw APIError(.incompatible, "simulator \(simulatorPath) knows none of the policy's items")
        }
        self.policy = policy
        self.simulator = simulator
        self.catalog = catalog
        self.threads = threads
        ids = catalog.rawIDs.map { strdup($0)! }
        titles = (0..<catalog.vocabularySize).map { strdup(catalog.displayName(Int32($0)))! }
    }

    deinit {
        for p in ids + titles { free(p) }
    }

    func dense(_ p: UnsafePointer<CChar>?, _ what: String) throws -> Int32 {
        let raw = try string(p, what)
        guard let d = catalog.dense(raw) else { throw APIError(.unknownItem, "\(what): unknown item id '\(raw)'") }
        return d
    }

    /// Longest history or path a call takes (size_t values past Int.max
    /// arrive negative; both are refused before anything is allocated).
    static let maxItems = 4096

    func items(_ list: UnsafePointer<UnsafePointer<CChar>?>?, _ n: Int, _ what: String) throws -> [Int32] {
        guard (0...Model.maxItems).contains(n) else {
            throw APIError(.invalidArgument, "n_\(what) \(UInt(bitPattern: n)): at most \(Model.maxItems) items")
        }
        guard n == 0 || list != nil else { throw APIError(.invalidArgument, "\(what) is NULL with \(n) items") }
        return try (0..<n).map { try dense(list![$0], "\(what)[\($0)]") }
    }

    func id(_ dense: Int32) -> UnsafePointer<CChar> { UnsafePointer(ids[Int(dense)]) }
    func title(_ dense: Int32) -> UnsafePointer<CChar> { UnsafePointer(titles[Int(dense)]) }

    /// A decoder large enough for the request (kept between calls).
    func decoder(prompts: Int, rows: Int, encoderLength: Int, steps: Int) -> T5Decoder {
        if let d = decoder, d.prompts >= prompts, d.rows >= rows, d.length >= encoderLength, d.steps >= steps { return d.decoder }
        let made = T5Decoder(model: policy.model, maxPrompts: prompts, maxRows: rows, encoderLength: encoderLength, maxSteps: steps)
        decoder = (prompts, rows, encoderLength, steps, made)
        return made
    }
}

/// A kernel thread count from a caller: 0 (one per core) … 1024.
func threadCount(_ n: Int32) throws -> Int {
    guard (0...1024).contains(n) else { throw APIError(.invalidArgument, "n_threads must be in 0...1024, found \(n)") }
    return Int(n)
}

@_cdecl("prorl_version")
public func capiVersion() -> UnsafePointer<CChar> { versionString }

nonisolated(unsafe) private let versionString: UnsafePointer<CChar> = UnsafePointer(strdup(ProRL.version)!)

@_cdecl("prorl_model_default_params")
public func capiModelDefaultParams(_ params: UnsafeMutablePointer<prorl_model_params>?) {
    guard let params else { return }
    params.pointee = prorl_model_params(struct_size: MemoryLayout<prorl_model_params>.size, n_threads: 0)
}

func storeHandle<T: AnyObject>(_ object: T, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = OpaquePointer(Unmanaged.passRetained(object).toOpaque())
}

@_cdecl("prorl_model_load")
public func capiModelLoad(_ policy: UnsafePointer<CChar>?, _ simulator: UnsafePointer<CChar>?, _ catalog: UnsafePointer<CChar>?,
                          _ params: UnsafePointer<prorl_model_params>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> prorl_status {
    guarded {
        guard let out else { throw APIError(.invalidArgument, "out is NULL") }
        out.pointee = nil
        let model = try Model(policyPath: try string(policy, "policy_path"), simulatorPath: try string(simulator, "simulator_path"),
                              catalogPath: catalog.map { String(cString: $0) }, threads: try threadCount(params))
        storeHandle(model, out)
    }
}

@_cdecl("prorl_model_load_run")
public func capiModelLoadRun(_ dir: UnsafePointer<CChar>?, _ params: UnsafePointer<prorl_model_params>?,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> prorl_status {
    guarded {
        guard let out else { throw APIError(.invalidArgument, "out is NULL") }
        out.pointee = nil
        let path = try string(dir, "run_dir")
        _ = try existing(path, "run directory")
        let run = try RLRun.open(path)
        let catalog = "\(run.config.inputs.tasks)/catalog.json"
        let model = try Model(policyPath: run.bestPolicyPath, simulatorPath: run.config.inputs.simulator,
                              catalogPath: FileManager.default.fileExists(atPath: catalog) ? catalog : nil,
                              threads: try threadCount(params))
        storeHandle(model, out)
    }
}

@_cdecl("prorl_model_free")
public func capiModelFree(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<Model>.fromOpaque(UnsafeRawPointer(model)).release()
}

@_cdecl("prorl_model_set_threads")
public func capiModelSetThreads(_ model: OpaquePointer?, _ n: Int32) -> prorl_status {
    guarded {
        let m = try checked(model, "model", as: Model.self)
        m.threads = try threadCount(n)
    }
}

@_cdecl("prorl_model_item_count")
public func capiModelItemCount(_ model: OpaquePointer?, _ count: UnsafeMutablePointer<Int>?) -> prorl_status {
    guarded {
        let m = try checked(model, "model", as: Model.self)
        guard let count else { throw APIError(.invalidArgument, "count is NULL") }
        count.pointee = m.catalog.itemCount
    }
}

@_cdecl("prorl_model_item_id")
public func capiModelItemID(_ model: OpaquePointer?, _ index: Int, _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> prorl_status {
    guarded {
        let m = try checked(model, "model", as: Model.self)
        guard let out else { throw APIError(.invalidArgument, "item_id is NULL") }
        guard index >= 0, index < m.catalog.itemCount else {
            throw APIError(.invalidArgument, "index \(UInt(bitPattern: index)) outside 0..<\(m.catalog.itemCount)")
        }
        out.pointee = m.id(Int32(index + 1))
    }
}

@_cdecl("prorl_model_item_title")
public func capiModelItemTitle(_ model: OpaquePointer?, _ item: UnsafePointer<CChar>?,
                               _ out: UnsafeMutablePointer<UnsafePointer<CChar>?>?) -> prorl_status {
    guarded {
        let m = try checked(model, "model", as: Model.self)
        guard let out else { throw APIError(.invalidArgument, "title is NULL") }
        out.pointee = m.title(try m.dense(item, "item_id"))
    }
}

// MARK: Generating and scoring

@_cdecl("prorl_generate_default_params")
public func capiGenerateDefaultParams(_ params: UnsafeMutablePointer<prorl_generate_params>?) {
    guard let params else { return }
    params.pointee = prorl_generate_params(struct_size: MemoryLayout<prorl_generate_params>.size, decoding: beamDecoding,
                                           n_paths: 3, max_items: 10, constrained: 1, temperature: 1, top_k: 0, top_p: 1,
                                           seed: 7, no_repeats: 1)
}

/// prorl_decoding values as the struct's int32_t field holds them.
let beamDecoding = Int32(PRORL_DECODE_BEAM.rawValue), sampleDecoding = Int32(PRORL_DECODE_SAMPLE.rawValue)

@_cdecl("prorl_generate")
public func capiGenerate(_ model: OpaquePointer?, _ history: UnsafePointer<UnsafePointer<CChar>?>?, _ nHistory: Int,
                         _ target: UnsafePointer<CChar>?, _ params: UnsafePointer<prorl_generate_params>?,
                         _ items: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ itemsCapacity: Int,
                         _ pathLengths: UnsafeMutablePointer<Int>?, _ pathScores: UnsafeMutablePointer<Float>?,
                         _ nPaths: UnsafeMutablePointer<Int>?, _ itemsNeeded: UnsafeMutablePointer<Int>?) -> prorl_status {
    guarded {
        let m = try checked(model, "model", as: Model.self)
        var p = prorl_generate_params()
        capiGenerateDefaultParams(&p)
        if let params {
            // the struct before `no_repeats` (ABI 1.0) and now; 1.0's callers keep repeats allowed
            let before = MemoryLayout<prorl_generate_params>.offset(of: \.no_repeats)!
            let sizes = [before, MemoryLayout<prorl_generate_params>.size]
            if try structSize(params, sizes: sizes, "params") == before { p.no_repeats = 0 }
            p = try versioned(params, sizes: sizes, defaults: p, "params")
        }
        guard p.n_paths >= 1, p.n_paths <= 64 else { throw APIError(.invalidArgument, "n_paths must be in 1...64, found \(p.n_paths)") }
        guard p.max_items >= 1, p.max_items <= 50 else { throw APIError(.invalidArgument, "max_items must be in 1...50, found \(p.max_items)") }
        guard p.decoding == beamDecoding || p.decoding == sampleDecoding else {
            throw APIError(.invalidArgument, "decoding must be PRORL_DECODE_BEAM or PRORL_DECODE_SAMPLE")
        }
        guard p.temperature > 0, p.temperature.isFinite, p.top_k >= 0, p.top_p > 0, p.top_p <= 1 else {
            throw APIError(.invalidArgument, "temperature > 0, top_k ≥ 0 and top_p in (0, 1] expected")
        }
        guard p.no_repeats == 0 || p.constrained != 0 else {
            throw APIError(.invalidArgument, "no_repeats needs constrained (an unconstrained path may name no item to compare)")
        }
        guard let pathLengths, let nPaths else { throw APIError(.invalidArgument, "path_lengths and n_paths must not be NULL") }
        guard nHistory >= 1 else { throw APIError(.invalidArgument, "the history is empty") }
        let hist = try m.items(history, nHistory, "history")
        let tgt = try m.dense(target, "target")
        Kernels.threads = m.threads
        var options = DecodingOptions()
        options.maxItems = Int(p.max_items)
        options.constrained = p.constrained != 0
        options.temperature = p.temperature
        options.topK = Int(p.top_k)
        options.topP = p.top_p
        options.seed = p.seed
        options.allowRepeats = p.no_repeats == 0
        let k = Int(p.n_paths)
        let encoder = m.policy.encoderTokens(history: hist, target: tgt)
        let decoder = m.decoder(prompts: 1, rows: k, encoderLength: encoder.count, steps: m.policy.decoderLength(maxItems: options.maxItems))
        let decoding = PathDecoding(decoder: decoder, tokenizer: m.policy.tokenizer)
        let decoded = p.decoding == beamDecoding
            ? decoding.beamSearch(prompts: [encoder], beams: k, options: options)[0]
            : decoding.sample(prompts: [encoder], samplesPerPrompt: k, options: options)
        let paths = decoded.map { Rollout(tokens: $0.tokens, tokenizer: m.policy.tokenizer, maxItems: options.maxItems).items }
        let needed = paths.reduce(0) { $0 + $1.count }
        nPaths.pointee = paths.count
        itemsNeeded?.pointee = needed
        for (i, path) in paths.enumerated() {
            pathLengths[i] = path.count
            pathScores?[i] = p.decoding == beamDecoding ? decoded[i].score : decoded[i].logProb
        }
        guard needed <= itemsCapacity else {
            throw APIError(.bufferTooSmall, "items_capacity \(itemsCapacity): the paths need \(needed) items")
        }
        guard needed == 0 || items != nil else { throw APIError(.invalidArgument, "items is NULL") }
        var n = 0
        for path in paths {
            for item in path {
                items![n] = item.map { m.id($0) }  // NULL for an invalid item (unconstrained decoding only)
                n += 1
            }
        }
    }
}

@_cdecl("prorl_score_path")
public func capiScorePath(_ model: OpaquePointer?, _ history: UnsafePointer<UnsafePointer<CChar>?>?, _ nHistory: Int,
                          _ target: UnsafePointer<CChar>?, _ path: UnsafePointer<UnsafePointer<CChar>?>?, _ nPath: Int,
                          _ steps: UnsafeMutablePointer<prorl_step_score>?, _ stepsCapacity: Int,
                          _ total: UnsafeMutablePointer<prorl_path_score>?) -> prorl_status {
    guarded {
        let m = try checked(model, "model", as: Model.self)
        guard nHistory >= 1 else { throw APIError(.invalidArgument, "the history is empty") }
        guard nPath >= 0, nPath <= m.simulator.model.maxLength - 1 else {
            throw APIError(.invalidArgument, "a path of \(nPath) items is longer than the simulator reads")
        }
        guard steps == nil || stepsCapacity >= nPath + 1 else {
            throw APIError(.bufferTooSmall, "steps_capacity \(stepsCapacity): a path of \(nPath) items needs \(nPath + 1)")
        }
        let hist = try m.items(history, nHistory, "history"), items = try m.items(path, nPath, "path")
        let tgt = try m.dense(target, "target")
        let rows = m.simulator.rows(for: m.catalog)
        for (what, list) in [("history", hist), ("path", items), ("target", [tgt])] {
            for d in list where rows[Int(d)] == nil {
                throw APIError(.unknownItem, "\(what): the simulator does not know item '\(m.catalog.raw(d))'")
            }
        }
        Kernels.threads = m.threads
        let e = try PathExplanation.explain(path: items, history: hist, target: tgt, policy: m.policy, simulator: m.simulator,
                                            catalog: m.catalog)
        if let steps {
            for (i, s) in e.steps.enumerated() {
                steps[i] = prorl_step_score(ctr: s.ctr ?? .nan, log_p_target: s.logProbTarget, rank_target: Int64(s.rankTarget),
                                            policy_log_prob: s.policyLogProb ?? .nan)
            }
        }
        total?.pointee = prorl_path_score(ioi: e.ioi, ior: Double(e.ior), mean_ctr: e.meanCTR)
    }
}

// MARK: Training

final class Trainer {
    let session: RLSession
    var threads: Int
    var progress: prorl_progress_fn? = nil
    var progressData: UnsafeMutableRawPointer? = nil
    init(session: RLSession, threads: Int) {
        self.session = session
        self.threads = threads
    }
}

// MARK: Log

/// The process-wide log callback (prorl_set_log_callback), behind a lock.
private let logLock = NSLock()
nonisolated(unsafe) private var logCallback: (fn: prorl_log_fn, data: UnsafeMutableRawPointer?)? = nil

@_cdecl("prorl_set_log_callback")
public func capiSetLogCallback(_ fn: prorl_log_fn?, _ data: UnsafeMutableRawPointer?) {
    logLock.lock()
    logCallback = fn.map { ($0, data) }
    logLock.unlock()
}

/// Sends one line to the log callback, if there is one.
func log(_ level: prorl_log_level, _ message: String) {
    logLock.lock()
    let target = logCallback
    logLock.unlock()
    guard let target else { return }
    message.withCString { target.fn(Int32(level.rawValue), $0, target.data) }
}

@_cdecl("prorl_trainer_open")
public func capiTrainerOpen(_ dir: UnsafePointer<CChar>?, _ params: UnsafePointer<prorl_model_params>?,
                            _ out: UnsafeMutablePointer<OpaquePointer?>?) -> prorl_status {
    guarded {
        guard let out else { throw APIError(.invalidArgument, "out is NULL") }
        out.pointee = nil
        let path = try string(dir, "run_dir")
        _ = try existing("\(path)/config.json", "run config")
        let threads = try threadCount(params)
        Kernels.threads = threads
        let session = try RLSession(run: try RLRun.open(path))
        storeHandle(Trainer(session: session, threads: threads), out)
    }
}

@_cdecl("prorl_trainer_step")
public func capiTrainerStep(_ trainer: OpaquePointer?, _ n: Int32, _ last: UnsafeMutablePointer<prorl_train_stats>?) -> prorl_status {
    var stopped = false
    let status = guarded {
        let t = try checked(trainer, "trainer", as: Trainer.self)
        guard n >= 0 else { throw APIError(.invalidArgument, "n_steps must be ≥ 0, found \(n)") }
        // checked before any step runs
        let lastSize = try last.map { try structSize($0, sizes: [MemoryLayout<prorl_train_stats>.size], "last") }
        Kernels.threads = t.threads
        try t.session.extend(by: Int(n))
        for _ in 0..<n {
            let p = try t.session.step()
            let l = p.log
            var stats = prorl_train_stats(struct_size: MemoryLayout<prorl_train_stats>.size, step: Int64(l.step),
                                          length: l["length"] ?? .nan, path_reward: l["path_reward"] ?? .nan,
                                          path_ioi: l["path_ioi"] ?? .nan, path_ctr: l["path_ctr"] ?? .nan,
                                          kl: l["kl"] ?? .nan, seconds: l["seconds"] ?? .nan)
            if let v = p.validation {
                log(PRORL_LOG_INFO, String(format: "%@: step %d validation IoI %.4f IoR %.1f CTR %.4f%@", t.session.run.directory,
                                           l.step, v.reference.ioi, v.reference.ior, v.reference.ctr, p.improved ? " (best so far)" : ""))
            }
            if let last, let lastSize { writeVersioned(stats, to: last, size: lastSize) }
            if let fn = t.progress, fn(&stats, t.progressData) != 0 {
                try t.session.save()
                log(PRORL_LOG_INFO, "\(t.session.run.directory): stopped by the progress callback after step \(l.step); checkpoint written")
                stopped = true
                break
            }
        }
    }
    return status == PRORL_OK && stopped ? PRORL_STOPPED : status
}

@_cdecl("prorl_trainer_set_progress")
public func capiTrainerSetProgress(_ trainer: OpaquePointer?, _ fn: prorl_progress_fn?, _ data: UnsafeMutableRawPointer?)
    -> prorl_status {
    guarded {
        let t = try checked(trainer, "trainer", as: Trainer.self)
        t.progress = fn
        t.progressData = data
    }
}

@_cdecl("prorl_trainer_progress")
public func capiTrainerProgress(_ trainer: OpaquePointer?, _ done: UnsafeMutablePointer<Int64>?,
                                _ total: UnsafeMutablePointer<Int64>?) -> prorl_status {
    guarded {
        let t = try checked(trainer, "trainer", as: Trainer.self)
        done?.pointee = Int64(t.session.trainer.step)
        total?.pointee = Int64(t.session.run.config.settings.steps)
    }
}

@_cdecl("prorl_trainer_save")
public func capiTrainerSave(_ trainer: OpaquePointer?) -> prorl_status {
    guarded {
        let t = try checked(trainer, "trainer", as: Trainer.self)
        try t.session.save()
    }
}

@_cdecl("prorl_trainer_free")
public func capiTrainerFree(_ trainer: OpaquePointer?) {
    guard let trainer else { return }
    Unmanaged<Trainer>.fromOpaque(UnsafeRawPointer(trainer)).release()
}
