/// The inputs of one teacher-forced policy pass: P prompts (encoder inputs,
/// right-padded to a common length) and G decoder sequences per prompt
/// (rows `p·G …`), whose tokens are packed back to back — only real tokens
/// are computed.
public struct PolicyBatch: Sendable {
    public let prompts: Int
    public let encoderLength: Int
    /// `[prompts · encoderLength]`, padded with 0.
    public var encoderTokens: [Int32]
    public var encoderLengths: [Int32]
    /// Decoder sequences per prompt.
    public let group: Int
    /// Tokens of each decoder sequence (≥ 1), `[prompts · group]`.
    public var decoderLengths: [Int32]
    /// First packed row of each decoder sequence.
    public var decoderStarts: [Int32]
    /// Packed decoder inputs: the start token, then the targets shifted right.
    public var decoderInputs: [Int32]
    /// Packed targets (the token each position predicts).
    public var labels: [Int32]

    /// - Parameters:
    ///   - encoder: the prompts' encoder tokens.
    ///   - targets: `encoder.count · group` target sequences (path tokens,
    ///     EOS), in prompt-major order.
    public init(encoder: [[Int32]], targets: [[Int32]], group: Int = 1, startToken: Int32 = 0) {
        precondition(group >= 1 && targets.count == encoder.count * group, "need \(group) target sequences per prompt")
        precondition(targets.allSatisfy { !$0.isEmpty } && encoder.allSatisfy { !$0.isEmpty }, "empty sequence")
        prompts = encoder.count
        encoderLength = encoder.map(\.count).max() ?? 1
        encoderTokens = [Int32](repeating: 0, count: prompts * encoderLength)
        encoderLengths = encoder.map { Int32($0.count) }
        for (p, tokens) in encoder.enumerated() {
            for (i, t) in tokens.enumerated() { encoderTokens[p * encoderLength + i] = t }
        }
        self.group = group
        decoderLengths = targets.map { Int32($0.count) }
        decoderStarts = []
        decoderInputs = []
        labels = []
        for t in targets {
            decoderStarts.append(Int32(labels.count))
            decoderInputs.append(startToken)
            decoderInputs += t.dropLast()
            labels += t
        }
    }

    /// Decoder sequences (prompts · group).
    public var sequences: Int { decoderLengths.count }
    /// Packed decoder rows (real tokens).
    public var rows: Int { labels.count }
    /// Longest decoder sequence.
    public var maxDecoderLength: Int { Int(decoderLengths.max() ?? 1) }
}
