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
        await TestDocker.removeImageReferences(from: registry.host)
    }

    func reconcile(_ deployment: Deployment, _ registry: TestRegistry, config: String? = nil, _ extra: [String] = []) async throws -> ProcessOutput {
        try await deployment.botmaker(["reconcile", "--registry-config", config ?? registry.configJSON] + extra)
    }

    /// `missing`: ten bots on an image that is only in the registry converge, with one pull between them.
    @Test(.timeLimit(.minutes(3))) func tenBotsOnOneMissingImageCauseOnePull() async throws {
        try await withRegistry("pull") { deployment, registry, client in
            let reference = try await registry.push(TestDocker.image, as: "bots/busybox", tag: "1")
            let names = (0..<10).map { "b\($0)" }
            let rows = names.map { "('\(deployment.bot($0))', '\(reference)')" }.joined(separator: ",")
            try await deployment.sqlite("INSERT INTO bots (id, image) VALUES \(rows)")
            let events = try await ImageEvents(in: deployment.dir, markerImage: TestDocker.image)
            defer { events.stop() }
            let output = try await reconcile(deployment, registry)
            #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
            #expect(try await deployment.containers(client).values.filter { $0.state == "running" }.count == 10)
            let pullCount = try await events.pulls(of: reference)
            #expect(pullCount == 1, "one pull for ten bots, seen \(pullCount); log:\n\(output.stderr.suffix(2000))")
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

    /// `always` and a tag pushed again with other content: the dry run reports the update and pulls nothing;
    /// `reconcile --check-images` recreates exactly the bots on that tag; a `missing` bot on it is repaired onto the
    /// image it ran (a moved tag is deployed only by an update); `images prune` then removes the old image.
    @Test(.timeLimit(.minutes(4))) func aMovedTagUpdatesAlwaysBotsOnlyAndRepairsKeepTheirImage() async throws {
        try await withRegistry("moved") { deployment, registry, client in
            let events = try await ImageEvents(in: deployment.dir, markerImage: TestDocker.image)
            defer { events.stop() }
            let tagged = try await registry.pushVariant(of: TestDocker.image, label: "v1-\(deployment.tag)", as: "bots/moving", tag: "1")
            let other = try await registry.push(TestDocker.image, as: "bots/steady", tag: "1")
            try await deployment.sqlite("""
                INSERT INTO bots (id, image, pull_policy) VALUES ('\(deployment.bot("a1"))', '\(tagged)', 'always'),
                    ('\(deployment.bot("a2"))', '\(tagged)', 'always'), ('\(deployment.bot("s"))', '\(other)', 'always'),
                    ('\(deployment.bot("m"))', '\(tagged)', 'missing')
                """)
            #expect(try await reconcile(deployment, registry).status == 0)
            let before = try await deployment.containers(client).mapValues(\.id)
            let oldImage = try await deployment.status("m", "image_id")

            // The same tag now holds the gateway image.
            try await registry.push(TestDocker.gatewayImage, as: "bots/moving", tag: "1")
            let pullsBefore = try await events.pulls(of: tagged)
            #expect(pullsBefore == 1, "the first reconcile pulled the tag once (the recorder sees pulls)")
            let dry = try await reconcile(deployment, registry, ["--dry-run", "--check-images", "--detailed-exitcode"])
            #expect(dry.status == 2)
            #expect(dry.stderr.contains("image update available: \(tagged)"), "\(dry.stderr)")
            #expect(dry.stderr.contains("image up to date: \(other)"), "\(dry.stderr)")
            #expect(try await events.pulls(of: tagged) == pullsBefore, "the dry run pulls nothing")

            let applied = try await reconcile(deployment, registry, ["--check-images", "--max-parallel-updates", "2"])
            #expect(applied.status == 0, "\(applied.stdout)\(applied.stderr)")
            let after = try await deployment.containers(client).mapValues(\.id)
            let name = { (bot: String) in "botmaker-\(deployment.bot(bot))" }
            #expect(after[name("a1")] != before[name("a1")] && after[name("a2")] != before[name("a2")], "always bots on the moved tag are updated")
            #expect(after[name("s")] == before[name("s")], "a bot on another tag is untouched")
            #expect(after[name("m")] == before[name("m")], "a missing-policy bot is not updated")
            #expect(try await deployment.status("a1", "image_id") != oldImage)

            // A repair of the missing-policy bot comes back on the image it ran, not on the tag's new content.
            _ = try await runProcess(["docker", "rm", "-f", name("m")])
            #expect(try await reconcile(deployment, registry).status == 0)
            let repaired = try await client.inspectContainer(name("m"))
            #expect(repaired.imageId == oldImage, "repaired onto \(repaired.imageId), ran \(oldImage)")

            // Nothing uses the old image once m is gone: prune removes what botmaker pulled, nothing else.
            try await deployment.sqlite("DELETE FROM bots WHERE id = '\(deployment.bot("m"))'")
            _ = try await reconcile(deployment, registry)
            let preview = try await deployment.botmaker(["images", "prune", "--dry-run"])
            #expect(preview.stdout.contains("would remove \(tagged) (\(Planner.shortImage(oldImage)))"), "\(preview.stdout)")
            #expect(try await runProcess(["docker", "image", "inspect", oldImage]).status == 0, "the dry run removes nothing")
            let pruned = try await deployment.botmaker(["images", "prune"])
            #expect(pruned.status == 0, "\(pruned.stderr)")
            #expect(try await runProcess(["docker", "image", "inspect", oldImage]).status != 0, "the old image is gone")
            #expect(try await runProcess(["docker", "image", "inspect", TestDocker.image]).status == 0, "an image botmaker did not pull stays")
            #expect(try await runProcess(["docker", "image", "inspect", other]).status == 0, "an image in use stays")
        }
    }

    /// While a slow pull runs (a proxy delays every chunk the registry sends), another bot is repaired at once, and
    /// `status` shows the pull's progress for the bot waiting on it.
    @Test(.timeLimit(.minutes(3))) func aSlowPullBlocksNoRepair() async throws {
        var proxied: String?
        try await withRegistry("slow") { deployment, registry, client in
            _ = try await registry.pushVariant(of: TestDocker.gatewayImage, label: "slow-\(deployment.tag)", randomBytes: 600_000,
                                               as: "bots/slow", tag: "1")
            let proxy = try await SlowProxy(upstreamPort: registry.port, in: deployment.dir)
            defer { proxy.stop() }
            proxied = "127.0.0.1:\(proxy.port)"
            let config = registry.dir.file("proxy.json")
            let auth = Data("\(registry.user):\(registry.password)".utf8).base64EncodedString()
            try #"{"auths":{"127.0.0.1:\#(proxy.port)":{"auth":"\#(auth)"}}}"#.write(toFile: config, atomically: true, encoding: .utf8)
            try await deployment.insertBots(["fast"])
            let service = try ServiceProcess(arguments: deployment.commonArguments + ["--registry-config", config, "--poll-interval", "0.05"],
                                             logPath: deployment.dir.file("run.log"))
            do {
                try await eventually(timeout: 30, "fast runs") { try await deployment.status("fast", "actual_state") == "running" }
                try await deployment.sqlite("INSERT INTO bots (id, image) VALUES ('\(deployment.bot("slow"))', '127.0.0.1:\(proxy.port)/bots/slow:1')")
                try await eventually(timeout: 30, "the slow bot waits for its pull") {
                    try await deployment.status("slow", "waiting_for").hasPrefix("pulling")
                }
                let fastBefore = try #require(try await deployment.containers(client)["botmaker-\(deployment.bot("fast"))"]?.id)
                _ = try await runProcess(["docker", "rm", "-f", "botmaker-\(deployment.bot("fast"))"])
                try await eventually(timeout: 30, "fast is repaired") {
                    let now = try await deployment.containers(client)["botmaker-\(deployment.bot("fast"))"]
                    return now != nil && now?.id != fastBefore && now?.state == "running"
                }
                #expect(try await deployment.containers(client)["botmaker-\(deployment.bot("slow"))"] == nil,
                        "the repair happened while the pull was still running")
                try await eventually(timeout: 90, "the slow bot runs once its image is in") {
                    try await deployment.status("slow", "actual_state") == "running"
                }
                #expect(proxy.bytesForwarded > 100_000, "the image came through the slow proxy")
                #expect(try await service.stop() == 0)
            } catch {
                Issue.record("service log:\n\(service.log.suffix(4000))")
                _ = try? await service.stop(signal: SIGKILL)
                throw error
            }
        }
        // The slow bot's image, pulled through the proxy, under the proxy's address.
        if let proxied { await TestDocker.removeImageReferences(from: proxied) }
    }
}
