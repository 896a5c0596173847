// swift-tools-version: 6.1

import PackageDescription

let package = Package(
    name: "increment-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "increment-cluster", path: "../"),
        // MallocInterposer rather than the default trait, whose package is not needed here.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "IncrementBenchmarks",
            dependencies: [
                .product(name: "IncrementCore", package: "increment-cluster"),
                .product(name: "IncrementStore", package: "increment-cluster"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/IncrementBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
