@testable import BotMaker
import Foundation
import Testing

@Suite struct ValidationTests {
    static func row(id: String = "a", image: String? = "img:1", environment: String? = "[]", command: String? = nil,
                    state: String? = "running") -> BotRow {
        BotRow(id: id, image: image, environment: environment, command: command, desiredState: state)
    }

    static func message(_ row: BotRow) -> String? {
        if case .invalid(let bad) = BotValidation.validate(row, secretsRoot: "/s") { return bad.message }
        return nil
    }

    @Test(arguments: [
        "busybox", "busybox:latest", "library/busybox:1.36", "ghcr.io/acme/openclaw:1.2.3", "localhost:5000/x/y:tag",
        "registry.example.com:443/a/b_c/d__e/f-g/h.i", "busybox@sha256:" + String(repeating: "a", count: 64),
        "botmaker-test/busybox:latest", "a:" + String(repeating: "t", count: 128), "MyRegistry.io/x",
    ])
    func goodImages(_ image: String) {
        #expect(BotValidation.imageProblem(image) == nil, "\(image)")
    }

    @Test(arguments: [
        "", " ", "Busybox", "busy box", "busybox:", ":tag", "a//b", "a/", "/a", "a:b:c", "a:-tag", "a:" + String(repeating: "t", count: 129),
        "a@sha256:xyz", "a@", "a\u{0}b", "UPPER/case", "a\nb", "ümlaut", "a__-b", "-a", "a-", "host:99999999/a", "a/b$c", "a;rm -rf /",
    ])
    func badImages(_ image: String) {
        #expect(BotValidation.imageProblem(image) != nil, "\(image.debugDescription)")
    }

    @Test(arguments: [#"[]"#, #"["A=1"]"#, #"["A="]"#, #"["_x=1","B2=a=b=c"]"#, #"["PATH=/bin:/usr/bin","LANG=é"]"#])
    func goodEnvironments(_ json: String) {
        #expect(Self.message(Self.row(environment: json)) == nil, "\(json)")
    }

    @Test(arguments: [
        (#"{"A":"1"}"#, "environment: must be a JSON array"),
        (#"["FOO"]"#, "environment: [0] must be KEY=VALUE (no '=' found)"),
        (#"["=x"]"#, "environment: [0] key must match [A-Za-z_][A-Za-z0-9_]*"),
        (#"["1A=x"]"#, "environment: [0] key must match"),
        (#"["A-B=x"]"#, "environment: [0] key must match"),
        (#"["A=1",2]"#, "environment: [1] must be a string"),
        (#"["A=1","A=2"]"#, "environment: [1] duplicate key A"),
        (#"["A=x\u0000y"]"#, "environment: [0] A: value contains a NUL byte"),
        ("not json", "environment: not valid JSON"),
    ])
    func badEnvironments(_ json: String, _ expected: String) {
        let message = Self.message(Self.row(environment: json))
        #expect(message?.hasPrefix(expected) == true, "\(json): \(message ?? "valid")")
    }

    @Test func messagesNeverQuoteValues() {
        let secret = "sk-live-SUPERSECRET"
        for json in [#"["\#(secret)"]"#, #"["A=\#(secret)","A=\#(secret)"]"#, #"["A=\#(secret)\u0000"]"#, #"["9\#(secret)=x"]"#] {
            let message = Self.message(Self.row(environment: json)) ?? ""
            #expect(!message.isEmpty)
            #expect(!message.contains("SUPERSECRET"), "\(message)")
        }
        let long = #"["A=\#(String(repeating: "x", count: 40_000))"]"#
        #expect(Self.message(Self.row(environment: long))?.contains("longer than") == true)
    }

    @Test func otherFieldsAreChecked() {
        #expect(Self.message(Self.row(id: "Bad_Id"))?.hasPrefix("id:") == true)
        #expect(Self.message(Self.row(id: "a\u{0}../etc"))?.hasPrefix("id:") == true)
        #expect(Self.message(Self.row(state: "paused")) == "desired_state must be running, stopped or absent")
        #expect(Self.message(Self.row(image: nil)) == "image is missing")
        #expect(Self.message(Self.row(command: "[]"))?.hasPrefix("command: must not be empty") == true)
        #expect(Self.message(Self.row(command: #"["sh",1]"#)) == "command: [1] must be a string")
        #expect(Self.message(Self.row(command: #"["sh","-c","echo hi"]"#)) == nil)
    }

    @Test func validRowBecomesADesiredBot() throws {
        let row = BotRow(id: "bot-1", image: "img:1", environment: #"["A=1","B=2"]"#, command: #"["sh"]"#, desiredState: "stopped",
                         restartRequestedAt: "2026-01-01 00:00:00", generation: 7)
        guard case .valid(let bot) = BotValidation.validate(row, secretsRoot: "/srv/secrets") else {
            Issue.record("expected valid")
            return
        }
        #expect(bot.config == ContainerConfig(image: "img:1", environment: ["A=1", "B=2"], secretsPath: "/srv/secrets/bot-1", command: ["sh"],
                                              dataPath: "/srv/data/bot-1"))
        #expect(bot.desiredState == .stopped)
        #expect(bot.generation == 7)
        #expect(bot.restartRequestedAt == "2026-01-01 00:00:00")
    }

    @Test(arguments: ["a", "a-b", "0", String(repeating: "a", count: 63)])
    func goodIds(_ id: String) { #expect(BotValidation.idProblem(id) == nil) }

    @Test(arguments: ["", "-a", "a-", "A", "a_b", "../etc", "a/b", "a.b", String(repeating: "a", count: 64), "é", "a b"])
    func badIds(_ id: String) { #expect(BotValidation.idProblem(id) != nil) }

    /// Arbitrary strings in every field never crash validation and always give an answer.
    @Test func fuzzedRowsNeverCrash() {
        var generator = SplitMix64(seed: 0xB07)
        let alphabet: [String] = ["a", "Z", "0", "-", "_", "=", ":", "/", "@", ".", " ", "\"", "[", "]", ",", "{", "}", "\\", "\u{0}",
                                  "é", "🤖", "\n", "$(", "`", ";", "sha256:", "..", "\\u0000", "null", "true", "1e999"]
        func randomString() -> String {
            let length = Int(generator.next() % 40)
            return (0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }.joined()
        }
        func maybeJSONArray() -> String {
            switch generator.next() % 4 {
            case 0: return randomString()
            case 1: return "[" + (0..<Int(generator.next() % 4)).map { _ in "\"" + randomString() + "\"" }.joined(separator: ",") + "]"
            case 2: return "[" + String(repeating: "[", count: Int(generator.next() % 3000)) + "]"
            default: return "[\"" + randomString() + "=" + randomString() + "\"]"
            }
        }
        var valid = 0, invalid = 0
        for _ in 0..<5000 {
            let row = BotRow(id: randomString(), image: randomString(), environment: maybeJSONArray(), command: generator.next() % 2 == 0 ? nil : maybeJSONArray(),
                             desiredState: ["running", "stopped", "absent", randomString()][Int(generator.next() % 4)])
            switch BotValidation.validate(row, secretsRoot: "/s") {
            case .valid: valid += 1
            case .invalid(let bad): invalid += 1; #expect(!bad.message.isEmpty)
            }
        }
        #expect(valid + invalid == 5000)
        #expect(invalid > 0)
    }
}

/// A small deterministic PRNG for reproducible fuzzing.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
