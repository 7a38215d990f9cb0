import Foundation

/// An image reference split the way registries and the Engine API need it: `[host[:port]/]path[:tag][@digest]`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// As written in the bot's row.
    public var text: String
    /// The registry host (`docker.io` when the first component is not a host).
    public var registry: String
    /// The name without tag or digest, as the Engine API's `fromImage` takes it.
    public var name: String
    public var tag: String?
    public var digest: String?

    public static let dockerHub = "docker.io"

    public init(_ text: String) {
        self.text = text
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            digest = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        let lastSlash = rest.lastIndex(of: "/")
        let tagSearch = lastSlash.map { rest[rest.index(after: $0)...] } ?? rest
        if let colon = tagSearch.lastIndex(of: ":") {
            tag = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        name = String(rest)
        let first = rest.split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        let hasHost = rest.contains("/") && (first.contains(".") || first.contains(":") || first == "localhost")
        registry = hasHost && !["index.docker.io", "registry-1.docker.io"].contains(first) ? first : Self.dockerHub
    }

    /// What the Engine API's `tag` parameter takes: the digest, else the tag, else `latest`.
    public var tagOrDigest: String { digest ?? tag ?? "latest" }

    /// The name as the engine lists it in `RepoDigests`: Docker Hub's `docker.io/` and `library/` left out.
    public var canonicalName: String {
        guard registry == Self.dockerHub else { return name }
        var short = Substring(name)
        for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] where short.hasPrefix(prefix) { short = short.dropFirst(prefix.count) }
        if short.hasPrefix("library/") { short = short.dropFirst("library/".count) }
        return String(short)
    }

    /// One key per image to pull: `name:tag` or `name@digest`, with the name canonical.
    public var pullKey: String { digest.map { "\(canonicalName)@\($0)" } ?? "\(canonicalName):\(tag ?? "latest")" }

    public var description: String { text }
}

/// When a bot's image is pulled.
public enum PullPolicy: String, Sendable, Codable, CaseIterable {
    /// Pull when the image is not on the engine.
    case missing
    /// Pull before every create or recreate.
    case always
    /// Never contact a registry: a missing image is `IMAGE_NOT_FOUND`.
    case never
}

/// What the engine has under an image reference.
public struct ImageInfo: Sendable, Equatable {
    public var id: String
    /// `repo@sha256:…` for each registry the image came from.
    public var repoDigests: [String]

    public init(id: String, repoDigests: [String] = []) {
        self.id = id
        self.repoDigests = repoDigests
    }

    /// The registry digest for `reference`'s repository, if the image came from there.
    public func digest(for reference: ImageReference) -> String? {
        repoDigests.first { $0.hasPrefix(reference.canonicalName + "@") }
    }
}
