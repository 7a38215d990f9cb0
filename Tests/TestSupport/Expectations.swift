import BotMaker

/// Runs `body` and returns the ``ContainerError`` it threw, or nil when it succeeded or threw something else.
public func containerError(_ body: () async throws -> Void) async -> ContainerError? {
    do {
        try await body()
        return nil
    } catch let error as ContainerError {
        return error
    } catch {
        return ContainerError(.startFailed, "unexpected error type: \(error)")
    }
}
