/// The ProRL engine: proactive recommendation with rectified policy
/// gradients, on hand-written C kernels.
public enum ProRL {
    /// Engine version (semantic).
    public static let version = "0.1.0"
}
