import Foundation
import ProRL
import ProRLTestSupport
import Testing

@Suite("RL: rollouts, centering, reward-to-go, advantages")
struct RLTests {
    static func close(_ a: [Double], _ b: [Double], _ what: String) {
        #expect(a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-12 }, "\(what): \(a) vs expected \(b)")
    }

    @Test("reward-to-go sums the future item rewards; an EOS action has 0")
    func rewardToGo() {
        Self.close(Advantages.rewardToGo([1, 2, 3], actions: 4, gamma: 1), [6, 5, 3, 0], "γ = 1 with EOS")
        Self.close(Advantages.rewardToGo([1, 2, 3], actions: 3, gamma: 0.5), [2.75, 3.5, 3], "γ = 0.5 at Lmax")
        Self.close(Advantages.rewardToGo([], actions: 1, gamma: 1), [0], "EOS only")
    }

    @Test("position baselines average the rollouts active at each position, EOS included")
    func positionBaselines() {
        // A: two items then EOS; B: one item then EOS; C: three items, Lmax
        let r: [[Double]] = [[1, 2], [3], [1, 1, 1]]
        let a = Advantages.compute(.prorl, stepRewards: r, actions: [3, 2, 3], group: 3, gamma: 1)
        // G: A [3, 2, 0], B [3, 0], C [3, 2, 1]; b = [3, 4/3, 1/2]
        Self.close(a[0], [0, 2.0 / 3, -0.5], "A")
        Self.close(a[1], [0, -4.0 / 3], "B")
        Self.close(a[2], [0, 2.0 / 3, 0.5], "C")
        // without centering the machinery is the same
        #expect(Advantages.compute(.prorlNoCentering, stepRewards: r, actions: [3, 2, 3], group: 3, gamma: 1) == a)
    }

    @Test("rollouts with equal rewards get zero advantages (position baselines, GRPO)")
    func equalRewardsZeroAdvantage() {
        let r = [[Double]](repeating: [0.5, 0.5], count: 4)
        for algo in [RLAlgorithm.prorl, .prorlNoCentering, .grpo] {
            let a = Advantages.compute(algo, stepRewards: r, actions: [3, 3, 3, 3], group: 4, gamma: 1, grpoScaleByStd: true)
            #expect(a.allSatisfy { $0.allSatisfy { abs($0) < 1e-9 } }, "\(algo.rawValue): \(a)")
        }
        // a path-level baseline does not: later positions see G_t − mean G_0
        let path = Advantages.compute(.prorlNoPSAE, stepRewards: r, actions: [3, 3, 3, 3], group: 4, gamma: 1)
        Self.close(path[0], [0, -0.5, -1], "no-psae")
    }

    @Test("REINFORCE weights every step by the path reward; GRPO and the path-level baseline subtract group means")
    func pathLevelEstimators() {
        let r: [[Double]] = [[1, 2], [3, 1, 1]]
        let reinforce = Advantages.compute(.reinforce, stepRewards: r, actions: [3, 3], group: 2, gamma: 1)
        Self.close(reinforce[0], [3, 3, 3], "reinforce A")
        Self.close(reinforce[1], [5, 5, 5], "reinforce B")
        let grpo = Advantages.compute(.grpo, stepRewards: r, actions: [3, 3], group: 2, gamma: 1)
        Self.close(grpo[0], [-1, -1, -1], "grpo A")
        Self.close(grpo[1], [1, 1, 1], "grpo B")
        let scaled = Advantages.compute(.grpo, stepRewards: r, actions: [3, 3], group: 2, gamma: 1, grpoScaleByStd: true)
        #expect(abs(scaled[0][0] + 1) < 1e-5 && abs(scaled[1][0] - 1) < 1e-5, "grpo / std: \(scaled)")
        // path-level baseline: b = mean return = 4; A_t = G_t − 4
        let noPSAE = Advantages.compute(.prorlNoPSAE, stepRewards: r, actions: [3, 3], group: 2, gamma: 1)
        Self.close(noPSAE[0], [-1, -2, -4], "no-psae A")
        Self.close(noPSAE[1], [1, -2, -3], "no-psae B")
    }

    static func rewards(ctr: [[Double]], ioi: [[Double]], ior: [[Double]], invalid: [[Bool]]? = nil,
                        duplicate: [[Bool]]? = nil) -> StepRewards {
        let none = ctr.map { $0.map { _ in false } }
        return StepRewards(ctr: ctr, ioi: ioi, ior: ior, invalid: invalid ?? none, duplicate: duplicate ?? none,
                           pathIoI: [], pathIoR: [], pathCTR: [])
    }

    @Test("centering: mean and sample std over real steps, floored, frozen after the warm-up")
    func centering() {
        var c = RewardCentering(sigmaFloor: 0.1)
        let batch = Self.rewards(ctr: [[0.2, 0.4], [0.6, 9]], ioi: [[1, 2], [3, 9]], ior: [[5, 5], [5, 9]],
                                 invalid: [[false, false], [false, true]])
        c.observe(batch)
        #expect(c.count == 3)
        #expect(abs(c.mu(.ctr) - 0.4) < 1e-12 && abs(c.sigma(.ctr) - 0.2) < 1e-12, "ctr μ \(c.mu(.ctr)) σ \(c.sigma(.ctr))")
        #expect(abs(c.mu(.ioi) - 2) < 1e-12 && abs(c.sigma(.ioi) - 1) < 1e-12)
        #expect(c.sigma(.ior) == 0.1, "a constant component takes the floor")
        #expect(abs(c.normalise(3, .ioi) - 1) < 1e-12)
        c.frozen = true
        c.observe(Self.rewards(ctr: [[100]], ioi: [[100]], ior: [[100]]))
        #expect(c.count == 3 && abs(c.mu(.ioi) - 2) < 1e-12, "frozen statistics do not move")
        let z = batch.combined(weights: RewardWeights(ctr: 1, ioi: 2, ior: 0), maxItems: 10, centering: c)
        #expect(abs(z[0][1] - (0 / 10 + 2 * 0)) < 1e-12, "ctr 0.4 and ioi 2 are both at the mean")
    }

    @Test("rollout tokens split into items and actions; only an early EOS is an action")
    func rolloutParsing() throws {
        let tok = try ItemTokenizer(semanticIDs: [[], [0, 1], [1, 0], [1, 1]], codebookSize: 2)  // 2 tokens per item
        let eos = tok.eosToken
        let item2 = Array(tok.tokens(of: 2)), item3 = Array(tok.tokens(of: 3))
        let early = Rollout(tokens: item2 + [eos], tokenizer: tok, maxItems: 3)
        #expect(early.items == [2] && early.actions == 2 && early.stoppedEarly && early.actionTokens == [0..<2, 2..<3])
        let full = Rollout(tokens: item2 + item3 + item2 + [eos], tokenizer: tok, maxItems: 3)
        #expect(full.items == [2, 3, 2] && full.actions == 3 && !full.stoppedEarly, "the forced EOS is not an action")
        // unconstrained: a tuple naming no item, and an EOS inside an item
        let unknown: [Int32] = [item2[0], item2[0]]
        let odd = Rollout(tokens: unknown + [item3[0], eos], tokenizer: tok, maxItems: 3)
        #expect(odd.items == [nil, nil] && odd.actionTokens == [0..<2, 2..<3, 3..<4] && odd.stoppedEarly)
    }

    @Test("penalties: invalid items get CTR −1 and one below the batch minimum; duplicates CTR 0")
    func penalties() throws {
        let sim = try RewardModelTests.simulator("sasrec")
        var catalog = ItemCatalog()
        for i in 1..<60 { catalog.add(String(i)) }
        catalog.add("not-in-simulator")  // item 60
        let scorer = try RolloutScorer(simulator: sim, catalog: catalog, maxBatch: 8, maxItems: 5)
        let task = ProactiveTask(user: nil, history: [3, 4, 5], path: [6], target: 7)
        let paths: [[Int32?]] = [[10, 11, 10], [nil, 12, 60]]
        let r = scorer.score(paths: paths, tasks: [task], taskOf: [0, 0])
        #expect(r.duplicate[0] == [false, false, true] && r.ctr[0][2] == 0)
        #expect(r.invalid[1] == [true, false, true] && r.ctr[1][0] == -1 && r.ctr[1][2] == -1)
        let realIoI = [r.ioi[0][0], r.ioi[0][1], r.ioi[1][1]], realIoR = [r.ior[0][0], r.ior[0][1], r.ior[1][1]]
        #expect(r.ioi[1][0] == realIoI.min()! - 1 && r.ior[1][2] == realIoR.min()! - 1)
        // the valid item after an invalid one is scored after the valid prefix only
        let alone = scorer.score(paths: [[12]], tasks: [task], taskOf: [0])
        #expect(abs(alone.ioi[0][0] - r.ioi[1][1]) < 1e-6)
        // IoI as the target's acceptance: the steps' σ-score gains, the path values still the task's IoI
        let accepting = try RolloutScorer(simulator: sim, catalog: catalog, maxBatch: 8, maxItems: 5, interest: .acceptance)
        let a = accepting.score(paths: [[10, 11]], tasks: [task], taskOf: [0])
        let view = try #require(accepting.simulatorView(history: task.history, target: task.target))
        let rows = try [10, 11].map { try #require(accepting.rows[$0]) }
        let steps = accepting.rewards.score([.init(history: view.history, path: rows, target: view.target)])[0]
        #expect(a.ioi[0] == [Double(steps.acceptanceGain(step: 1)), Double(steps.acceptanceGain(step: 2))])
        #expect(a.ioi[0] != scorer.score(paths: [[10, 11]], tasks: [task], taskOf: [0]).ioi[0], "the two measures should differ")
        #expect(a.pathIoI[0] == Double(steps.ioi) && a.ior[0][0] == Double(steps.ior(step: 1)))
    }

    @Test("the world's rewards are its truth: CTR the items' acceptance, IoI summing to log(after / before) of the target's, invalid and repeated items penalised")
    func worldRewards() throws {
        var settings = SyntheticWorld.Settings()
        settings.users = 40
        let (world, log) = try SyntheticWorld.generate(settings)
        let rewards = WorldRewards(world: world, log: log, catalog: log.catalog)
        let tasks = try TaskBuilder.build(log, settings: TaskConstruction()).train.prefix(12).filter { rewards.accepts($0) }
        #expect(tasks.count == 12, "the world's own tasks are all scorable")
        for task in tasks {
            let path = task.path
            let r = rewards.score(paths: [path.map { Optional($0) }, [nil] + task.path.map { Optional($0) }], tasks: [task], taskOf: [0, 0])
            let g = try #require(world.guidance(log: log, user: task.user!, history: task.history, path: path, target: task.target))
            #expect(abs(r.ioi[0].reduce(0, +) - Foundation.log(g.targetAfter / g.targetBefore)) <= 1e-12,
                    "Σ step IoI \(r.ioi[0].reduce(0, +)) vs log of the true gain's ratio")
            #expect(abs(r.ctr[0].reduce(0, +) / Double(path.count) - g.meanAcceptance) <= 1e-12 && r.pathIoI[0] == r.ioi[0].reduce(0, +))
            let validMin = (r.ioi[0] + r.ioi[1].dropFirst()).min()!
            #expect(r.invalid[1][0] && r.ctr[1][0] == -1 && r.ioi[1][0] == validMin - 1, "an invalid step: CTR −1, IoI below the valid ones")
            // the valid items after an invalid one are walked from the same taste
            #expect(zip(r.ioi[1].dropFirst(), r.ioi[0]).allSatisfy { abs($0 - $1) <= 1e-12 })
        }
        let task = tasks[0], item = task.path[0]
        let twice = rewards.score(paths: [[item, item]], tasks: [task], taskOf: [0])
        #expect(twice.duplicate[0] == [false, true] && twice.ctr[0][1] == 0)
    }

    @Test("an ensemble's step rewards are its members' means; invalid steps are floored below the mean's minimum")
    func ensembleRewards() throws {
        var catalog = ItemCatalog()
        for i in 1..<60 { catalog.add(String(i)) }
        catalog.add("not-in-simulator")  // item 60
        let a = try RolloutScorer(simulator: try RewardModelTests.simulator("sasrec"), catalog: catalog, maxBatch: 8, maxItems: 5)
        let b = try RolloutScorer(simulator: try RewardModelTests.simulator("gru4rec"), catalog: catalog, maxBatch: 8, maxItems: 5)
        let task = ProactiveTask(user: nil, history: [3, 4, 5], path: [6], target: 7)
        let paths: [[Int32?]] = [[10, 11, 10], [12, 60], [13]]
        let (ra, rb) = (a.score(paths: paths, tasks: [task], taskOf: [0, 0, 0]), b.score(paths: paths, tasks: [task], taskOf: [0, 0, 0]))
        let r = try EnsembleRewards(members: [a, b]).score(paths: paths, tasks: [task], taskOf: [0, 0, 0])
        for p in 0..<3 {
            for k in 0..<paths[p].count where !r.invalid[p][k] {
                #expect(r.ctr[p][k] == (ra.ctr[p][k] + rb.ctr[p][k]) / 2 && r.ioi[p][k] == (ra.ioi[p][k] + rb.ioi[p][k]) / 2
                        && r.ior[p][k] == (ra.ior[p][k] + rb.ior[p][k]) / 2, "path \(p) step \(k)")
            }
            #expect(r.pathIoI[p] == (ra.pathIoI[p] + rb.pathIoI[p]) / 2)
        }
        #expect(ra.ioi[0][0] != rb.ioi[0][0], "the two simulators should disagree, or the test shows nothing")
        #expect(r.invalid[1] == [false, true] && r.ctr[1][1] == -1)
        let valid = [r.ioi[0][0], r.ioi[0][1], r.ioi[1][0], r.ioi[2][0]]  // step 3 of path 0 repeats item 10
        #expect(r.ioi[1][1] == valid.min()! - 1, "the invalid step's IoI \(r.ioi[1][1]) is one below \(valid.min()!)")
        // one member: its own rewards
        #expect(try EnsembleRewards(members: [a]).score(paths: paths, tasks: [task], taskOf: [0, 0, 0]) == ra)
    }

    @Test("the evaluator counts repeated items: per path, best (min) of K and top path")
    func evaluatorRepeats() throws {
        let sim = try RewardModelTests.simulator("sasrec")
        var catalog = ItemCatalog()
        for i in 1..<60 { catalog.add(String(i)) }
        let evaluator = try PathEvaluator(simulator: sim, catalog: catalog, maxItems: 5)
        let task = ProactiveTask(user: nil, history: [3, 4, 5], path: [6], target: 7)
        // task 0: top path repeats 2 of 4 items, the second candidate none; task 1: one of 3
        let scores = evaluator.score([[[10, 10, 11, 10], [12, 13]], [[14, 15, 14]]], tasks: [task, task])
        #expect(scores[0].map(\.repeats) == [0.5, 0] && abs(scores[1][0].repeats - 1.0 / 3) < 1e-12)
        let row = evaluator.summarise(method: "m", beams: 2, scores: scores)
        #expect(abs(row.top.repeats! - (0.5 + 1.0 / 3) / 2) < 1e-12, "top-path repeats \(row.top.repeats!)")
        #expect(abs(row.reference.repeats! - (0 + 1.0 / 3) / 2) < 1e-12, "best-of-K repeats \(row.reference.repeats!)")
        let table = ResultsTable(split: "validation", rows: [row]).markdown
        #expect(table.contains("| repeats |") && table.contains("| 0.417 |"), "markdown table:\n\(table)")
    }

    @Test("a tiny ProRL run raises the raw path IoI and IoR and keeps CTR, with either simulator",
          arguments: SequenceArchitectures.names)
    func tinyRunImproves(architecture: String) throws {
        let sim = try RewardModelTests.simulator(architecture)
        var catalog = ItemCatalog()
        for i in 1..<60 { catalog.add(String(i)) }
        let tok = try ItemTokenizer(perItem: 59)
        let policy = try Policy(tokenizer: tok, itemIDs: catalog.rawIDs, configure: {
            $0.modelWidth = 32; $0.ffWidth = 64; $0.heads = 2; $0.headWidth = 16
            $0.encoderLayers = 1; $0.decoderLayers = 1; $0.dropout = 0
        }, seed: 3)
        var rng = SplitMix64(seed: 4)
        let tasks = (0..<4).map { _ in
            ProactiveTask(user: nil, history: (0..<5).map { _ in Int32(1 + rng.below(59)) }, path: [1],
                          target: Int32(1 + rng.below(59)))
        }
        var s = RLSettings()
        s.promptsPerStep = 4
        s.rollouts = 16
        s.maxItems = 4
        s.steps = 100
        s.learningRate = 3e-3
        s.warmupFraction = 0
        s.centeringWarmupSteps = 1
        let trainer = try RLTrainer(policy: policy, simulator: sim, catalog: catalog, train: tasks, settings: s)
        var logs: [RLStepLog] = []
        for _ in 0..<s.steps { logs.append(try trainer.runStep()) }
        // the raw measures, not the shaped reward (which could rise with length alone)
        func mean(_ key: String, _ part: ArraySlice<RLStepLog>) -> Double { part.map { $0[key]! }.reduce(0, +) / Double(part.count) }
        for key in ["path_ioi", "path_ior"] {
            let first = mean(key, logs.prefix(20)), last = mean(key, logs.suffix(20))
            #expect(last > first + (key == "path_ioi" ? 0.2 : 2), "\(architecture) \(key): mean over the first 20 steps \(first), last 20 \(last)")
        }
        let ctrFirst = mean("path_ctr", logs.prefix(20)), ctrLast = mean("path_ctr", logs.suffix(20))
        // CTR enters the reward with IoI and IoR; the policy may trade a little
        // of it (measured: SASRec world +0.042, GRU4Rec world −0.026), not more
        #expect(ctrLast >= ctrFirst - 0.05, "\(architecture) path CTR: first 20 steps \(ctrFirst), last 20 \(ctrLast)")
    }
}
