import Foundation
import Testing
@testable import DockerEngine

@Suite struct ModelTests {
    @Test func nineDigitFractionsAreKept() throws {
        let date = try #require(DockerTimestamp.parse("2026-11-29T01:02:03.123456789Z"))
        let expected = try #require(DockerTimestamp.parse("2026-11-29T01:02:03Z")).addingTimeInterval(0.123456789)
        #expect(abs(date.timeIntervalSince(expected)) < 1e-6)
        #expect(DockerTimestamp.parse("2026-11-29T01:02:03.5+02:00") == DockerTimestamp.parse("2026-11-28T23:02:03.5Z"))
    }

    @Test func zeroTimeMeansNever() {
        #expect(DockerTimestamp.parse("0001-01-01T00:00:00Z") == nil)
        #expect(DockerTimestamp.parse("") == nil)
        #expect(DockerTimestamp.parse(nil) == nil)
        #expect(DockerTimestamp.parse("yesterday") == nil)
    }

    @Test func containerSummaryDecodes() throws {
        let json = #"""
        [{"Id":"abc123","Names":["/botmaker-a"],"Image":"busybox:latest","ImageID":"sha256:1","Command":"sh","Created":1700000000,
          "Ports":[],"Labels":{"botmaker.managed":"true","botmaker.bot-id":"a","Maintainer":"x"},"State":"exited",
          "Status":"Exited (137) 5 minutes ago","HostConfig":{"NetworkMode":"default"},"NetworkSettings":{},"Mounts":[]},
         {"Id":"def","Names":null,"Labels":null,"State":"running","Status":"Up 1 second"}]
        """#
        let list = try JSONDecoder().decode([ContainerSummary].self, from: Data(json.utf8))
        #expect(list.count == 2)
        #expect(list[0].name == "botmaker-a")
        #expect(list[0].labels["Maintainer"] == "x")
        #expect(list[0].created == 1_700_000_000)
        #expect(list[1].name == "")
        #expect(list[1].labels.isEmpty)
    }

    @Test func inspectDecodesStateAndTimes() throws {
        let json = #"""
        {"Id":"abc","Name":"/botmaker-a","RestartCount":3,
         "State":{"Status":"restarting","Running":true,"Paused":false,"Restarting":true,"OOMKilled":false,"Dead":false,"Pid":0,
                  "ExitCode":1,"Error":"","StartedAt":"2026-11-29T01:02:03.123456789Z","FinishedAt":"0001-01-01T00:00:00Z"},
         "Config":{"Image":"busybox","Env":["A=1"],"Cmd":null,"Labels":{"botmaker.managed":"true"}},
         "HostConfig":{"Binds":["/s/a:/run/secrets:ro"],"RestartPolicy":{"Name":"unless-stopped","MaximumRetryCount":0},
                       "NetworkMode":"bridge","Init":true}}
        """#
        let inspect = try JSONDecoder().decode(ContainerInspect.self, from: Data(json.utf8))
        #expect(inspect.state.status == "restarting")
        #expect(inspect.state.restarting)
        #expect(inspect.restartCount == 3)
        #expect(inspect.state.startedDate != nil)
        #expect(inspect.state.finishedDate == nil)
        #expect(inspect.config.cmd == nil)
        #expect(inspect.hostConfig.binds == ["/s/a:/run/secrets:ro"])
        #expect(inspect.hostConfig.restartPolicy?.name == "unless-stopped")
        #expect(inspect.hostConfig.initProcess == true)
    }

    @Test func createRequestEncodesDockerKeys() throws {
        let request = ContainerCreateRequest(
            image: "img", cmd: nil, env: ["A=1"], labels: ["k": "v"],
            hostConfig: .init(binds: ["/x:/run/secrets:ro"], restartPolicy: .init(name: "unless-stopped"), networkMode: "bridge", initProcess: true))
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(request)) as? [String: Any])
        #expect(object["Image"] as? String == "img")
        #expect(object["Cmd"] == nil)
        #expect(object["Env"] as? [String] == ["A=1"])
        let host = try #require(object["HostConfig"] as? [String: Any])
        #expect(host["Init"] as? Bool == true)
        #expect((host["RestartPolicy"] as? [String: Any])?["Name"] as? String == "unless-stopped")
    }

    @Test func eventDecodesActorAndBaseAction() throws {
        let json = #"{"status":"die","id":"abc","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137","name":"botmaker-a","botmaker.managed":"true"}},"scope":"local","time":1700000000,"timeNano":1700000000123456789}"#
        let event = try JSONDecoder().decode(DockerEvent.self, from: Data(json.utf8))
        #expect(event.action == "die")
        #expect(event.actorID == "abc")
        #expect(event.attributes["exitCode"] == "137")
        #expect(event.timeNano == 1_700_000_000_123_456_789)
        let exec = try JSONDecoder().decode(DockerEvent.self, from: Data(#"{"Type":"container","Action":"exec_start: sh -c x","time":5}"#.utf8))
        #expect(exec.baseAction == "exec_start")
        #expect(exec.timeNano == 5_000_000_000)
    }

    @Test func errorDescriptionsKeepStatusAndMessage() {
        let error = DockerEngineError.http(status: 404, message: "No such image: x:y", operation: "containers.create")
        #expect(error.httpStatus == 404)
        #expect(error.description == "containers.create: HTTP 404: No such image: x:y")
        #expect(!error.isUnreachable)
        #expect(DockerEngineError.timeout(operation: "ping", seconds: 5).isUnreachable)
        #expect(DockerEngineError.unreachable(host: "unix:///x", reason: "No such file or directory").isUnreachable)
    }
}
