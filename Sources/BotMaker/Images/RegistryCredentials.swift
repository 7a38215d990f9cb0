import Foundation

/// Registry credentials the way Docker keeps them: `config.json` (`auths`, `credsStore`, `credHelpers`). A value is
/// sent only to the registry it belongs to, as the `X-Registry-Auth` header, and never appears in a log, an error, a
/// plan or the database (``description`` is redacted).
public struct RegistryCredentials: Sendable, CustomStringConvertible {
    public var username: String?
    public var password: String?
    public var identityToken: String?
    public var serverAddress: String

    public var description: String { "credentials for \(serverAddress) (redacted)" }

    /// The `X-Registry-Auth` header: base64url of `{"username","password","serveraddress"}` or `{"identitytoken",…}`.
    public var header: String {
        var object: [String: String] = ["serveraddress": serverAddress]
        if let identityToken { object["identitytoken"] = identityToken } else {
            object["username"] = username ?? ""
            object["password"] = password ?? ""
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }
}

/// Finds credentials for a registry in a Docker `config.json`, running `docker-credential-<helper> get` when the
/// file says so. Read on every lookup (a `docker login` while the service runs is seen); problems are described
/// without any secret.
public struct RegistryCredentialStore: Sendable {
    /// The config file: an explicit path, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    public let path: String
    /// The environment helpers run with (they need `HOME`, `DBUS_SESSION_BUS_ADDRESS`, `AWS_*`, … as the CLI gives them).
    let environment: [String: String]

    /// ``credentials(for:)`` off the caller's thread (a helper is a child process that may take a while).
    public func lookUp(_ registry: String) async throws -> RegistryCredentials? {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do { continuation.resume(returning: try credentials(for: registry)) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    public init(path: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        if let path {
            self.path = path
        } else if let directory = environment["DOCKER_CONFIG"], !directory.isEmpty {
            self.path = (directory as NSString).appendingPathComponent("config.json")
        } else {
            self.path = (NSHomeDirectory() as NSString).appendingPathComponent(".docker/config.json")
        }
    }

    /// Docker Hub's names in `auths`.
    static let dockerHubKeys = ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io",
                                "https://index.docker.io/v1", "https://registry-1.docker.io"]

    /// Credentials for `registry` (a host, `docker.io` for Docker Hub), or nil when the file has none for it.
    public func credentials(for registry: String) throws(RegistryCredentialError) -> RegistryCredentials? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        guard let config = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RegistryCredentialError("\(path) is not a JSON object")
        }
        let isHub = registry == ImageReference.dockerHub
        let server = isHub ? "https://index.docker.io/v1/" : registry
        if let helpers = config["credHelpers"] as? [String: String] {
            let helper = isHub ? Self.dockerHubKeys.lazy.compactMap({ helpers[$0] }).first : helpers[registry]
            if let helper { return try runHelper(helper, server: server) }
        }
        if let auths = config["auths"] as? [String: Any] {
            for (key, value) in auths where Self.normalise(key) == (isHub ? "docker.io" : registry) || (isHub && Self.dockerHubKeys.contains(key)) {
                guard let entry = value as? [String: Any] else { continue }
                if let token = entry["identitytoken"] as? String, !token.isEmpty {
                    return RegistryCredentials(identityToken: token, serverAddress: server)
                }
                if let auth = entry["auth"] as? String, !auth.isEmpty {
                    guard let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
                          let colon = decoded.firstIndex(of: ":") else {
                        throw RegistryCredentialError("the auth entry for \(registry) in \(path) is not base64 of user:password")
                    }
                    return RegistryCredentials(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]),
                                               serverAddress: server)
                }
            }
        }
        if let store = config["credsStore"] as? String, !store.isEmpty {
            return try runHelper(store, server: server, missingIsNil: true)
        }
        return nil
    }

    /// `https://host:port/v2/` → `host:port`; Docker Hub's names → `docker.io`.
    static func normalise(_ key: String) -> String {
        if dockerHubKeys.contains(key) { return "docker.io" }
        var text = Substring(key)
        for scheme in ["https://", "http://"] where text.hasPrefix(scheme) { text = text.dropFirst(scheme.count) }
        return String(text.prefix { $0 != "/" })
    }

    /// `docker-credential-<name> get` with the server on stdin; `{"Username","Secret"}` on stdout (`<token>` as the
    /// user name means an identity token).
    func runHelper(_ name: String, server: String, missingIsNil: Bool = false) throws(RegistryCredentialError) -> RegistryCredentials? {
        guard !name.contains("/"), !name.isEmpty else { throw RegistryCredentialError("credential helper name \(name.debugDescription) is invalid") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["docker-credential-\(name)", "get"]
        process.environment = environment
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch {
            throw RegistryCredentialError("cannot run docker-credential-\(name): \(error.localizedDescription)")
        }
        // A helper waiting for a keyring prompt must not hold a pull forever.
        let watchdog = DispatchWorkItem { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 15, execute: watchdog)
        defer { watchdog.cancel() }
        try? input.fileHandleForWriting.write(contentsOf: Data(server.utf8))
        try? input.fileHandleForWriting.close()
        let data = (try? output.fileHandleForReading.readToEnd()) ?? Data()
        process.waitUntilExit()
        if process.terminationReason == .uncaughtSignal {
            throw RegistryCredentialError("docker-credential-\(name) get did not answer within 15 s")
        }
        guard process.terminationStatus == 0 else {
            // "credentials not found in native keychain": no credentials, not an error.
            if missingIsNil || String(decoding: data, as: UTF8.self).contains("not found") { return nil }
            throw RegistryCredentialError("docker-credential-\(name) get failed for \(server) (exit \(process.terminationStatus))")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let secret = object["Secret"] as? String else {
            throw RegistryCredentialError("docker-credential-\(name) answered something that is not {\"Username\", \"Secret\"}")
        }
        let username = object["Username"] as? String
        if username == "<token>" { return RegistryCredentials(identityToken: secret, serverAddress: server) }
        return RegistryCredentials(username: username, password: secret, serverAddress: server)
    }
}

/// Why credentials could not be read; never holds a secret.
public struct RegistryCredentialError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
