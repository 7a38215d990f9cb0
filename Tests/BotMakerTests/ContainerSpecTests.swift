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
            #"{"command":["sh","-c","echo hi"],"environment":["A=1","B=two words","C=é/ü"],"image":"botmaker-test/busybox:latest","initProcess":true,"networkMode":"bridge","restartPolicy":"unless-stopped","secretsMount":"/srv/secrets/a:/run/secrets:ro","version":1}"#)
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
