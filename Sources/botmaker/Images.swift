import ArgumentParser
import BotMaker
import Foundation
import Logging

extension Botmaker {
    struct Images: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Manage the images botmaker pulled.", subcommands: [Prune.self])
    }
}

extension Botmaker.Images {
    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove images botmaker pulled that nothing uses any more.",
            discussion: """
                Only images botmaker pulled itself (recorded when pulled) are candidates, and only those that no container \
                (of any owner), no bot row and no bot's recorded image uses. An image Docker still refuses to remove (in \
                use meanwhile) is left and reported.
                """)

        @OptionGroup var global: GlobalOptions
        @Flag(help: "Only list what would be removed.") var dryRun = false

        func run() async throws {
            let store = try global.openStore(readOnly: dryRun)
            let logger = Logger(label: "botmaker")
            let runtime = try global.runtime(for: store, logger: logger)
            do { try await prune(store: store, runtime: runtime) } catch {
                await runtime.shutdown()
                throw error
            }
            await runtime.shutdown()
        }

        private func prune(store: Store, runtime: any ContainerRuntime) async throws {
            var used = Set<String>()
            do {
                used = try await runtime.imagesInUse()
                let snapshot = try await store.snapshot()
                // Status rows of deleted bots can outlive them (sqlite3's shell does not enforce foreign keys).
                let rows = Set(snapshot.bots.map(\.id))
                for status in snapshot.statuses.values where rows.contains(status.botId) { if let id = status.imageId { used.insert(id) } }
                for image in Set(snapshot.bots.compactMap(\.image)) {
                    if let info = try await runtime.image(image) { used.insert(info.id) }
                }
            } catch let error as ContainerError {
                throw CLIError("cannot look at Docker: \(error.code.rawValue): \(error.message)")
            }
            var removed = 0, kept = 0
            for (reference, id) in try store.pulledImages() {
                let current = try? await runtime.image(reference)
                let present = current?.id == id ? true : ((try? await runtime.image(id)) ?? nil) != nil
                if !present {
                    if !dryRun { try store.forgetPulledImage(reference, id: id) }
                    continue
                }
                if used.contains(id) { kept += 1; continue }
                // A tag still pointing at the image is untagged (Docker deletes the image with its last tag); an image
                // the tag moved away from is removed by ID.
                let target = current?.id == id ? reference : id
                if dryRun {
                    print("would remove \(reference) (\(Planner.shortImage(id)))")
                    removed += 1
                    continue
                }
                do {
                    try await runtime.removeImage(target)
                } catch {
                    print("kept \(reference) (\(Planner.shortImage(id))): \(error.message)")
                    kept += 1
                    continue
                }
                try store.forgetPulledImage(reference, id: id)
                print("removed \(reference) (\(Planner.shortImage(id)))")
                removed += 1
            }
            print(dryRun ? "\(removed) image(s) would be removed, \(kept) in use" : "\(removed) image(s) removed, \(kept) kept")
        }
    }
}
