import BotMaker
import Foundation
import Testing
import TestSupport

@Suite struct ContainerSpecTests {
    static let config = ContainerConfig(
        image: "botmaker-test/busybox:latest", environment: ["A=1", "B=two words", "C=é/ü"], secretsPath: "/srv/secrets/a",
        command: ["sh", "-c", "echo hi"])

    /// The encoding is a compatibility contract: a change here recreates every container in the field.
    @Test func canonicalEncodingIsPinned() {
        #expect(String(decoding: Self.config.spec.canonicalEncoding, as: UTF8.self) ==
            #"{"capDrop":["NET_ADMIN","NET_RAW"],"command":["sh","-c","echo hi"],"environment":["A=1","B=two words","C=é/ü"],"image":"botmaker-test/busybox:latest","initProcess":true,"logging":"json-file max-file=3 max-size=10m","networkMode":"botmaker","noNewPrivileges":true,"pidsLimit":512,"restartPolicy":"unless-stopped","secretsMount":"/srv/secrets/a:/run/secrets:ro","version":2}"#)
    }

    /// Optional fields at their neutral value are left out, so a field added later with a neutral default changes no
    /// existing hash; set, each one is in the encoding.
    @Test func neutralFieldsAreLeftOutAndSetOnesAreIn() {
        var config = Self.config
        config.dataPath = "/srv/data/a"
        #expect(config.specHash == Self.config.specHash, "a data path without mounts is not part of the container")
        config.mounts = [StateMount(name: "state", target: "/home/node/.openclaw")]
        config.ports = [PortMapping(containerPort: 18789)]
        config.health = HealthOverride(command: ["true"], intervalSeconds: 5)
        config.user = "1000:1000"
        config.memoryBytes = 1 << 30
        config.nanoCPUs = 1_500_000_000
        config.security = .strict
        config.secretEnvironment = [SecretEnvironment(key: "TOKEN", secret: "gateway_token")]
        config.secretDigests = ["gateway_token": "d1"]
        let text = String(decoding: config.spec.canonicalEncoding, as: UTF8.self)
        for part in [#""mounts":["/srv/data/a/state:/home/node/.openclaw"]"#, #""ports":["127.0.0.1:auto->18789/tcp"]"#,
                     #""healthCommand":["true"]"#, #""healthIntervalSeconds":5"#, #""user":"1000:1000""#, #""memoryBytes":1073741824"#,
                     #""nanoCPUs":1500000000"#, #""capDrop":["ALL"]"#, #""readOnlyRoot":true"#, #""tmpfs":{"/tmp":"rw,noexec,nosuid,size=64m"}"#,
                     #""secretEnvironment":["TOKEN=@secret:gateway_token#d1"]"#] {
            #expect(text.contains(part), "\(part) in \(text)")
        }
        var rotated = config
        rotated.secretDigests = ["gateway_token": "d2"]
        #expect(rotated.specHash != config.specHash)
        #expect(rotated.spec.differences(from: config.spec) == ["environment from secrets"])
    }

    @Test func hashIsSHA256OfTheEncoding() async throws {
        let encoding = String(decoding: Self.config.spec.canonicalEncoding, as: UTF8.self)
        let output = try await TestShell.sha256(of: encoding)
        #expect(Self.config.specHash == output)
        #expect(Self.config.specHash.count == 64)
    }

    @Test func equalSpecsHashEqualAndAnyFieldChangesTheHash() {
        var copy = Self.config
        #expect(copy.specHash == Self.config.specHash)
        let variants: [(inout ContainerConfig) -> Void] = [
            { $0.image = "other:1" },
            { $0.environment = ["B=two words", "A=1", "C=é/ü"] },
            { $0.environment.append("D=") },
            { $0.command = nil },
            { $0.secretsPath = "/srv/secrets/b" },
        ]
        var hashes = Set([Self.config.specHash])
        for change in variants {
            copy = Self.config
            change(&copy)
            hashes.insert(copy.specHash)
        }
        #expect(hashes.count == variants.count + 1)
    }

    @Test func differencesNameTheFields() {
        var other = Self.config
        other.image = "x:2"
        other.environment = []
        #expect(other.spec.differences(from: Self.config.spec) == ["image", "environment"])
        #expect(Self.config.spec.differences(from: Self.config.spec).isEmpty)
    }

    @Test func appliedSpecRoundTripsThroughJSON() throws {
        let decoded = try JSONDecoder().decode(ContainerSpec.self, from: Self.config.spec.canonicalEncoding)
        #expect(decoded == Self.config.spec)
    }
}

enum TestShell {
    /// SHA-256 by the system's `sha256sum`, independent of the code under test.
    static func sha256(of text: String) async throws -> String {
        String(try await runProcess(["sha256sum"], stdin: text).stdout.prefix(64))
    }
}
