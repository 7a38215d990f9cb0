import DockerEngine
import Testing

struct StreamFrameDecoderTests {
    static func frame(_ stream: UInt8, _ payload: [UInt8]) -> [UInt8] {
        let size = UInt32(payload.count)
        return [stream, 0, 0, 0, UInt8(size >> 24), UInt8(size >> 16 & 0xff), UInt8(size >> 8 & 0xff), UInt8(size & 0xff)] + payload
    }

    /// Frames split at every possible place, and across many chunks, come out whole, in order, per stream.
    @Test func framesSplitAnywhereComeOutWholeAndInOrder() {
        var generator = SystemRandomNumberGenerator()
        var wire: [UInt8] = []
        var expected: [StreamFrame] = []
        for index in 0..<60 {
            let stream: UInt8 = index % 3 == 0 ? 2 : 1
            let payload = (0..<Int.random(in: 0...20_000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            wire += Self.frame(stream, payload)
            expected.append(StreamFrame(stream == 2 ? .stderr : .stdout, payload))
        }
        for chunkSize in [1, 7, 8, 9, 4096, 65_536, wire.count] {
            var decoder = StreamFrameDecoder()
            var got: [StreamFrame] = []
            var offset = 0
            while offset < wire.count {
                let end = min(wire.count, offset + (chunkSize == 1 ? 1 : Int.random(in: 1...chunkSize, using: &generator)))
                got += decoder.feed(wire[offset..<end])
                offset = end
                if chunkSize == 1 && offset > 30_000 { break }  // byte by byte: the first frames are enough
            }
            #expect(got == Array(expected.prefix(got.count)), "chunks of up to \(chunkSize)")
            if chunkSize > 1 {
                #expect(got.count == expected.count)
                #expect(decoder.leftover == 0)
            }
        }
    }

    @Test func aCutFrameIsLeftOverAndARawStreamPassesThrough() {
        var decoder = StreamFrameDecoder()
        #expect(decoder.feed(Self.frame(1, Array("hello".utf8)).dropLast(2)).isEmpty)
        #expect(decoder.leftover == 11)
        var raw = StreamFrameDecoder(raw: true)
        #expect(raw.feed(Array("\u{1}abc".utf8)) == [StreamFrame(.stdout, Array("\u{1}abc".utf8))])
    }
}
