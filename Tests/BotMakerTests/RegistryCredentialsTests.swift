import BotMaker
import Foundation
import Testing
import TestSupport

/// Registry credentials as Docker keeps them: found for the right registry only, helpers run as the CLI runs them,
/// and never shown.
@Suite struct RegistryCredentialsTests {
    func store(_ json: String, in dir: TemporaryDirectory, path: String? = nil) throws -> RegistryCredentialStore {
        let file = dir.file("config.json")
        try json.write(toFile: file, atomically: true, encoding: .utf8)
        return RegistryCredentialStore(path: file, environment: ["PATH": path ?? "/usr/bin:/bin"])
    }

    @Test func referencesNameTheirRegistry() {
        #expect(ImageReference("ghcr.io/openclaw/openclaw:latest").registry == "ghcr.io")
        #expect(ImageReference("localhost:5000/bots/x:1").registry == "localhost:5000")
        #expect(ImageReference("localhost/bots/x").registry == "localhost")
        #expect(ImageReference("busybox").registry == "docker.io")
        #expect(ImageReference("library/busybox:1").registry == "docker.io")
        #expect(ImageReference("docker.io/library/busybox").registry == "docker.io")
        let pinned = ImageReference("registry:5000/a/b:2@sha256:" + String(repeating: "a", count: 64))
        #expect(pinned.registry == "registry:5000" && pinned.name == "registry:5000/a/b" && pinned.tag == "2")
        #expect(pinned.tagOrDigest.hasPrefix("sha256:"))
        #expect(ImageReference("x").pullKey == "x:latest")
        // Docker Hub's spellings of one image are one pull and match the engine's RepoDigests (`busybox@sha256:…`).
        #expect(ImageReference("docker.io/library/busybox").pullKey == ImageReference("busybox").pullKey)
        #expect(ImageReference("library/busybox:latest").pullKey == "busybox:latest")
        #expect(ImageReference("index.docker.io/acme/bot:2").registry == "docker.io")
        let digest = "sha256:" + String(repeating: "b", count: 64)
        let info = ImageInfo(id: "sha256:1", repoDigests: ["localhost:5000/busybox@sha256:x", "busybox@\(digest)"])
        #expect(info.digest(for: ImageReference("docker.io/library/busybox:1")) == "busybox@\(digest)")
        #expect(ImageInfo(id: "sha256:1", repoDigests: ["localhost:5000/busybox@sha256:x"]).digest(for: ImageReference("busybox")) == nil,
                "never another registry's digest")
    }

    @Test func authsAreMatchedByRegistryOnly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let basic = Data("alice:s3cret".utf8).base64EncodedString()
        let config = try store(#"""
            {"auths": {"https://ghcr.io/v2/": {"auth": "\#(basic)"}, "https://index.docker.io/v1/": {"identitytoken": "tok-123"},
                       "127.0.0.1:5000": {"auth": "\#(basic)"}}}
            """#, in: dir)
        let ghcr = try #require(try config.credentials(for: "ghcr.io"))
        #expect(ghcr.username == "alice" && ghcr.password == "s3cret")
        #expect(try config.credentials(for: "docker.io")?.identityToken == "tok-123")
        #expect(try config.credentials(for: "127.0.0.1:5000")?.username == "alice")
        #expect(try config.credentials(for: "quay.io") == nil, "no credentials are sent to a registry they do not belong to")
        #expect(try config.credentials(for: "127.0.0.1:5001") == nil)
        #expect(!ghcr.description.contains("s3cret"))
        #expect(!"\(ghcr)".contains("s3cret") && !String(reflecting: ghcr).contains("alice:s3cret"))
        // The header is base64url JSON Docker decodes.
        let header = ghcr.header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let decoded = try #require(Data(base64Encoded: header + String(repeating: "=", count: (4 - header.count % 4) % 4)))
        let object = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: String])
        #expect(object == ["username": "alice", "password": "s3cret", "serveraddress": "ghcr.io"])
    }

    @Test func credentialHelpersAreRunLikeTheDockerCLI() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let helper = dir.file("docker-credential-fake")
        try """
            #!/bin/sh
            read server
            if [ "$server" = "ghcr.io" ]; then echo '{"ServerURL":"ghcr.io","Username":"bob","Secret":"from-helper"}'; exit 0; fi
            if [ "$server" = "https://index.docker.io/v1/" ]; then echo '{"ServerURL":"x","Username":"<token>","Secret":"hub-token"}'; exit 0; fi
            echo "credentials not found in native keychain"; exit 1
            """.write(toFile: helper, atomically: true, encoding: .utf8)
        chmod(helper, 0o755)
        let config = try store(#"{"credHelpers": {"ghcr.io": "fake"}, "credsStore": "fake"}"#, in: dir, path: dir.path + ":/usr/bin:/bin")
        let ghcr = try #require(try config.credentials(for: "ghcr.io"))
        #expect(ghcr.username == "bob" && ghcr.password == "from-helper")
        #expect(try config.credentials(for: "docker.io")?.identityToken == "hub-token")
        #expect(try config.credentials(for: "quay.io") == nil, "the store says not found: no credentials, not an error")
    }
}
