import BotMaker
import Foundation
import NIOConcurrencyHelpers

/// Prints `botmaker reconcile` as it goes: the plan first, then each action's line with its result as soon as its
/// worker is done (`→ done 0.4 s`, `→ FAILED CODE: …`), then the tally. On a terminal one live line stays at the bottom
/// (`applying 37/100 · 4 in progress · pulling 42% of 260 MB (…)`); never when stdout is a pipe or a file.
final class ProgressPrinter: ReconcileObserver {
    private struct State {
        var width = 0
        var total = 0
        var finished = 0
        var failed = 0
        var shown: Set<String> = []
        var liveShown = false
        var done = false
        var controller: Controller?
        var started = ContinuousClock.now
    }

    private let live: Bool
    private let state = NIOLockedValueBox(State())
    private let ticker = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(live: Bool = isatty(STDOUT_FILENO) == 1) {
        self.live = live
    }

    func planned(_ view: FleetView, working controller: Controller) {
        let text = PlanRenderer.text(view.plan)
        state.withLockedValue { state in
            state.width = PlanRenderer.nameWidth(view.plan)
            state.total = view.plan.mutatingActions.count
            state.shown = Set(text.split(separator: "\n").map(String.init))
            state.controller = controller
            state.started = .now
        }
        emit(text + "\n")
        guard live, !view.plan.mutatingActions.isEmpty else { return }
        ticker.withLockedValue { task in
            task = Task { [weak self] in
                while !Task.isCancelled {
                    await self?.redraw()
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
        }
    }

    func reported(_ report: KeyReport) {
        let lines = state.withLockedValue { state -> [String] in
            var lines: [String] = []
            var results = report.results[...]
            for action in report.actions {
                if action.kind.isMutating, let index = results.firstIndex(where: { $0.action.kind == action.kind && $0.action.botId == action.botId }) {
                    let result = results.remove(at: index)
                    state.finished += 1
                    if !result.succeeded { state.failed += 1 }
                    lines.append(PlanRenderer.line(action, width: state.width, result: result, timed: true))
                } else if !action.kind.isMutating {
                    // What a worker found on its own (a wait, a block) when it is not in the plan already.
                    let line = PlanRenderer.line(action, width: state.width)
                    if state.shown.insert(line).inserted { lines.append(line) }
                }
            }
            return lines
        }
        if !lines.isEmpty { emit(lines.joined(separator: "\n") + "\n") }
    }

    /// Ends the live line and prints the tally.
    func finish(results: [ActionResult]) {
        ticker.withLockedValue { $0?.cancel(); $0 = nil }
        state.withLockedValue { $0.done = true }
        if results.isEmpty { emit(""); return }
        let failed = results.count { !$0.succeeded }
        emit("Applied: \(results.count - failed) succeeded, \(failed) failed.\n")
    }

    /// Writes `text` above the live line (which is then drawn again by the ticker).
    func emit(_ text: String) {
        state.withLockedValue { state in
            FileHandle.standardOutput.write(Data(((state.liveShown ? "\r\u{1B}[2K" : "") + text).utf8))
            state.liveShown = false
        }
    }

    private func redraw() async {
        guard let (controller, finished, total, started) = state.withLockedValue({ state in
            state.controller.map { ($0, state.finished, max(state.total, state.finished), state.started) }
        }) else { return }
        var parts = ["applying \(finished)/\(total)"]
        let busy = controller.queue.stats.busy
        if busy > 0 { parts.append("\(busy) in progress") }
        parts += await controller.puller.activePulls.prefix(2)
        parts.append("\(Int((ContinuousClock.now - started).seconds)) s")
        let line = parts.joined(separator: " · ")
        state.withLockedValue { state in
            guard !state.done else { return }
            FileHandle.standardOutput.write(Data(("\r\u{1B}[2K" + line).utf8))
            state.liveShown = true
        }
    }
}
