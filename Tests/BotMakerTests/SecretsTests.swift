import BotMaker
import Foundation
import Testing
import TestSupport

@Suite struct SecretsTests {
    func mode(_ path: String) async throws -> String {
        try await runProcess(["stat", "-c", "%a", path]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func rootIsAlwaysAbsolute() {
        #expect(SecretsManager.getSecretsRoot(option: nil, environment: [:]).hasPrefix("/"))
        #expect(SecretsManager.getSecretsRoot(option: nil, environment: [:]).hasSuffix("/secrets"))
        #expect(SecretsManager.getSecretsRoot(option: nil, environment: ["BOTMAKER_SECRETS_DIR": "/srv/s"]) == "/srv/s")
        #expect(SecretsManager.getSecretsRoot(option: "rel/dir", environment: ["BOTMAKER_SECRETS_DIR": "/srv/s"])
            == FileManager.default.currentDirectoryPath + "/rel/dir")
        #expect(SecretsManager.getSecretsRoot(option: "/a/b/../c", environment: [:]) == "/a/c")
    }

    @Test func filesAre0600InA0700DirectoryAndWrittenWhole() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let secrets = SecretsManager(root: dir.file("secrets"))
        try secrets.set(botId: "bot-1", name: "API_TOKEN", value: Data("first".utf8))
        try secrets.set(botId: "bot-1", name: "API_TOKEN", value: Data("second".utf8))
        let file = dir.file("secrets/bot-1/API_TOKEN")
        await #expect(try mode(dir.file("secrets/bot-1")) == "700")
        await #expect(try mode(file) == "600")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "second")
        #expect(try secrets.list(botId: "bot-1") == ["API_TOKEN"])
        #expect(try secrets.remove(botId: "bot-1", name: "API_TOKEN"))
        #expect(try !secrets.remove(botId: "bot-1", name: "API_TOKEN"))
        #expect(try secrets.list(botId: "bot-1").isEmpty)
    }

    @Test(arguments: ["../etc", "..", "a/b", "/abs", "A", ""])
    func traversalIdsAreRefused(_ id: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let secrets = SecretsManager(root: dir.file("secrets"))
        #expect(throws: SecretsError.self) { try secrets.set(botId: id, name: "X", value: Data("v".utf8)) }
    }

    @Test(arguments: ["../X", "a.b", "A-B", String(repeating: "A", count: 65), "", ".X"])
    func badNamesAreRefused(_ name: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let secrets = SecretsManager(root: dir.file("secrets"))
        #expect(throws: SecretsError.self) { try secrets.set(botId: "a", name: name, value: Data("v".utf8)) }
    }

    @Test func symlinkEscapesAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let outside = dir.file("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.file("secrets"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.file("secrets/evil"), withDestinationPath: outside)
        let secrets = SecretsManager(root: dir.file("secrets"))
        #expect(throws: SecretsError.self) { try secrets.set(botId: "evil", name: "X", value: Data("v".utf8)) }
        #expect(throws: SecretsError.self) { try secrets.ensureDirectory(for: "evil") }
        #expect(throws: SecretsError.self) { try secrets.list(botId: "evil") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        // A symlinked secret file is replaced, never written through.
        try FileManager.default.createDirectory(atPath: dir.file("secrets/good"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.file("secrets/good/X"), withDestinationPath: dir.file("outside/target"))
        #expect(throws: SecretsError.self) { try secrets.set(botId: "good", name: "X", value: Data("v".utf8)) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("outside/target")))
    }
}
