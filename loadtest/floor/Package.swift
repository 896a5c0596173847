// swift-tools-version: 6.1
// The floor the report measures the node against: a bare SwiftNIO HTTP/1 server answering
// `POST /increment` with `202` from its channel handler, optionally after parsing the body and
// adding it to one of 16 lock-guarded dictionaries. Nothing of the node is in it.
import PackageDescription

let package = Package(
    name: "increment-floor",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3")
    ],
    targets: [
        .executableTarget(
            name: "increment-floor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        )
    ]
)
