import Foundation
import ProRL
import ProRLTestSupport
import Testing

@Suite("Decoding: KV cache, sampling, beam search")
struct DecodingTests {
    static func goldenTokenizer(_ meta: [String: String]) throws -> ItemTokenizer {
        let codes = try JSONSerialization.jsonObject(with: Data(meta["beam_codes"]!.utf8)) as! [[Int]]
        return try ItemTokenizer(semanticIDs: [[]] + codes, codebookSize: 13)
    }

    @Test("constrained beam search returns HF generate()'s beams and scores")
    func beamSearchMatchesHF() throws {
        // HF's beams are exact fp32 results, and near-tied beams swap under any
        // other rounding; the search itself does not depend on the precision
        // (the T5 golden test bounds its passes at bf16), so this runs at fp32.
        try Kernels.withPrecision(.fp32) { try beamSearchMatchesHFAtFP32() }
    }

    private func beamSearchMatchesHFAtFP32() throws {
        let (model, tensors, _, _) = try T5GoldenTests.fixture()
        let (_, meta) = try SafeTensors.read(TestPaths.packageRoot + "/Tests/Fixtures/t5_golden.safetensors")
        let tokenizer = try Self.goldenTokenizer(meta)
        #expect(tokenizer.vocabularySize == model.config.vocabulary && tokenizer.eosToken == model.config.eosToken)
        let enc = try JSONSerialization.jsonObject(with: Data(meta["encoder"]!.utf8)) as! [[Int]]
        let encLen = try JSONSerialization.jsonObject(with: Data(meta["encoder_lengths"]!.utf8)) as! [Int]
        let prompts = zip(enc, encLen).map { e, n in e.prefix(n).map(Int32.init) }
        var options = DecodingOptions()
        options.maxItems = 3
        options.allowRepeats = true  // as HF's generate
        let decoder = T5Decoder(model: model, maxPrompts: 3, maxRows: 9, encoderLength: 7, maxSteps: 7)
        let beams = PathDecoding(decoder: decoder, tokenizer: tokenizer).beamSearch(prompts: prompts, beams: 3, options: options)
        let hfSequences = try #require(tensors["beam.sequences"]).values.map { Int32($0) }
        let hfScores = try #require(tensors["beam.scores"]).values
        for p in 0..<3 {
            for k in 0..<3 {
                let row = Array(hfSequences[((p * 3 + k) * 8 + 1)..<((p * 3 + k) * 8 + 8)])
                let expected = Array(row.prefix { $0 != 28 }) + [28]
                #expect(beams[p][k].tokens == expected, "prompt \(p) beam \(k): \(beams[p][k].tokens) vs HF \(expected)")
                #expect(abs(beams[p][k].score - hfScores[p * 3 + k]) <= 2e-5 * abs(hfScores[p * 3 + k]),
                        "prompt \(p) beam \(k) score \(beams[p][k].score) vs HF \(hfScores[p * 3 + k])")
            }
        }
    }

    @Test("step-by-step logits with the KV cache equal a teacher-forced pass")
    func kvCacheMatchesTeacherForcing() throws {
        let (model, _, batch, _) = try T5GoldenTests.fixture()
        let c = model.config
        let pass = T5Pass(model: model, capacity: .init(prompts: 3, encoderLength: 7, sequences: 3, decoderLength: 5))
        pass.forward(batch, training: false)
        let teacher = try #require(pass.lastLogits).toArray()
        let decoder = T5Decoder(model: model, maxPrompts: 3, maxRows: 3, encoderLength: 7, maxSteps: 5)
        let prompts = (0..<3).map { p in Array(batch.encoderTokens[(p * 7)..<(p * 7 + Int(batch.encoderLengths[p]))]) }
        decoder.start(prompts: prompts)
        let scale = teacher.map { Double(abs($0)) }.max()!
        for t in 0..<batch.maxDecoderLength {
            let rows = (0..<3).filter { Int(batch.decoderLengths[$0]) > t }
            let inputs = rows.map { batch.decoderInputs[Int(batch.decoderStarts[$0]) + t] }
            let z = decoder.step(rows: rows, promptOf: rows, tokens: inputs, position: t)
            for (i, r) in rows.enumerated() {
                let packed = Int(batch.decoderStarts[r]) + t
                let expected = teacher[(packed * c.vocabulary)..<((packed + 1) * c.vocabulary)].map(Double.init)
                let bad = firstMismatch(z.row(i).toArray(), expected, tolerance: 1e-5 * scale)
                #expect(bad == nil, "step \(t) row \(r): \(String(describing: bad))")
            }
        }
    }

    @Test("constrained sampling returns only valid items; first tokens follow softmax over allowed tokens")
    func constrainedSampling() throws {
        let (model, _, _, _) = try T5GoldenTests.fixture()
        let (_, meta) = try SafeTensors.read(TestPaths.packageRoot + "/Tests/Fixtures/t5_golden.safetensors")
        let tokenizer = try Self.goldenTokenizer(meta)
        let prompt: [Int32] = [5, 6, 7, 8, 28]
        let G = 400
        var options = DecodingOptions()
        options.maxItems = 3
        options.allowRepeats = true
        options.seed = 21
        let decoder = T5Decoder(model: model, maxPrompts: 1, maxRows: G, encoderLength: 5, maxSteps: 7)
        let decoding = PathDecoding(decoder: decoder, tokenizer: tokenizer)
        let paths = decoding.sample(prompts: [prompt], samplesPerPrompt: G, options: options)
        for p in paths {
            let items = tokenizer.decode(p.tokens)
            #expect(!items.isEmpty && items.count <= 3, "path \(p.tokens) has \(items.count) items")
            #expect(items.allSatisfy { $0 != nil }, "path \(p.tokens) has an invalid item")
            #expect(p.tokens.last == tokenizer.eosToken, "path \(p.tokens) does not end with EOS")
        }
        // the first token's empirical frequencies against softmax over the
        // allowed first tokens (5 standard deviations)
        decoder.start(prompts: [prompt])
        let z = decoder.step(rows: [0], promptOf: [0], tokens: [0], position: 0)
        let allowed = Array(tokenizer.trie.allowedTokens(at: 0))
        let m = allowed.map { z[Int($0)] }.max()!
        let weights = allowed.map { Double(expf(z[Int($0)] - m)) }
        let total = weights.reduce(0, +)
        for (tok, w) in zip(allowed, weights) {
            let p = w / total
            let count = paths.filter { $0.tokens.first == tok }.count
            let sd = (Double(G) * p * (1 - p)).squareRoot()
            #expect(abs(Double(count) - Double(G) * p) <= 5 * sd + 1, "token \(tok): \(count) of \(G), expected \(Double(G) * p)")
        }
        // the same seed gives the same paths, another seed other paths
        let again = decoding.sample(prompts: [prompt], samplesPerPrompt: G, options: options)
        #expect(again == paths)
        options.seed = 22
        #expect(decoding.sample(prompts: [prompt], samplesPerPrompt: G, options: options) != paths)
    }

    @Test("without repeats, sampled and beam-searched paths never name an item twice, even when every item is used")
    func noRepeats() throws {
        let (model, _, _, _) = try T5GoldenTests.fixture()
        let (_, meta) = try SafeTensors.read(TestPaths.packageRoot + "/Tests/Fixtures/t5_golden.safetensors")
        let tokenizer = try Self.goldenTokenizer(meta)
        let prompt: [Int32] = [5, 6, 7, 8, 28]
        let G = 200, items = tokenizer.itemCount
        var options = DecodingOptions()
        options.maxItems = items + 1  // more room than items: the constraint must end paths with EOS
        options.temperature = 3
        options.seed = 5
        options.allowRepeats = true
        let steps = options.maxItems * tokenizer.tokensPerItem + 1
        let decoder = T5Decoder(model: model, maxPrompts: 1, maxRows: G, encoderLength: 5, maxSteps: steps)
        let decoding = PathDecoding(decoder: decoder, tokenizer: tokenizer)
        func repeats(_ paths: [DecodedPath]) -> Int {
            paths.filter { p in let it = tokenizer.decode(p.tokens); return Set(it.map { $0! }).count < it.count }.count
        }
        let free = decoding.sample(prompts: [prompt], samplesPerPrompt: G, options: options)
        #expect(repeats(free) > 0, "with repeats allowed some of \(G) hot samples should repeat (the check below would be empty)")
        options.allowRepeats = false
        let paths = decoding.sample(prompts: [prompt], samplesPerPrompt: G, options: options)
        for p in paths {
            let it = tokenizer.decode(p.tokens)
            #expect(it.allSatisfy { $0 != nil } && p.tokens.last == tokenizer.eosToken, "path \(p.tokens)")
        }
        #expect(repeats(paths) == 0, "\(repeats(paths)) of \(G) sampled paths repeat an item")
        #expect(paths.contains { tokenizer.decode($0.tokens).count == items }, "some path should use every one of \(items) items")
        let beams = decoding.beamSearch(prompts: [prompt], beams: 4, options: options)[0]
        #expect(beams.count == 4 && repeats(beams) == 0, "beams \(beams.map(\.tokens))")
    }
}
