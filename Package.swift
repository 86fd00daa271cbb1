// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Porthole",
    products: [
        .executable(name: "porthole-controller", targets: ["Controller"]),
        .executable(name: "porthole-agent", targets: ["Agent"]),
        .executable(name: "make-ca", targets: ["MakeCA"]),
        .executable(name: "porthole-bench-agents", targets: ["BenchAgents"]),
    ],
    targets: [
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .target(name: "CTunnelShims", dependencies: ["COpenSSL"]),
        .target(name: "Tunnel", dependencies: ["COpenSSL", "CNGHTTP2", "CTunnelShims"]),
        .executableTarget(name: "Controller", dependencies: ["Tunnel"]),
        .executableTarget(name: "Agent", dependencies: ["Tunnel"]),
        .executableTarget(name: "MakeCA", dependencies: ["Tunnel"]),
        .executableTarget(name: "BenchAgents", dependencies: ["Tunnel"], path: "Sources/BenchAgents"),
        // What the test targets share (temporary directories, the test Python, fuzz corpus replay): one copy.
        .target(name: "TestSupport", dependencies: ["Tunnel"], path: "Tests/TestSupport"),
        .testTarget(name: "TunnelTests", dependencies: ["Tunnel", "TestSupport"]),
        .testTarget(name: "ControllerTests", dependencies: ["Controller", "Tunnel", "TestSupport"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Tunnel", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
