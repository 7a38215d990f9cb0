import Testing
@testable import DockerEngine

@Suite struct DockerHostTests {
    @Test func defaultIsTheStandardSocket() throws {
        #expect(try DockerHost(parsing: nil).transport == .unixSocket(path: "/var/run/docker.sock"))
        #expect(try DockerHost(parsing: "").transport == .unixSocket(path: "/var/run/docker.sock"))
    }

    @Test func unixSocketURLIsPercentEncoded() throws {
        let host = try DockerHost(parsing: "unix:///run/user/1000/docker.sock")
        #expect(host.transport == .unixSocket(path: "/run/user/1000/docker.sock"))
        #expect(host.baseURL == "http+unix://%2Frun%2Fuser%2F1000%2Fdocker%2Esock")
        #expect(host.description == "unix:///run/user/1000/docker.sock")
    }

    @Test func tcpHostAndPort() throws {
        #expect(try DockerHost(parsing: "tcp://127.0.0.1:2375").baseURL == "http://127.0.0.1:2375")
        #expect(try DockerHost(parsing: "tcp://[::1]:2375").baseURL == "http://[::1]:2375")
    }

    @Test(arguments: ["unix://relative.sock", "tcp://nohost", "tcp://:80", "tcp://h:99999", "ssh://user@host", "http://x:1"])
    func badHostsAreRefused(_ value: String) {
        #expect(throws: DockerEngineError.self) { try DockerHost(parsing: value) }
    }

    @Test func apiVersionsCompareNumerically() {
        #expect(APIVersion("1.41")! < APIVersion("1.100")!)
        #expect(APIVersion("1.9")! < APIVersion("1.41")!)
        #expect(APIVersion("x") == nil)
        #expect(min(APIVersion(1, 52), DockerClient.maximumAPIVersion) == DockerClient.maximumAPIVersion)
    }

    @Test func filtersAreStableJSON() {
        #expect(DockerClient.filtersJSON(["label": ["botmaker.managed=true"], "type": ["container"]])
            == #"{"label":["botmaker.managed=true"],"type":["container"]}"#)
        #expect(DockerClient.encode(#"{"label":["a=b"]}"#) == "%7B%22label%22%3A%5B%22a%3Db%22%5D%7D")
    }
}
