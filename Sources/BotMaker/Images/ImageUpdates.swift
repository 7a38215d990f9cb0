import Foundation

/// What an update check found for one image reference used by `always` bots.
public struct ImageUpdate: Sendable, Equatable {
    public var reference: String
    /// The digest of the image the engine has under the reference (nil: none, or not from this registry).
    public var local: String?
    /// What the registry's tag points to now.
    public var remote: String?
    /// Why the registry could not be asked (the check is skipped for this image).
    public var error: String?

    public var isAvailable: Bool { remote != nil && remote != local }

    /// `image update available: ghcr.io/x:latest sha256:… → sha256:…`.
    public var description: String {
        if let error { return "image check failed: \(reference): \(error)" }
        guard isAvailable, let remote else { return "image up to date: \(reference)" }
        return "image update available: \(reference) \(local.map(Planner.shortImage) ?? "(none)") → \(Planner.shortImage(remote))"
    }
}

extension Controller {
    /// Asks the registry what each image of the `always` bots points to now (no pull), and compares with what the
    /// engine has. With `pull`, pulls each moved image and queues the bots that use it: they are recreated through the
    /// same (paced) update path as any spec change.
    public func checkImages(pull: Bool) async throws -> [ImageUpdate] {
        // Only the rows of running `always` bots: the check of a fleet without any costs one indexed query.
        var users: [String: [String]] = [:]
        for (id, image) in try await store.runningAlwaysPullBots() where BotValidation.idProblem(id) == nil && BotValidation.imageProblem(image) == nil {
            users[image, default: []].append(id)
        }
        var updates: [ImageUpdate] = []
        for image in users.keys.sorted() {
            let reference = ImageReference(image)
            var update = ImageUpdate(reference: image)
            do {
                let auth = try await settings.registryCredentials.lookUp(reference.registry)?.header
                update.remote = try await runtime.registryDigest(reference, auth: auth)
                let local = try await runtime.image(image)
                update.local = local?.digest(for: reference).flatMap { $0.split(separator: "@").last.map(String.init) }
            } catch let error as ContainerError {
                update.error = "\(error.code.rawValue): \(error.message)"
            } catch let error as RegistryCredentialError {
                update.error = "AUTH_FAILED: cannot read registry credentials: \(error.message)"
            } catch {
                update.error = "\(error)"
            }
            updates.append(update)
            guard pull, update.isAvailable else { continue }
            if let failure = await puller.pull(reference) {
                update.error = "\(failure.code.rawValue): \(failure.message)"
                updates[updates.count - 1] = update
                continue
            }
            for id in users[image] ?? [] { queue.add(.bot(id)) }
        }
        return updates
    }
}
