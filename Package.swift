// swift-tools-version: 6.0
//
// ProRL engine: proactive recommendation with rectified policy gradients.
// C kernels (CKernels) under a Swift layer (ProRL) and a command (prorl).
//
// OpenMP and the kernels' optimisation flags are unsafe flags, which would
// stop the package being used as a versioned dependency, so they are gated:
// the Makefile sets PRORL_OPENMP=1. Without it the kernels build
// single-threaded with the default flags, and everything still works.

import Foundation
import PackageDescription

let openMP = ProcessInfo.processInfo.environment["PRORL_OPENMP"] == "1"

// MARK: - Kernel build settings

let kernelCSettings: [CSetting] =
    openMP ? [.unsafeFlags(["-fopenmp", "-O3"])] : []
let kernelLinkerSettings: [LinkerSetting] =
    openMP ? [.linkedLibrary("omp5")] : []

// MARK: - Package

let package = Package(
    name: "ProRL",
    products: [
        .library(name: "ProRL", targets: ["ProRL"]),
        .executable(name: "prorl", targets: ["ProRLCLI"]),
        // libprorl.so: the C embedding API (header: Sources/CProRLAPI/include/prorl.h)
        .library(name: "prorl-embed", type: .dynamic, targets: ["ProRLCAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
    ],
    targets: [
        // MARK: C kernels
        .target(
            name: "CKernels",
            path: "CKernels",
            exclude: [
                "src/gemm_ukernel.inc", "src/attention_simd.inc", "src/softmax_simd.inc", "src/kl_simd.inc",
                "src/activation_simd.inc", "src/scoring_simd.inc", "src/norm_simd.inc", "src/isa_table.inc",
            ],
            sources: ["src"],
            publicHeadersPath: "include",
            cSettings: kernelCSettings,
            linkerSettings: kernelLinkerSettings
        ),

        // MARK: Swift engine
        .target(
            name: "ProRL",
            dependencies: ["CKernels"],
            path: "Sources/ProRL"
        ),

        // MARK: Interfaces
        .target(
            name: "CProRLAPI",
            path: "Sources/CProRLAPI",
            publicHeadersPath: "include"
        ),
        .target(
            name: "ProRLCAPI",
            dependencies: ["ProRL", "CProRLAPI"],
            path: "Sources/ProRLCAPI"
        ),
        .executableTarget(
            name: "ProRLCLI",
            dependencies: [
                "ProRL",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/ProRLCLI"
        ),

        // MARK: Tests
        .target(
            name: "ProRLTestSupport",
            dependencies: ["ProRL"],
            path: "Tests/ProRLTestSupport"
        ),
        .testTarget(
            name: "ProRLTests",
            dependencies: ["ProRL", "ProRLTestSupport", "CKernels", "ProRLCLI"],
            path: "Tests/ProRLTests"
        ),
    ]
)
