import BotMaker
import DockerEngine
import Testing

@Suite struct ContainerErrorTests {
    @Test(arguments: [
        (404, ContainerError.Code.notFound),
        (409, .alreadyExists),
        (400, .startFailed),
        (500, .startFailed),
    ])
    func httpStatusesMapToCodes(status: Int, code: ContainerError.Code) {
        let wrapped = wrapDockerError(DockerEngineError.http(status: status, message: "daemon says no", operation: "x"), botId: "a")
        #expect(wrapped.code == code)
        #expect(wrapped.message == "daemon says no")
        #expect(wrapped.botId == "a")
        #expect(wrapped.underlying is DockerEngineError)
    }

    @Test func unreachableAndTimeoutAreNetworkErrors() {
        #expect(wrapDockerError(DockerEngineError.unreachable(host: "unix:///x", reason: "ENOENT"), botId: nil).code == .networkError)
        #expect(wrapDockerError(DockerEngineError.timeout(operation: "ping", seconds: 5), botId: nil).code == .networkError)
    }

    /// Regression: an old API version and a malformed DOCKER_HOST were reported as NETWORK_ERROR.
    @Test func configurationAndCompatibilityAreNotNetworkErrors() {
        #expect(wrapDockerError(DockerEngineError.unsupportedAPIVersion(server: "1.30", minimum: "1.41"), botId: nil).code == .engineIncompatible)
        #expect(wrapDockerError(DockerEngineError.decoding(operation: "list", reason: "?"), botId: nil).code == .engineIncompatible)
        #expect(wrapDockerError(DockerEngineError.invalidHost("bad DOCKER_HOST"), botId: nil).code == .configError)
    }

    @Test func fallbackIsUsedForOtherFailures() {
        let error = DockerEngineError.http(status: 500, message: "boom", operation: "stop")
        #expect(wrapDockerError(error, botId: "a", fallback: .stopFailed).code == .stopFailed)
        struct Other: Error {}
        #expect(wrapDockerError(Other(), botId: "a").code == .startFailed)
    }

    @Test func containerErrorsPassThroughUnchanged() {
        let original = ContainerError(.notManaged, "left alone", botId: "a")
        let wrapped = wrapDockerError(original, botId: "b")
        #expect(wrapped.code == .notManaged)
        #expect(wrapped.botId == "a")
    }

    @Test func codesAreTheDocumentedStrings() {
        #expect(ContainerError.Code.allCases.map(\.rawValue) == [
            "NOT_FOUND", "NOT_RUNNING", "ALREADY_EXISTS", "START_FAILED", "STOP_FAILED", "NETWORK_ERROR", "NOT_MANAGED", "INVALID_SPEC",
            "CRASH_LOOP", "SECRETS_ERROR", "OBSERVE_FAILED", "ENGINE_INCOMPATIBLE", "CONFIG_ERROR", "OWNER_CONFLICT", "REMOVAL_GUARD",
            "DATA_ERROR", "PORT_CONFLICT", "UNHEALTHY", "IMAGE_NOT_FOUND", "AUTH_FAILED", "PULL_FAILED",
            "UPDATE_ROLLED_BACK", "ROLLOUT_PAUSED", "NODE_DOWN",
        ])
    }
}
