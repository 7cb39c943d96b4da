import Foundation

/// Options shared by sampling and beam search.
public struct DecodingOptions: Codable, Sendable, Equatable {
    /// Most items per path (then EOS is forced).
    public var maxItems = 10
    /// Only valid items (the tokenizer's trie); otherwise any token but
    /// padding, and invalid tuples may appear.
    public var constrained = true
    public var temperature: Float = 1
    /// Keep the k most likely tokens (0: all).
    public var topK = 0
    /// Keep the smallest set of tokens with probability ≥ p (1: all).
    public var topP: Float = 1
    public var seed: UInt64 = 7
    /// With `constrained`, whether a path may repeat one of its own items.
    /// Off by default: a platform does not recommend an item twice in one
    /// path, and a simulator re-accepts a just-seen item readily, so RL
    /// policies allowed to repeat learn to. (The reference and HF's
    /// `generate` decode with repeats allowed.)
    public var allowRepeats = false
    public init() {}
}

/// One decoded sequence: generated tokens (EOS included when reached).
public struct DecodedPath: Sendable, Equatable {
    public var tokens: [Int32]
    /// Σ log p of the tokens under the model (before temperature or
    /// truncation; constrained beams: unnormalised over allowed tokens, as HF).
    public var logProb: Float
    /// Beam search: logProb / generated length (HF, length_penalty 1).
    public var score: Float
}

/// Sampling and beam search over a ``T5Decoder``, constrained by an item
/// tokenizer's prefix trie.
public struct PathDecoding {
    public let decoder: T5Decoder
    public let tokenizer: ItemTokenizer

    public init(decoder: T5Decoder, tokenizer: ItemTokenizer) {
        precondition(decoder.model.config.vocabulary == tokenizer.vocabularySize
                     && decoder.model.config.eosToken == tokenizer.eosToken, "decoder and tokenizer disagree on the vocabulary")
        self.decoder = decoder
        self.tokenizer = tokenizer
    }

    /// Where a partial path stands; when repeats are excluded, `nodes` holds
    /// the trie node reached by each token so far (`tokensPerItem` per item).
    struct State {
        var node: Int32 = 0
        var depth = 0
        var items = 0
        var done = false
        var nodes: [Int32] = []
    }

    /// Writes the tokens allowed next into `buffer` (room for the whole
    /// vocabulary) and returns how many: the trie's children when
    /// constrained (EOS too between items, after the first), any token but
    /// padding otherwise; only EOS once `maxItems` items are complete.
    func candidates(_ st: State, options o: DecodingOptions, into buffer: UnsafeMutablePointer<Int32>) -> Int {
        let eos = tokenizer.eosToken
        if st.depth == 0 && st.items >= o.maxItems {
            buffer[0] = eos
            return 1
        }
        guard o.constrained else {
            let V = decoder.model.config.vocabulary
            for tok in 1..<V { buffer[tok - 1] = Int32(tok) }
            return V - 1
        }
        let trie = tokenizer.trie
        let allowed = trie.allowedTokens(at: st.node)
        var n = 0
        if o.allowRepeats || st.items == 0 {
            for tok in allowed { buffer[n] = tok; n += 1 }
        } else {
            // a child is open while some item below it is not yet in the path
            // (the completed items' nodes at this depth: st.depth, st.depth + L, …)
            let L = tokenizer.tokensPerItem, start = Int(trie.childStart[Int(st.node)])
            for (j, tok) in allowed.enumerated() {
                let child = trie.childNodes[start + j]
                var used: Int32 = 0
                for u in stride(from: st.depth, to: st.items * L, by: L) where st.nodes[u] == child { used += 1 }
                if used < trie.leafCount[Int(child)] { buffer[n] = tok; n += 1 }
            }
        }
        if st.depth == 0 && st.items >= 1 { buffer[n] = eos; n += 1 }
        return n
    }

    func advance(_ st: inout State, token: Int32, options o: DecodingOptions) {
        if token == tokenizer.eosToken { st.done = true; return }
        st.node = tokenizer.trie.child(of: st.node, token: token) ?? 0
        st.depth += 1
        if !o.allowRepeats && o.constrained { st.nodes.append(st.node) }
        if st.depth == tokenizer.tokensPerItem {
            st.depth = 0
            st.node = 0
            st.items += 1
        }
    }

    var maxTokens: Int { decoder.maxSteps }

    /// The support the sampler drew each token of `tokens` from: row t of
    /// `mask` (`[tokens.count, vocabulary]`, 1 = allowed) holds the tokens
    /// ``candidates(_:options:into:)`` allowed before token t (the trie's
    /// children, EOS between items, the open items without repeats).
    /// Truncation (top-k, top-p) is not part of the support.
    public func tokenMask(_ tokens: [Int32], options o: DecodingOptions, into mask: UnsafeMutablePointer<UInt8>,
                          scratch: UnsafeMutablePointer<Int32>) {
        let V = decoder.model.config.vocabulary
        var st = State()
        for (t, token) in tokens.enumerated() {
            let row = mask + t * V
            row.initialize(repeating: 0, count: V)
            let n = candidates(st, options: o, into: scratch)
            for j in 0..<n { row[Int(scratch[j])] = 1 }
            advance(&st, token: token, options: o)
        }
    }

    // MARK: Sampling

    /// `samplesPerPrompt` paths per prompt (prompt-major order), sampled at
    /// the options' temperature with top-k / top-p truncation; randomness is
    /// counter-based from `(seed, stream)` so results do not depend on
    /// threads or batch composition.
    /// `rowOffset` numbers the rows as if this call were a slice of a larger
    /// batch starting at that row, so a batch sampled in slices draws the
    /// same paths as in one call. With `recording`, it holds afterwards
    /// what the decoder computed for every token (path r in slot r).
    public func sample(prompts: [[Int32]], samplesPerPrompt G: Int, options o: DecodingOptions,
                       stream: UInt64 = 0, rowOffset: Int = 0, recording: DecoderRecording? = nil) -> [DecodedPath] {
        let V = decoder.model.config.vocabulary
        let rowsTotal = prompts.count * G
        precondition(rowsTotal <= decoder.maxRows, "\(rowsTotal) rows exceed the decoder's \(decoder.maxRows)")
        if let recording {
            precondition(recording.config == decoder.model.config && recording.maxRows >= rowsTotal
                         && recording.maxSteps == decoder.maxSteps, "recording does not fit the decoder")
            recording.reset()
        }
        let steps = min(maxTokens, o.maxItems * tokenizer.tokensPerItem + 1)
        decoder.start(prompts: prompts)
        var states = [State](repeating: State(), count: rowsTotal)
        var out = [DecodedPath](repeating: DecodedPath(tokens: [], logProb: 0, score: 0), count: rowsTotal)
        for r in 0..<rowsTotal { out[r].tokens.reserveCapacity(steps) }
        var active = Array(0..<rowsTotal), promptOf = active.map { $0 / G }
        var inputs = [Int32](repeating: decoder.model.config.decoderStartToken, count: rowsTotal)
        let tokenBuffer = Int32Buffer(capacity: V), weights = FloatBuffer(count: V)
        for t in 0..<steps where !active.isEmpty {
            let z = decoder.step(rows: active, promptOf: promptOf, tokens: inputs, position: t, recording: recording)
            Kernels.logSoftmax(z, into: z)
            var still = 0
            for (i, r) in active.enumerated() {
                let logProbs = z.base + i * V
                let n = candidates(states[r], options: o, into: tokenBuffer.base)
                let u = Kernels.uniform(seed: o.seed, stream: stream, index: UInt64(rowOffset + r) &* UInt64(maxTokens) &+ UInt64(t))
                let token = draw(tokenBuffer.base, count: n, logProbs: logProbs, weights: weights.base, u: u, options: o)
                out[r].tokens.append(token)
                out[r].logProb += logProbs[Int(token)]
                advance(&states[r], token: token, options: o)
                if !states[r].done && t < steps - 1 {
                    active[still] = r
                    promptOf[still] = r / G
                    inputs[still] = token
                    still += 1
                }
            }
            active.removeLast(active.count - still)
            promptOf.removeLast(promptOf.count - still)
            inputs.removeLast(inputs.count - still)
        }
        return out
    }

    /// Draws from softmax(logit / T) over the `n` candidate tokens after
    /// top-k / top-p (`logProbs`: the row's log-softmax; `weights`: room for
    /// n floats). Candidates are reordered when truncating.
    func draw(_ tokens: UnsafeMutablePointer<Int32>, count n0: Int, logProbs lp: UnsafePointer<Float>,
              weights w: UnsafeMutablePointer<Float>, u: Float, options o: DecodingOptions) -> Int32 {
        var n = n0
        let invT = 1 / max(o.temperature, 1e-6)
        if o.topK > 0 || o.topP < 1 {
            var view = UnsafeMutableBufferPointer(start: tokens, count: n)
            view.sort { (a: Int32, b: Int32) -> Bool in
                let x = lp[Int(a)], y = lp[Int(b)]
                return x > y || (x == y && a < b)
            }
            if o.topK > 0 && n > o.topK { n = o.topK }
        }
        var m = -Float.infinity
        for i in 0..<n { m = max(m, lp[Int(tokens[i])]) }
        m *= invT
        var total: Float = 0
        for i in 0..<n {
            w[i] = expf(lp[Int(tokens[i])] * invT - m)
            total += w[i]
        }
        if o.topP < 1 {
            var cumulative: Float = 0
            for i in 0..<n {
                cumulative += w[i] / total
                if cumulative >= o.topP { n = i + 1; break }
            }
            total = 0
            for i in 0..<n { total += w[i] }
        }
        var target = u * total
        for i in 0..<n {
            target -= w[i]
            if target < 0 { return tokens[i] }
        }
        return tokens[n - 1]
    }

    // MARK: Beam search

    /// HF's beam search (num_beams = num_return_sequences = K,
    /// length_penalty 1, early_stopping): at each step the 2K best
    /// continuations over all beams are ranked; continuations ending in EOS
    /// (or at the length limit) among the first K become finished hypotheses
    /// scored by log-prob / generated length; the best K others continue. A
    /// prompt is done when K hypotheses have finished. Returns, per prompt,
    /// the K hypotheses best first.
    public func beamSearch(prompts: [[Int32]], beams K: Int, options o: DecodingOptions) -> [[DecodedPath]] {
        let V = decoder.model.config.vocabulary
        let P = prompts.count
        precondition(P * K <= decoder.maxRows, "\(P * K) beams exceed the decoder's \(decoder.maxRows) rows")
        let steps = min(maxTokens, o.maxItems * tokenizer.tokensPerItem + 1)
        decoder.start(prompts: prompts)
        struct Beam { var tokens: [Int32]; var score: Float; var state: State }
        var running = (0..<P).map { _ in (0..<K).map { k in Beam(tokens: [], score: k == 0 ? 0 : -1e9, state: State()) } }
        var finished = [[DecodedPath]](repeating: [], count: P)
        let tokenBuffer = Int32Buffer(capacity: V)
        var done = [Bool](repeating: false, count: P)
        for t in 0..<steps {
            let live = (0..<P).filter { !done[$0] }
            if live.isEmpty { break }
            var rows: [Int] = [], promptOf: [Int] = [], inputs: [Int32] = []
            for p in live {
                for k in 0..<K {
                    rows.append(p * K + k)
                    promptOf.append(p)
                    inputs.append(running[p][k].tokens.last ?? decoder.model.config.decoderStartToken)
                }
            }
            let z = decoder.step(rows: rows, promptOf: promptOf, tokens: inputs, position: t)
            Kernels.logSoftmax(z, into: z)
            let allowed = tokenBuffer.base
            var newRows: [Int] = [], parents: [Int] = []
            for (li, p) in live.enumerated() {
                // the 2K best continuations over the prompt's K beams
                var cands: [(score: Float, beam: Int, token: Int32)] = []
                for k in 0..<K where running[p][k].score > -1e8 {
                    let lp = z.base + (li * K + k) * V
                    let base = running[p][k].score
                    let n = candidates(running[p][k].state, options: o, into: allowed)
                    for j in 0..<n { cands.append((base + lp[Int(allowed[j])], k, allowed[j])) }
                }
                cands.sort { $0.score > $1.score || ($0.score == $1.score && ($0.beam, $0.token) < ($1.beam, $1.token)) }
                if cands.count > 2 * K { cands.removeLast(cands.count - 2 * K) }
                let lastStep = t == steps - 1
                var next: [Beam] = []
                for (rank, c) in cands.enumerated() {
                    let parent = running[p][c.beam]
                    let stops = c.token == tokenizer.eosToken || lastStep
                    if stops {
                        // only the top K candidates may finish (HF's top_num_beam_mask)
                        if rank < K {
                            addFinished(&finished[p], DecodedPath(tokens: parent.tokens + [c.token], logProb: c.score,
                                                                  score: c.score / Float(t + 1)), K)
                        }
                        continue
                    }
                    if next.count < K {
                        var state = parent.state
                        advance(&state, token: c.token, options: o)
                        next.append(Beam(tokens: parent.tokens + [c.token], score: c.score, state: state))
                        newRows.append(p * K + next.count - 1)
                        parents.append(p * K + c.beam)
                    }
                }
                while next.count < K { next.append(Beam(tokens: [], score: -1e9, state: State())) }
                running[p] = next
                if finished[p].count >= K || next.allSatisfy({ $0.score <= -1e8 }) { done[p] = true }
            }
            decoder.reorder(rows: newRows, parents: parents, length: t + 1)
        }
        for p in 0..<P where finished[p].count < K {
            // fewer than K finished (only possible with dead beams): add the
            // best running ones
            for b in running[p] where b.score > -1e8 && finished[p].count < K {
                addFinished(&finished[p], DecodedPath(tokens: b.tokens, logProb: b.score, score: b.score / Float(max(b.tokens.count, 1))), K)
            }
        }
        return finished
    }

    private func addFinished(_ list: inout [DecodedPath], _ h: DecodedPath, _ K: Int) {
        list.append(h)
        list.sort { $0.score > $1.score }
        if list.count > K { list.removeLast(list.count - K) }
    }
}
