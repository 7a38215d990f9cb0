import BotMaker
import Testing

@Suite struct BackoffTests {
    @Test func doublesFromTheBaseUpToTheCap() {
        let backoff = Backoff(base: 1, cap: 300, jitter: 0)
        #expect((1...10).map { backoff.delay(afterFailures: $0) } == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300])
        #expect(backoff.delay(afterFailures: 1000) == 300)
    }

    @Test func jitterStaysWithinItsSpreadAndUnderTheCap() {
        let backoff = Backoff(base: 10, cap: 100, jitter: 0.2)
        #expect(backoff.delay(afterFailures: 1, unit: 0) == 8)
        #expect(backoff.delay(afterFailures: 1, unit: 0.5) == 10)
        #expect(abs(backoff.delay(afterFailures: 1, unit: 0.999_999) - 12) < 0.001)
        #expect(backoff.delay(afterFailures: 20, unit: 0.999) <= 100)
        for failures in 1...12 {
            let delay = backoff.delay(afterFailures: failures)
            #expect(delay >= 0 && delay <= 100)
        }
    }
}
