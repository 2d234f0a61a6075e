import AsyncHTTPClient
import BackupClient
import BackupProtocol
import Foundation
import NIOCore
import NIOSSL

/// Lease latency benchmark: N simulated agents long-poll one coordinator (a separate process);
/// an admin queues tasks for random agents and the time from queueing to the agent holding the
/// lease is measured in this one process. The baseline is a plain authenticated round trip
/// (`GET /v1/nodes`) in the same run.
///
/// Usage: lease-bench --url https://127.0.0.1:PORT --pki DIR --certs DIR --agents N --samples K
@main
struct LeaseBench {
    static func main() async throws {
        try await run(CommandLine.arguments)
    }

    nonisolated static func run(_ args: [String]) async throws {
        func value(_ flag: String) -> String {
            guard let i = args.firstIndex(of: flag), i + 1 < args.count else { fatalError("missing \(flag)") }
            return args[i + 1]
        }
        let url = value("--url")
        let pki = value("--pki")
        let certs = value("--certs")
        let agents = Int(value("--agents"))!
        let samples = Int(value("--samples"))!
        // With --inventory-copies N, sim0 keeps reporting inventories of N copies while the
        // others are sampled: a lease waits behind at most one batch of such a report.
        let inventoryCopies = args.firstIndex(of: "--inventory-copies").flatMap { Int(args[$0 + 1]) } ?? 0
        let ca = try SiteCA.open(pki)
        let names = (0..<agents).map { "sim\($0)" }
        for name in names where !FileManager.default.fileExists(atPath: "\(certs)/\(name).pem") {
            _ = try ca.issue(name: name, role: .agent, output: certs)
        }
        func endpoint(_ name: String) -> CoordinatorEndpoint {
            CoordinatorEndpoint(url: url, certificate: "\(certs)/\(name).pem", privateKey: "\(certs)/\(name).key", caCertificate: "\(pki)/ca.pem")
        }
        let received = Received()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for name in names {
                group.addTask {
                    try await CoordinatorClient.with(endpoint(name)) { client in
                        _ = try await client.register(RegisterRequest(version: "bench", storePath: "/", diskTotal: 0, diskFree: 0, kinds: []))
                        await received.ready()
                        while !Task.isCancelled {
                            let lease = try await client.send("POST", "/v1/tasks/lease", body: LeaseRequest(waitSeconds: 25), as: LeaseResponse.self)
                            guard let task = lease.task else { continue }
                            await received.got(task.id, at: DispatchTime.now().uptimeNanoseconds)
                            let report = name == "sim0" && inventoryCopies > 0 ? Self.inventory(inventoryCopies) : nil
                            _ = try await client.send(
                                "POST", "/v1/tasks/\(task.id)/result",
                                body: ResultRequest(fencingToken: task.fencingToken, error: nil, artifacts: report),
                                as: TaskInfo.self, timeout: .seconds(120))
                        }
                    }
                }
            }
            while await received.readyCount < agents { try await Task.sleep(for: .milliseconds(50)) }
            try await Task.sleep(for: .milliseconds(500))  // Let every agent's long-poll reach the coordinator.
            try await CoordinatorClient.with(endpoint("bench-admin")) { admin in
                var baseline: [Double] = []
                for _ in 0..<samples {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    _ = try await admin.nodes()
                    baseline.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
                }
                // The reporter: one inventory of sim0 after another, for as long as the sampling runs.
                let reporter = Task {
                    while inventoryCopies > 0, !Task.isCancelled {
                        let task = try await admin.submit(SubmitTaskRequest(kind: .inventory, node: "sim0"))
                        _ = try await received.wait(for: task.id)
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                defer { reporter.cancel() }
                let targets = inventoryCopies > 0 ? Array(names.dropFirst()) : names
                var latencies: [Double] = []
                for i in 0..<samples {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    let task = try await admin.submit(SubmitTaskRequest(kind: .inventory, node: targets[(i * 7919) % targets.count]))
                    let t1 = try await received.wait(for: task.id)
                    latencies.append(Double(t1 - t0) / 1e6)
                }
                func stats(_ xs: [Double]) -> String {
                    let s = xs.sorted()
                    return String(
                        format: "median %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms", s[s.count / 2], s[Int(Double(s.count) * 0.95)],
                        s[min(s.count - 1, Int(Double(s.count) * 0.99))], s.last!)
                }
                let ratio = latencies.sorted()[samples / 2] / baseline.sorted()[samples / 2]
                let load = inventoryCopies > 0 ? " while sim0 reports inventories of \(inventoryCopies) copies" : ""
                print("agents \(agents)\(load): lease latency \(stats(latencies)); baseline GET /v1/nodes \(stats(baseline)); median ratio \(String(format: "%.2f", ratio))")
            }
            group.cancelAll()
        }
    }
}

actor Received {
    private var times: [Int64: UInt64] = [:]
    private(set) var readyCount = 0
    func ready() { readyCount += 1 }
    func got(_ id: Int64, at time: UInt64) { times[id] = time }
    func wait(for id: Int64) async throws -> UInt64 {
        while true {
            if let t = times[id] { return t }
            try await Task.sleep(for: .microseconds(200))
        }
    }
}

extension LeaseBench {
    /// An inventory of `count` copies of sim0, unverified, as an agent would list its store.
    static func inventory(_ count: Int) -> ArtifactReport {
        ArtifactReport(
            complete: true,
            copies: (0..<count).map { i in
                let stamp = String(format: "2026/11/%02d/%06d", 1 + i % 28, i)
                return CopyReport(
                    path: "sim0/folder/conf/\(stamp)/conf.tar.gz", origin: "sim0", kind: "folder", source: "conf",
                    stamp: stamp, size: 4096, sha256: String(repeating: "a", count: 64), md5: nil, revision: nil,
                    created: nil, state: .unverified)
            })
    }
}
