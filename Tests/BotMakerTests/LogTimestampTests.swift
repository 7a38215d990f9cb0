import BotMaker
import Foundation
import Testing

struct LogTimestampTests {
    @Test func theEnginesTimestampIsSplitOffAndOrdersToTheNanosecond() throws {
        let (stamp, rest) = LogTimestamp.split(Array("2026-11-29T22:18:57.378700167Z out 4\n".utf8))
        let parsed = try #require(stamp)
        #expect(String(decoding: rest, as: UTF8.self) == "out 4\n")
        #expect(abs(try #require(parsed.date).timeIntervalSince1970 - 1_795_990_737.378700167) < 1e-5)
        let later = try #require(LogTimestamp.split(Array("2026-11-29T22:18:57.378700168Z x".utf8)).0)
        #expect(parsed < later)
        #expect(LogTimestamp.split(Array("no timestamp here at all".utf8)).0 == nil)
        // Podman: whole seconds, and the log file's own zone.
        let podman = LogTimestamp.split(Array("2026-11-29T23:18:57+01:00 out 5\n".utf8))
        #expect(String(decoding: podman.1, as: UTF8.self) == "out 5\n")
        #expect(podman.0?.date == Date(timeIntervalSince1970: 1_795_990_737))
        #expect(LogTimestamp.split(Array("short".utf8)).1 == Array("short".utf8))
    }
}
