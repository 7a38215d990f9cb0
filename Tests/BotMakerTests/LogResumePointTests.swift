import BotMaker
import DockerEngine
import Testing

/// What a resumed `logs -f` read shows, given what was shown before: each entry once, never one lost.
struct LogResumePointTests {
    typealias Line = (stamp: String, stream: StreamFrame.Stream, text: String)

    func stamp(_ text: String) -> LogTimestamp { LogTimestamp(text: text) }

    /// Shows `before` (as a first read did), then returns what a resumed read of `log` shows (stderr lines marked `!`).
    func resumed(after before: [Line], reading log: [Line]) -> [String] {
        var progress = LogResumePoint()
        for line in before { progress.shown(stamp(line.stamp), line.stream, Array(line.text.utf8)) }
        var filter = progress.resumedRead()
        return log.filter { filter.isNew(stamp($0.stamp), $0.stream, Array($0.text.utf8)) }.map { ($0.stream == .stderr ? "!" : "") + $0.text }
    }

    @Test func nanosecondStampsResumeRightAfterTheLastEntryShown() {
        let log: [Line] = [("2026-11-30T05:00:00.000000001Z", .stdout, "a"), ("2026-11-30T05:00:00.000000002Z", .stderr, "b"),
                           ("2026-11-30T05:00:01.000000003Z", .stdout, "c")]
        #expect(resumed(after: Array(log.prefix(2)), reading: log) == ["c"])
        #expect(resumed(after: [], reading: log) == ["a", "!b", "c"])
    }

    /// Podman stamps to the second: a restart in the second of the last entry shown shares its stamp.
    @Test func aRestartInTheSameSecondIsShownWhole() {
        let first: [Line] = [("2026-11-30T05:38:29Z", .stdout, "out-2"), ("2026-11-30T05:38:29Z", .stderr, "err-2")]
        let log = first + [("2026-11-30T05:38:29Z", .stdout, "start 1"), ("2026-11-30T05:38:29Z", .stdout, "out-1"),
                           ("2026-11-30T05:38:29Z", .stderr, "err-1"), ("2026-11-30T05:38:30Z", .stdout, "out-2")]
        #expect(resumed(after: first, reading: log) == ["start 1", "out-1", "!err-1", "out-2"])
    }

    /// Seen in a test on Podman: its follow stream carried on into the next run and gave only that run's `out-1`.
    @Test func aFollowStreamThatGaveSomeOfTheNextRunLosesAndRepeatsNothing() {
        let run1: [Line] = [("2026-11-30T05:38:28Z", .stdout, "start 1"), ("2026-11-30T05:38:28Z", .stdout, "out-1"),
                            ("2026-11-30T05:38:29Z", .stdout, "out-2")]
        let run2: [Line] = [("2026-11-30T05:38:30Z", .stdout, "start 1"), ("2026-11-30T05:38:30Z", .stdout, "out-1"),
                            ("2026-11-30T05:38:30Z", .stderr, "err-1"), ("2026-11-30T05:38:31Z", .stdout, "out-2")]
        #expect(resumed(after: run1 + [run2[1]], reading: run1 + run2) == ["start 1", "!err-1", "out-2"])
    }

    /// Docker stamps stdout and stderr apart, so the file can hold an entry stamped a little earlier after a later one.
    @Test func anEntryStampedEarlierThanTheLastShownMovesNothingBack() {
        let log: [Line] = [("2026-11-30T05:00:00.000000002Z", .stdout, "a"), ("2026-11-30T05:00:00.000000001Z", .stderr, "b"),
                           ("2026-11-30T05:00:00.000000003Z", .stdout, "c")]
        #expect(resumed(after: Array(log.prefix(2)), reading: log) == ["c"])
    }

    /// The log file's zone changed (Podman writes local time): compared by time, not as text.
    @Test func stampsInTwoZonesCompareByTime() {
        #expect(LogTimestamp(text: "2026-11-30T06:00:00+01:00") < LogTimestamp(text: "2026-11-30T05:30:00+00:00"))
        #expect(!(LogTimestamp(text: "2026-11-30T05:00:00.5Z") < LogTimestamp(text: "2026-11-30T05:00:00.123456789Z")))
        let shown: [Line] = [("2026-11-30T06:00:00+01:00", .stdout, "a")]
        #expect(resumed(after: shown, reading: shown + [("2026-11-30T05:00:01+00:00", .stdout, "b")]) == ["b"])
    }

    @Test func theSameLineTwiceInOneSecondIsShownTwice() {
        let beat: Line = ("2026-11-30T05:00:00Z", .stdout, "beat")
        #expect(resumed(after: [beat], reading: [beat, beat]) == ["beat"])
        // The same text on the other stream is another entry.
        #expect(resumed(after: [beat], reading: [beat, (beat.stamp, .stderr, "beat")]) == ["!beat"])
    }
}
