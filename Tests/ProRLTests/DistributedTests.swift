import Foundation
import ProRL
import Testing

/// The data-parallel seam without MPI: how work is shared between ranks,
/// the single process's collectives, and when the MPI plugin is opened.
/// (`make test-mpi` runs the real thing under mpirun.)
@Suite("Distributed")
struct DistributedTests {
    @Test("shards cover the work once, in rank order, sizes within one")
    func shards() {
        for count in [0, 1, 5, 7, 64, 513] {
            for size in 1...5 {
                let parts = (0..<size).map { SingleProcess.shard(count, rank: $0, size: size) }
                #expect(parts.first?.lowerBound == 0 && parts.last?.upperBound == count, "\(count) over \(size): \(parts)")
                for r in 1..<size { #expect(parts[r].lowerBound == parts[r - 1].upperBound, "\(count) over \(size): \(parts)") }
                let sizes = parts.map(\.count)
                #expect(sizes.max()! - sizes.min()! <= 1, "\(count) over \(size): sizes \(sizes)")
            }
        }
    }

    @Test("one process: every collective leaves its input as it is")
    func singleProcess() throws {
        let world = SingleProcess.shared
        #expect(world.rank == 0 && world.size == 1 && world.isWriter)
        #expect(world.shard(9) == 0..<9)
        let b = FloatBuffer(count: 3)
        b.flat.copy(from: [1, -2, 3.5])
        try world.allReduceSum(b.flat)
        #expect(b.flat.toArray() == [1, -2, 3.5])
        #expect(try world.allReduceSum([0.25, 7]) == [0.25, 7])
        #expect(try world.allGather([Int32(4), 5]) == [[4, 5]])
        #expect(try world.agree(true) && !(try world.agree(false)))
        try world.checkIdentical(b.flat, what: "values")
    }

    @Test("the MPI plugin is opened only under a launcher of several ranks, and its absence is one clear error")
    func launcherDetection() throws {
        // no launcher, a launcher of one rank, or switched off: a single process, no plugin opened
        for env in [[:], ["OMPI_COMM_WORLD_SIZE": "1"], ["OMPI_COMM_WORLD_SIZE": "2", "PRORL_DISTRIBUTED": "off"]] {
            try Distributed.start(environment: env.merging(["PRORL_MPI_PLUGIN": "/nonexistent"]) { a, _ in a })
            #expect(Distributed.world.size == 1, "\(env)")
        }
        for variable in ["OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"] {
            do {
                try Distributed.start(environment: [variable: "2", "PRORL_MPI_PLUGIN": "/nonexistent/libprorl_mpi.so"])
                Issue.record("\(variable)=2 without a plugin started")
            } catch let e as DataError {
                #expect(e.kind == .distributed)
                #expect(e.description.contains("\(variable)=2") && e.description.contains("/nonexistent/libprorl_mpi.so")
                        && e.description.contains("make mpi"), "\(e.description)")
            }
            #expect(Distributed.world.size == 1)
        }
    }
}
