import BotMaker
import DockerEngine
import Foundation
import Testing
import TestSupport

/// Issue 12, images, against a real registry (Debian's docker-registry with htpasswd auth) and the real engine.
@Suite(.enabled(if: TestDocker.shouldRun, "no Docker engine (set BOTMAKER_REQUIRE_DOCKER=1 to make this a failure)"))
struct ImageTests {
    func withRegistry(_ prefix: String, _ body: (Deployment, TestRegistry, DockerClient) async throws -> Void) async throws {
        let deployment = try Deployment(prefix)
        defer { deployment.remove() }
        let registry = try await TestRegistry()
        defer { registry.stop() }
        try await TestDocker.withClient(cleaning: deployment.tag) { client in
            #expect(try await deployment.botmaker(["migrate"]).status == 0)
            do {
                try await body(deployment, registry, client)
            } catch {
                Issue.record("registry log:\n\(registry.log.suffix(3000))")
                throw error
            }
        }
        // Images pulled from this registry go with it.
        let images = try await runProcess(["docker", "images", "-q", "--filter", "reference=\(registry.host)/*/*"])
        for id in Set(images.stdout.split(separator: "\n").map(String.init)) { _ = try? await runProcess(["docker", "rmi", "-f", id]) }
    }

    func reconcile(_ deployment: Deployment, _ registry: TestRegistry, config: String? = nil, _ extra: [String] = []) async throws -> ProcessOutput {
        try await deployment.botmaker(["reconcile", "--registry-config", config ?? registry.configJSON] + extra)
    }

    /// Pulls (`image` events with action `pull`) the engine recorded for `reference` since `since`.
    func pulls(of reference: String, since: Date) async throws -> Int {
        let output = try await runProcess(["docker", "events", "--since", String(Int(since.timeIntervalSince1970) - 1), "--until",
                                           String(Int(Date().timeIntervalSince1970) + 1), "--filter", "type=image", "--filter", "event=pull",
                                           "--format", "{{.ID}}"])
        return output.stdout.split(separator: "\n").filter { $0 == reference }.count
    }

    /// `missing`: ten bots on an image that is only in the registry converge, with one pull between them.
    @Test(.timeLimit(.minutes(3))) func tenBotsOnOneMissingImageCauseOnePull() async throws {
        try await withRegistry("pull") { deployment, registry, client in
            let reference = try await registry.push(TestDocker.image, as: "bots/busybox", tag: "1")
            let names = (0..<10).map { "b\($0)" }
            let rows = names.map { "('\(deployment.bot($0))', '\(reference)')" }.joined(separator: ",")
            try await deployment.sqlite("INSERT INTO bots (id, image) VALUES \(rows)")
            let started = Date()
            let output = try await reconcile(deployment, registry)
            #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
            #expect(try await deployment.containers(client).values.filter { $0.state == "running" }.count == 10)
            #expect(try await pulls(of: reference, since: started) == 1, "one pull for ten bots")
            let imageId = try await deployment.status("b0", "image_id")
            #expect(imageId.hasPrefix("sha256:"))
            #expect(try await deployment.status("b0", "image_digest").hasPrefix("\(registry.host)/bots/busybox@sha256:"))
            for text in [output.stdout, output.stderr, try await deployment.sqlite(".dump")] {
                #expect(!text.contains(registry.password), "the registry password leaked")
            }
        }
    }

    /// `never`: IMAGE_NOT_FOUND, and the registry sees no request.
    @Test(.timeLimit(.minutes(2))) func neverMakesNoRegistryRequest() async throws {
        try await withRegistry("never") { deployment, registry, _ in
            let reference = try await registry.push(TestDocker.image, as: "bots/never", tag: "1")
            try await deployment.sqlite("INSERT INTO bots (id, image, pull_policy) VALUES ('\(deployment.bot("n"))', '\(reference)', 'never')")
            let before = registry.requestCount
            _ = try await reconcile(deployment, registry)
            #expect(try await deployment.status("n", "last_error_code") == "IMAGE_NOT_FOUND")
            #expect(try await deployment.status("n", "last_error_message").contains("pull_policy is never"))
            #expect(registry.requestCount == before, "no request reached the registry")
        }
    }

    /// Each failure has its code, with the registry's message; the password never appears anywhere.
    @Test(.timeLimit(.minutes(3))) func pullFailuresAreClassified() async throws {
        try await withRegistry("fail") { deployment, registry, _ in
            let reference = try await registry.push(TestDocker.image, as: "bots/fail", tag: "1")
            let empty = registry.dir.file("empty.json")
            try "{}".write(toFile: empty, atomically: true, encoding: .utf8)
            try await deployment.sqlite("INSERT INTO bots (id, image) VALUES ('\(deployment.bot("x"))', '\(reference)')")
            var outputs: [ProcessOutput] = []
            func attempt(_ config: String, _ expected: String, _ what: String) async throws {
                try await deployment.sqlite("DELETE FROM bot_status")
                outputs.append(try await reconcile(deployment, registry, config: config))
                #expect(try await deployment.status("x", "last_error_code") == expected, "\(what)")
            }
            try await attempt(try registry.wrongPasswordConfig(), "AUTH_FAILED", "wrong password")
            try await attempt(empty, "AUTH_FAILED", "no credentials")
            try await deployment.sqlite("UPDATE bots SET image = '\(registry.host)/bots/fail:nope'")
            try await attempt(registry.configJSON, "IMAGE_NOT_FOUND", "unknown tag")
            #expect(try await deployment.status("x", "last_error_message").contains("manifest unknown"))
            try await deployment.sqlite("UPDATE bots SET image = '\(reference)'")
            registry.stop()
            try await attempt(registry.configJSON, "PULL_FAILED", "registry stopped")
            #expect(try await deployment.status("x", "last_error_message").contains("connection refused"))
            let dump = try await deployment.sqlite(".dump")
            for text in outputs.flatMap({ [$0.stdout, $0.stderr] }) + [dump] {
                #expect(!text.contains(registry.password), "the registry password leaked")
            }
        }
    }

    /// Pull before stop: a running bot whose image changes to one that cannot be pulled keeps its container.
    @Test(.timeLimit(.minutes(2))) func aFailedPullLeavesTheRunningBotAlone() async throws {
        try await withRegistry("keep") { deployment, registry, client in
            let reference = try await registry.push(TestDocker.image, as: "bots/keep", tag: "1")
            try await deployment.sqlite("INSERT INTO bots (id, image) VALUES ('\(deployment.bot("k"))', '\(reference)')")
            #expect(try await reconcile(deployment, registry).status == 0)
            let before = try #require(try await deployment.containers(client)["botmaker-\(deployment.bot("k"))"])
            try await deployment.sqlite("UPDATE bots SET image = '\(registry.host)/bots/keep:missing'")
            let output = try await reconcile(deployment, registry)
            #expect(output.status == 1)
            let after = try #require(try await deployment.containers(client)["botmaker-\(deployment.bot("k"))"])
            #expect(after.id == before.id)
            #expect(after.state == "running")
            #expect(try await deployment.status("k", "last_error_code") == "IMAGE_NOT_FOUND")
        }
    }
}
