import ArgumentParser
import Foundation
import ProRL
import ProRLCLI
import ProRLTestSupport
import Testing

@Suite("The prorl command: argument errors, resume, an end-to-end run")
struct CommandTests {
    /// The one-line message a bad command line gets.
    static func message(_ arguments: [String]) -> String? {
        do {
            var command = try ProRLCommand.parseAsRoot(arguments)
            try command.run()
            return nil
        } catch {
            return ProRLCommand.message(for: error)
        }
    }

    @Test("bad flags, values and combinations fail with one line naming them")
    func argumentErrors() throws {
        let cases: [([String], String)] = [
            (["trian"], "trian"),
            (["train", "--run", "/tmp/x", "--weights", "1,2"], "--weights"),
            (["train", "--run", "/tmp/x", "--algo", "ppo"], "ppo"),
            (["train", "--run", "/tmp/x", "--resume", "--steps", "5"], "--resume"),
            (["train", "--run", "/tmp/x"], "--tasks"),
            (["eval", "--simulator", "s"], "--tasks"),
            (["eval", "--simulator", "s", "--tasks", "t", "--beams", "1,x"], "--beams"),
            (["generate", "--policy", "p", "--simulator", "s", "--target", "1", "--history", "1", "--user", "u"], "--history"),
            (["bench", "warp"], "warp"),
            (["pretrain", "--tasks", "/nonexistent", "--out", "/tmp/x"], "/nonexistent"),
            (["simulator", "train", "--inter", "/nonexistent.inter", "--out", "/tmp/x"], "/nonexistent.inter"),
            (["simulator", "train", "--inter", "/nonexistent.inter", "--out", "/tmp/x", "--architecture", "bert4rec"],
             "--architecture"),
            (["simulator", "train", "--inter", "/nonexistent.inter", "--out", "/tmp/x", "--architecture", "gru4rec",
              "--heads", "4"], "--heads"),
            (["eval", "--simulator", "s", "--tasks", "t", "--evaluator", "gru4rec"], "--evaluator"),
            (["eval", "--simulator", "s", "--tasks", "t", "--threads", "-3"], "--threads"),
            (["bench", "rl", "--threads", "2147483648"], "--threads"),
            (["eval", "--simulator", "s", "--tasks", "t", "--evaluator", "simulator=x"], "--evaluator"),
        ]
        for (arguments, needle) in cases {
            let m = try #require(Self.message(arguments), "\(arguments) should fail")
            #expect(m.contains(needle), "\(arguments): '\(m)' should name \(needle)")
            #expect(!m.contains("\n") || m.hasPrefix("Error") || m.contains("Usage"), "\(arguments): \(m)")
        }
    }

    /// A tiny world on disk: 59 items, a simulator, a pretrained policy, tasks.
    static func tinyInputs(in dir: String) throws -> RLRun.Inputs {
        let sim = try RewardModelTests.simulator("sasrec")
        var catalog = ItemCatalog()
        for i in 1..<60 { catalog.add(String(i)) }
        let policy = try Policy(tokenizer: try ItemTokenizer(perItem: 59), itemIDs: catalog.rawIDs, configure: {
            $0.modelWidth = 32; $0.ffWidth = 64; $0.heads = 2; $0.headWidth = 16
            $0.encoderLayers = 1; $0.decoderLayers = 1; $0.dropout = 0
        }, seed: 5)
        var rng = SplitMix64(seed: 6)
        let tasks = (0..<12).map { _ in
            ProactiveTask(user: nil, history: (0..<5).map { _ in Int32(1 + rng.below(59)) }, path: [Int32(1 + rng.below(59))],
                          target: Int32(1 + rng.below(59)))
        }
        try catalog.write(to: "\(dir)/tasks/catalog.json")
        try TaskFile.write(Array(tasks.prefix(8)), catalog: catalog, to: "\(dir)/tasks/train.jsonl")
        try TaskFile.write(Array(tasks.suffix(4)), catalog: catalog, to: "\(dir)/tasks/validation.jsonl")
        try sim.save(to: "\(dir)/simulator.safetensors")
        try policy.save(to: "\(dir)/sft.safetensors")
        return RLRun.Inputs(tasks: "\(dir)/tasks", simulator: "\(dir)/simulator.safetensors", policy: "\(dir)/sft.safetensors")
    }

    /// The description of the DataError `body` throws (nil: none).
    static func error(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch let e as DataError { return e.description } catch { return "\(error)" }
    }

    /// RL settings for the tiny inputs: 2 prompts × 4 rollouts, paths of ≤ 3 items.
    static func tinySettings(steps: Int, evaluateEvery: Int, checkpointEvery: Int) -> RLSettings {
        var s = RLSettings()
        s.promptsPerStep = 2
        s.rollouts = 4
        s.maxItems = 3
        s.steps = steps
        s.evaluateEvery = evaluateEvery
        s.checkpointEvery = checkpointEvery
        return s
    }

    @Test("a run stopped after a checkpoint resumes to exactly the uninterrupted result")
    func resumeIsExact() throws {
        let dir = TestPaths.temporaryDirectory("prorl-resume")
        let inputs = try Self.tinyInputs(in: dir)
        var s = Self.tinySettings(steps: 4, evaluateEvery: 2, checkpointEvery: 2)
        s.centeringWarmupSteps = 3
        // uninterrupted
        try RLRun.create("\(dir)/whole", config: .init(inputs: inputs, settings: s)).train()
        // two steps, then the process "dies" before step 3's checkpoint
        do {
            let first = try RLSession(run: try RLRun.create("\(dir)/split", config: .init(inputs: inputs, settings: s)))
            _ = try first.step()
            _ = try first.step()
            _ = try first.step()  // not checkpointed: lost
            // while it trains, a second session on the run is refused
            let second = Self.error { _ = try RLSession(run: try RLRun.open("\(dir)/split")) }
            #expect(second?.contains("is being trained by another process") == true, "\(second ?? "no error")")
        }  // the session (and its lock) ends here
        // an existing run directory is refused without --resume
        #expect(throws: DataError.self) { _ = try RLRun.create("\(dir)/split", config: .init(inputs: inputs, settings: s)) }
        do {
            let resumed = try RLSession(run: try RLRun.open("\(dir)/split"))
            #expect(resumed.trainer.step == 2, "resumed at the last checkpoint")
            while !resumed.finished { _ = try resumed.step() }
            try resumed.finish()
        }
        let a = try Policy.load("\(dir)/whole/policy-last.safetensors"), b = try Policy.load("\(dir)/split/policy-last.safetensors")
        #expect(a.model.store.values.flat.toArray() == b.model.store.values.flat.toArray(),
                "the resumed run's weights equal the uninterrupted run's")
        let steps = try Figures.readMetrics("\(dir)/split/metrics.jsonl").compactMap { $0["step"] }
        #expect(steps == [1, 2, 3, 4], "metrics hold each step once: \(steps)")
        // the starting policy is a selection candidate: validated at step 0, once
        let validated = try Figures.readMetrics("\(dir)/split/validation.jsonl").compactMap { $0["step"] }
        #expect(validated == [0, 2, 4], "validation steps: \(validated)")
        #expect(try Figures.readMetrics("\(dir)/whole/metrics.jsonl").map { $0["length"] }
                == Figures.readMetrics("\(dir)/split/metrics.jsonl").map { $0["length"] })
        // the CLI resumes too, and refuses a directory without a run
        #expect(Self.message(["train", "--run", "\(dir)/split", "--resume"]) == nil)
        #expect(Self.message(["train", "--run", "\(dir)/tasks", "--resume"])?.contains("no run") == true)
    }

    @Test("the resumable state is one file: a policy-last from another step is ignored; a state that lies is refused")
    func resumeChecksTheState() throws {
        let dir = TestPaths.temporaryDirectory("prorl-state")
        let inputs = try Self.tinyInputs(in: dir)
        let s = Self.tinySettings(steps: 4, evaluateEvery: 0, checkpointEvery: 1)
        let run = try RLRun.create("\(dir)/run", config: .init(inputs: inputs, settings: s))
        var policyAtStep1 = Data(), weightsAtStep2: [Float] = []
        do {
            let session = try RLSession(run: run)
            _ = try session.step()
            policyAtStep1 = try Data(contentsOf: URL(fileURLWithPath: run.lastPolicyPath))
            _ = try session.step()
            weightsAtStep2 = session.trainer.policy.model.store.values.flat.toArray()
        }
        func resumeError() -> String? { Self.error { _ = try RLSession(run: try RLRun.open("\(dir)/run")) } }
        #expect(resumeError() == nil, "the untouched state resumes")
        // killed between the two writes of step 3 (policy-last written, state not): resume is step 2, whole
        try policyAtStep1.write(to: URL(fileURLWithPath: run.lastPolicyPath))
        let stale = "\(dir)/run/.state.safetensors.tmp-99999"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: stale))
        do {
            let resumed = try RLSession(run: try RLRun.open("\(dir)/run"))
            #expect(resumed.trainer.step == 2)
            #expect(resumed.trainer.policy.model.store.values.flat.toArray() == weightsAtStep2,
                    "resumed weights are the state's (step 2), not policy-last's (step 1)")
        }
        #expect(!FileManager.default.fileExists(atPath: stale), "a killed writer's temporary file is removed on resume")
        let (tensors, meta) = try SafeTensors.read(run.statePath)
        let names = tensors.keys.sorted()
        func writeState(_ change: (inout [String: String]) -> Void, dropAdam: Bool = false, drop: String? = nil,
                        poison: String? = nil) throws {
            var m = meta
            change(&m)
            let kept = names.filter { (!dropAdam || !$0.hasPrefix("adam.")) && $0 != drop }
            let values = kept.map { name in name == poison ? [Float.nan] + tensors[name]!.values.dropFirst() : tensors[name]!.values }
            try writeTensors(names: kept, shapes: kept.map { tensors[$0]!.shape }, values: values, metadata: m, to: run.statePath)
        }
        let cases: [(String, (inout [String: String]) -> Void, Bool)] = [
            ("step -5 is outside", { $0["step"] = "-5" }, false),
            ("step 4611686018427387904 is outside", { $0["step"] = "4611686018427387904" }, false),
            ("adam_step -1 is outside", { $0["adam_step"] = "-1" }, false),
            ("'centering' does not fit the run", {
                $0["centering"] = $0["centering"]!.replacingOccurrences(of: #""mean":["#, with: #""mean":[1,"#)
            }, false),
            ("adam.m and adam.v are not both there", { _ in }, true),
        ]
        for (needle, change, dropAdam) in cases {
            try writeState(change, dropAdam: dropAdam)
            let e = resumeError()
            #expect(e?.contains(needle) == true, "expected '\(needle)', got \(e ?? "no error")")
        }
        try writeState({ _ in }, poison: "policy")
        #expect(resumeError()?.contains("policy weights are not finite") == true, "\(resumeError() ?? "no error")")
        // a state from before the weights were part of it needs the policy-last of its own step
        try writeState({ _ in }, drop: "policy")
        #expect(resumeError()?.contains("is from step 1, state.safetensors from step 2") == true, "\(resumeError() ?? "no error")")
    }

    @Test("--max-items beyond what the simulator reads is refused with the limit named, by eval and by train")
    func maxItemsBounded() throws {
        let dir = TestPaths.temporaryDirectory("prorl-maxitems")
        let inputs = try Self.tinyInputs(in: dir)  // the simulator reads 24 items
        let e = Self.message(["eval", "--simulator", inputs.simulator, "--tasks", inputs.tasks, "--policy", "p=\(inputs.policy)",
                              "--max-items", "30", "--baselines", "none", "--beams", "1"])
        #expect(e?.contains("at most 23 fit after a history (lower --max-items)") == true, "\(e ?? "no error")")
        var s = RLSettings()
        s.maxItems = 30
        #expect(throws: DataError.self) { _ = try RLRun.create("\(dir)/run", config: .init(inputs: inputs, settings: s)).train() }
        // the run that could not start left nothing behind: the same directory takes a good run
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/run"), "a run that never started is removed again")
        let e2 = Self.message(["train", "--run", "\(dir)/run2", "--tasks", inputs.tasks, "--simulator", inputs.simulator,
                               "--policy", inputs.policy, "--max-items", "30"])
        #expect(e2 != nil && !FileManager.default.fileExists(atPath: "\(dir)/run2"), "\(e2 ?? "no error")")
        let kept = "\(dir)/made-by-user"
        try FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
        #expect(throws: DataError.self) { _ = try RLRun.create(kept, config: .init(inputs: inputs, settings: s)).train() }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: kept)) == [], "a directory the user made stays, empty")
        s.maxItems = 3
        s.steps = 1
        #expect(Self.error { _ = try RLRun.create("\(dir)/run", config: .init(inputs: inputs, settings: s)) } == nil)
    }

    @Test("a diverging run stops with the step named, and every checkpoint on disk stays finite")
    func divergenceStops() throws {
        let dir = TestPaths.temporaryDirectory("prorl-nan")
        let inputs = try Self.tinyInputs(in: dir)
        var s = Self.tinySettings(steps: 6, evaluateEvery: 2, checkpointEvery: 1)
        s.learningRate = 1e30
        s.warmupFraction = 0
        let run = try RLRun.create("\(dir)/run", config: .init(inputs: inputs, settings: s))
        do {
            _ = try run.train()
            Issue.record("a run at lr 1e30 finished")
        } catch let e as DataError {
            #expect(e.message.contains("step ") && e.message.contains("is "), "names the step and the value: \(e)")
        }
        for path in [run.bestPolicyPath, run.lastPolicyPath] where FileManager.default.fileExists(atPath: path) {
            let p = try Policy.load(path)  // loading refuses non-finite weights
            #expect(SafeTensors.firstNonFinite(p.model.store) == nil, "\(path) is finite")
        }
    }

    @Test("eval scores the same paths with every --evaluator: one table each, identical for the same checkpoint")
    func crossEvaluation() throws {
        let dir = TestPaths.temporaryDirectory("prorl-cross")
        let inputs = try Self.tinyInputs(in: dir)
        try RewardModelTests.simulator("gru4rec").save(to: "\(dir)/gru4rec.safetensors")
        let m = Self.message(["eval", "--simulator", inputs.simulator, "--evaluator", "same=\(inputs.simulator)",
                              "--evaluator", "gru=\(dir)/gru4rec.safetensors", "--tasks", inputs.tasks, "--split", "validation",
                              "--policy", "sft=\(inputs.policy)", "--beams", "1,2", "--baselines", "random,greedy",
                              "--out", "\(dir)/eval", "--threads", "1"])
        #expect(m == nil, "eval failed: \(m ?? "")")
        let primary = try ResultsTable.read("\(dir)/eval/results.json")
        let same = try ResultsTable.read("\(dir)/eval/results-same.json")
        let gru = try ResultsTable.read("\(dir)/eval/results-gru.json")
        #expect(primary.evaluator == "simulator" && same.evaluator == "same" && gru.evaluator == "gru")
        #expect(primary.rows.map(\.method) == ["sft", "sft", "random", "random", "greedy"] && gru.rows.map(\.method) == primary.rows.map(\.method))
        #expect(same.rows == primary.rows, "the same checkpoint scores the same paths identically")
        // another architecture scores the same paths differently, but not their shape
        #expect(zip(gru.rows, primary.rows).allSatisfy { $0.top.length == $1.top.length && $0.top.validity == $1.top.validity })
        #expect(zip(gru.rows, primary.rows).contains { $0.top.ioi != $1.top.ioi })
        let text = try String(contentsOfFile: "\(dir)/eval/results-gru.md", encoding: .utf8)
        #expect(text.contains("scored by gru"), "the markdown names its evaluator")
    }

    @Test("generate --tasks writes every task's paths as JSON lines; IoI, IoR and CTR equal prorl eval's, task by task")
    func batchExport() throws {
        let dir = TestPaths.temporaryDirectory("prorl-export")
        let inputs = try Self.tinyInputs(in: dir)
        let m = Self.message(["generate", "--policy", inputs.policy, "--simulator", inputs.simulator, "--tasks", inputs.tasks,
                              "--split", "validation", "--beams", "2", "--max-items", "3", "--out", "\(dir)/paths.jsonl",
                              "--threads", "1"])
        #expect(m == nil, "generate failed: \(m ?? "")")
        let e = Self.message(["eval", "--simulator", inputs.simulator, "--tasks", inputs.tasks, "--split", "validation",
                              "--policy", "sft=\(inputs.policy)", "--beams", "2", "--max-items", "3", "--baselines", "none",
                              "--out", "\(dir)/eval", "--threads", "1"])
        #expect(e == nil, "eval failed: \(e ?? "")")
        let perTask = try #require(try ResultsTable.read("\(dir)/eval/results.json").rows.first?.perTask)
        let lines = try String(contentsOfFile: "\(dir)/paths.jsonl", encoding: .utf8).split(separator: "\n")
        let rows = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(rows.count == 2 * perTask.ioi.count, "two paths per task: \(rows.count) lines for \(perTask.ioi.count) tasks")
        let top = rows.filter { $0["beam"] as? Int == 0 }
        #expect(top.map { $0["task"] as? Int } == Array(0..<perTask.ioi.count).map { Optional($0) })
        // (the same numbers; JSON text keeps 15 significant digits)
        func same(_ key: String, _ want: [Double]) -> Bool {
            top.count == want.count && zip(top, want).allSatisfy { abs(($0[key] as? Double ?? .nan) - $1) <= 1e-12 * max(1, abs($1)) }
        }
        #expect(same("ioi", perTask.ioi), "IoI of the top paths equals eval's: \(top.map { $0["ioi"] ?? "-" }) vs \(perTask.ioi)")
        #expect(same("ior", perTask.ior), "IoR: \(top.map { $0["ior"] ?? "-" }) vs \(perTask.ior)")
        #expect(same("ctr", perTask.ctr), "CTR: \(top.map { $0["ctr"] ?? "-" }) vs \(perTask.ctr)")
        for row in rows {
            let path = row["path"] as? [String] ?? [], steps = row["steps"] as? [[String: Any]] ?? []
            #expect(steps.count == path.count + 1 && (row["titles"] as? [String])?.count == path.count)
            #expect(Set(path).count == path.count, "no repeats by default")
            // the last step's log p(target) minus the first is the path's IoI
            if let first = steps.first?["log_p_target"] as? Double, let last = steps.last?["log_p_target"] as? Double,
               let ioi = row["ioi"] as? Double {
                #expect(abs((last - first) - ioi) < 1e-5)
            }
        }
        #expect(Self.message(["generate", "--policy", inputs.policy, "--simulator", inputs.simulator, "--tasks", inputs.tasks])?
            .contains("give --out FILE") == true)
    }

    @Test("prorl demo --quick runs the whole pipeline and writes the report, tables and figures")
    func demoEndToEnd() throws {
        let out = TestPaths.temporaryDirectory("prorl-demo") + "/run"
        let m = Self.message(["demo", "--quick", "--data", TestPaths.packageRoot + "/Data/synthetic", "--out", out, "--threads", "2"])
        #expect(m == nil, "demo failed: \(m ?? "")")
        let report = try String(contentsOfFile: "\(out)/report.md", encoding: .utf8)
        #expect(report.contains("## Training") && report.contains("| prorl |") && report.contains("reinforce"))
        let table = try ResultsTable.read("\(out)/eval-validation/results.json")
        #expect(Set(table.rows.map(\.method)).isSuperset(of: ["pretrained", "prorl", "reinforce", "random", "popular", "greedy"]))
        #expect(table.rows.allSatisfy { abs($0.top.validity - 1) < 1e-9 && $0.top.truthGain != nil })
        for svg in ["training.svg", "example-path.svg"] {
            let text = try String(contentsOfFile: "\(out)/\(svg)", encoding: .utf8)
            #expect(text.hasPrefix("<svg") && text.contains("polyline"), "\(svg) is a chart")
        }
        // a second demo into the same directory is refused
        #expect(Self.message(["demo", "--quick", "--out", out])?.contains("not empty") == true)
    }
}
