import Foundation

/// The safetensors format: an 8-byte little-endian header length, a JSON
/// header (`{name: {dtype, shape, data_offsets}, "__metadata__": {…}}`, padded
/// with spaces to a multiple of 8), then the raw little-endian tensor bytes.
/// The engine writes F32; it reads F32, F16 and BF16 (converted to F32).
public enum SafeTensors {
    /// A tensor read from a file.
    public struct Tensor: Sendable {
        public let shape: [Int]
        public let values: [Float]
    }

    /// Writes `tensors` (name, shape, values) and string metadata to `path`
    /// atomically.
    public static func write(_ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String], to path: String) throws {
        var header = "{"
        var offset = 0
        var first = true
        if !metadata.isEmpty {
            let meta = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            header += "\"__metadata__\":{\(meta)}"
            first = false
        }
        for t in tensors {
            precondition(t.shape.reduce(1, *) == t.values.count, "tensor \(t.name): shape \(t.shape) for \(t.values.count) values")
            let bytes = t.values.count * 4
            header += (first ? "" : ",") + "\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":\(t.shape),\"data_offsets\":[\(offset),\(offset + bytes)]}"
            first = false
            offset += bytes
        }
        header += "}"
        while header.utf8.count % 8 != 0 { header += " " }
        var data = Data(capacity: 8 + header.utf8.count + offset)
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: header.utf8)
        for t in tensors {
            t.values.withMemoryRebound(to: UInt8.self) { data.append(contentsOf: UnsafeRawBufferPointer($0)) }
        }
        try AtomicFile.write(data, to: path)
    }

    /// The header length the first 8 bytes give, checked against the
    /// `available` bytes after them (compared as UInt64 first: a length
    /// near 2^64 must not trap or overflow).
    private static func headerLength(_ prefix: Data, available: Int, path: String) throws -> Int {
        guard prefix.count == 8 else { throw DataError(file: path, "is not a safetensors file: shorter than its 8-byte header length") }
        let length = prefix.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length > 0, length <= UInt64(max(available, 0)) else {
            throw DataError(file: path, "is not a safetensors file: header length \(length) exceeds the file")
        }
        return Int(length)
    }

    /// The header's tensor entries and its `__metadata__` strings.
    private static func parseHeader(_ bytes: Data, path: String) throws -> (entries: [String: Any], metadata: [String: String]) {
        guard var header = (try? JSONSerialization.jsonObject(with: bytes)) as? [String: Any] else {
            throw DataError(file: path, "is not a safetensors file: the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let value = header.removeValue(forKey: "__metadata__") {
            guard let m = value as? [String: Any] else { throw DataError(file: path, "__metadata__ is not an object") }
            for (k, v) in m {
                guard let s = v as? String else { throw DataError(file: path, "metadata \(k) is not a string") }
                metadata[k] = s
            }
        }
        return (header, metadata)
    }

    /// The header metadata of a file, without reading its tensors.
    public static func metadata(_ path: String) throws -> [String: String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw DataError.unreadable(path) }
        defer { try? handle.close() }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let length = try headerLength(handle.readData(ofLength: 8), available: size - 8, path: path)
        return try parseHeader(handle.readData(ofLength: length), path: path).metadata
    }

    /// Reads every tensor and the metadata of a file.
    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadable(path)
        }
        let length = try headerLength(data.prefix(8), available: data.count - 8, path: path)
        let (header, metadata) = try parseHeader(data.subdata(in: 8..<(8 + length)), path: path)
        let body = 8 + length
        var tensors: [String: Tensor] = [:]
        var extents: [(start: Int, end: Int, name: String)] = []
        for (name, value) in header {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw DataError(file: path, "tensor \(name): expected dtype, shape and data_offsets") }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw DataError(file: path, "tensor \(name): shape \(shape) has a negative dimension")
            }
            // the element count, refusing products beyond the file before they overflow
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, p <= data.count else {
                    throw DataError(file: path, "tensor \(name): shape \(shape) holds more values than the file has bytes")
                }
                count = p
            }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            default: throw DataError(file: path, "tensor \(name): dtype \(dtype) is not supported (F32, F16, BF16)")
            }
            // bounds first, so the difference cannot overflow
            guard offsets[0] >= 0, offsets[1] >= offsets[0], offsets[1] <= data.count - body,
                  offsets[1] - offsets[0] == count * width else {
                throw DataError(file: path, "tensor \(name): data_offsets \(offsets) do not fit shape \(shape) \(dtype) in the file")
            }
            extents.append((offsets[0], offsets[1], name))
            let start = body + offsets[0]
            var values = [Float](repeating: 0, count: count)
            data.withUnsafeBytes { raw in
                let base = raw.baseAddress! + start
                for i in 0..<count {
                    switch dtype {
                    case "F32":
                        values[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    case "BF16":
                        let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        values[i] = Float(bitPattern: UInt32(bits) << 16)
                    default:
                        let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        values[i] = Float(Float16(bitPattern: bits))
                    }
                }
            }
            tensors[name] = Tensor(shape: shape, values: values)
        }
        // tensors may not share bytes
        let sorted = extents.filter { $0.end > $0.start }.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.start < a.end {
            throw DataError(file: path, "tensors \(a.name) and \(b.name) overlap (bytes \(b.start)..<\(min(a.end, b.end)))")
        }
        return (tensors, metadata)
    }

    /// Saves every parameter of `store` under its name.
    /// Refuses a store with a non-finite value (a diverged model): the
    /// file at `path`, if any, is left as it was.
    public static func write(_ store: ParameterStore, metadata: [String: String], to path: String) throws {
        if let (name, index) = firstNonFinite(store) {
            throw DataError(file: path, "not written: parameter '\(name)' is not finite at index \(index) (training diverged?)")
        }
        let base = store.values.base
        let list = store.entries.map { e in
            (name: e.name, shape: e.shape, values: UnsafeBufferPointer(start: base + e.offset, count: e.count))
        }
        try write(list, metadata: metadata, to: path)
    }

    /// Loads every parameter of `store` from `tensors`, checking that names
    /// and shapes match exactly (a checkpoint of another model or size is an
    /// error naming the first difference).
    public static func load(_ tensors: [String: Tensor], into store: ParameterStore, file: String) throws {
        for e in store.entries {
            guard let t = tensors[e.name] else {
                throw DataError(file: file, "has no tensor '\(e.name)' (is it a checkpoint of this model?)")
            }
            guard t.shape == e.shape else {
                throw DataError(file: file, "tensor '\(e.name)' has shape \(t.shape), expected \(e.shape)")
            }
            if let i = t.values.firstIndex(where: { !$0.isFinite }) {
                throw DataError(file: file, "tensor '\(e.name)' has a non-finite value (\(t.values[i])) at index \(i)")
            }
            t.values.withUnsafeBufferPointer { store.values.base.advanced(by: e.offset).update(from: $0.baseAddress!, count: e.count) }
        }
        let known = Set(store.entries.map(\.name))
        if let extra = tensors.keys.sorted().first(where: { !known.contains($0) }) {
            throw DataError(file: file, "has an unexpected tensor '\(extra)' (is it a checkpoint of this model?)")
        }
    }

    /// The first parameter with a NaN or infinite value, and the index.
    public static func firstNonFinite(_ store: ParameterStore) -> (name: String, index: Int)? {
        let values = store.values.base
        for e in store.entries {
            for i in 0..<e.count where !values[e.offset + i].isFinite { return (e.name, i) }
        }
        return nil
    }
}
