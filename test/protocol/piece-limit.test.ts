import t from 'tap'
import {
  CloseCode, DEFAULT_MAX_MESSAGE_PIECES, DEFAULT_MIN_AVERAGE_PIECE_SIZE, FrameParser, ProtocolError, WebSocketProtocol,
  type FrameParserOptions, type FrameParserSink
} from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded } from '../helpers/data.js'
import { RecordingHandler, frame } from '../helpers/protocol.js'

const BINARY = 0x2
const TEXT = 0x1
const CONT = 0x0
const PING = 0x9
const CODE = 'WS_ERR_MESSAGE_TOO_FRAGMENTED'

const SERVER: FrameParserOptions = { role: 'server', maxMessageSize: 1 << 20 }

/** Keeps what the parser reports, errors as the ProtocolError objects themselves. */
class Sink implements FrameParserSink {
  readonly messages: Buffer[] = []
  readonly pings: Buffer[] = []
  readonly errors: ProtocolError[] = []
  onMessage (data: Buffer): void { this.messages.push(Buffer.from(data)) }
  onPing (data: Buffer): void { this.pings.push(Buffer.from(data)) }
  onPong (): void {}
  onClose (): void {}
  onProtocolError (error: ProtocolError): void { this.errors.push(error) }
}

/**
 * The piece at which a message whose pieces bring `perPiece` bytes each
 * fails: the least k with k > max + k × perPiece / average, from the
 * documented formula, not from the code.
 */
function failingPiece (perPiece: number, max = DEFAULT_MAX_MESSAGE_PIECES, average = DEFAULT_MIN_AVERAGE_PIECE_SIZE): number {
  let k = max + 1
  while (k * average <= max * average + k * perPiece) k++
  return k
}

/** A chunk in an ArrayBuffer of its own size, as Node 20 and 24 deliver TCP reads. */
function ownChunk (bytes: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(bytes.length)
  out.set(bytes)
  return out
}

const MB = 1_000_000
const payloadOfMB = randomBytesSeeded(prng(55), MB)
const frameOfMB = frame({ opcode: BINARY, payload: payloadOfMB, mask: true })

t.test('a 1 MB frame in 1-byte reads fails with 1008 at the piece the formula names', async (t) => {
  t.equal(DEFAULT_MAX_MESSAGE_PIECES, 1024)
  t.equal(DEFAULT_MIN_AVERAGE_PIECE_SIZE, 256)
  t.equal(failingPiece(1), 1029, '1-byte pieces: 1029 > 1024 + 1029/256, 1028 is not')
  const sink = new Sink()
  const parser = new FrameParser(SERVER, sink)
  const header = frameOfMB.length - MB
  t.equal(header, 14, '64-bit length and mask key')
  // The header's reads carry no payload: they are not pieces.
  const limit = header + failingPiece(1)
  let pushes = 0
  while (pushes < frameOfMB.length && sink.errors.length === 0) {
    parser.push(ownChunk(frameOfMB.subarray(pushes, pushes + 1)))
    pushes++
    if (pushes === limit - 1) t.same(sink.errors, [], 'no error one read before the limit')
  }
  t.equal(pushes, limit, `failed at read ${limit}: the 14 header bytes, then 1029 one-byte pieces`)
  t.equal(sink.errors.length, 1)
  const [error] = sink.errors
  t.equal(error.closeCode, CloseCode.PolicyViolation)
  t.equal(error.closeCode, 1008)
  t.equal(error.code, CODE)
  t.match(error.message, /1029 pieces for 1029 bytes/)
  t.equal(parser.done, true, 'nothing after the error is parsed')
  t.same(sink.messages, [])
})

t.test('the same frame in 1,460-byte reads is accepted, byte-exact', async (t) => {
  for (const [name, chunk] of [
    ['own buffers', ownChunk],
    // Small Buffer.from copies are slices of Node's shared 8 KiB pool.
    ['pool slices', (b: Uint8Array) => Buffer.from(b)]
  ] as const) {
    const sink = new Sink()
    const parser = new FrameParser(SERVER, sink)
    for (let i = 0; i < frameOfMB.length; i += 1460) parser.push(chunk(frameOfMB.subarray(i, i + 1460)))
    t.same(sink.errors, [], name)
    t.equal(sink.messages.length, 1, name)
    t.ok(sink.messages[0].equals(payloadOfMB), `${name}: the payload is intact`)
  }
})

t.test('past the first 1024 pieces, the average decides, whatever the piece count', async (t) => {
  // 300-byte reads: 3,334 pieces, each above the 256-byte average.
  const sink = new Sink()
  const parser = new FrameParser(SERVER, sink)
  for (let i = 0; i < frameOfMB.length; i += 300) parser.push(ownChunk(frameOfMB.subarray(i, i + 300)))
  t.same(sink.errors, [])
  t.ok(sink.messages.length === 1 && sink.messages[0].equals(payloadOfMB), '300-byte reads are accepted')

  // 100-byte reads after a 14-byte header read: failing at piece 1681, 168,100 bytes in.
  const sink100 = new Sink()
  const parser100 = new FrameParser(SERVER, sink100)
  parser100.push(ownChunk(frameOfMB.subarray(0, 14)))
  let pieces = 0
  for (let i = 14; i < frameOfMB.length && sink100.errors.length === 0; i += 100) {
    parser100.push(ownChunk(frameOfMB.subarray(i, i + 100)))
    pieces++
  }
  t.equal(pieces, failingPiece(100))
  t.equal(pieces, 1681)
  t.equal(sink100.errors[0]?.code, CODE)
})

t.test('1-byte fragments, each its own frame, fail past the cap', async (t) => {
  const fragment = (i: number): Buffer => frame({ opcode: i === 0 ? BINARY : CONT, fin: false, payload: Buffer.of(i & 0xff), mask: true })
  const sink = new Sink()
  const parser = new FrameParser(SERVER, sink)
  let frames = 0
  while (frames < 5000 && sink.errors.length === 0) parser.push(fragment(frames++))
  t.equal(frames, failingPiece(1), 'the 1029th fragment is one too many')
  t.equal(sink.errors[0]?.closeCode, 1008)
  t.equal(sink.errors[0]?.code, CODE)

  // All in one read: the count is per frame, not per read.
  const sinkAll = new Sink()
  new FrameParser(SERVER, sinkAll).push(Buffer.concat(Array.from({ length: 2000 }, (_, i) => fragment(i))))
  t.equal(sinkAll.errors.length, 1)
  t.match(sinkAll.errors[0].message, /1029 pieces for 1029 bytes/)
})

t.test('endless empty continuation frames fail within the cap', async (t) => {
  for (const role of ['server', 'client'] as const) {
    const mask = role === 'server'
    const sink = new Sink()
    const parser = new FrameParser({ role, maxMessageSize: 1 << 20 }, sink)
    parser.push(frame({ opcode: TEXT, fin: false, payload: 'a', mask }))
    const empty = frame({ opcode: CONT, fin: false, mask })
    let frames = 1
    // Bounded stand-in for "for ever": a thousand times the cap.
    while (frames < 1_000_000 && !parser.done) {
      parser.push(Buffer.from(empty))
      frames++
    }
    // One byte in, whatever the frame count: the least k with (k - 1024) × 256 > 1 is 1025.
    t.equal(frames, 1025, `${role}: the 1025th frame fails (the first fragment and 1024 empty ones)`)
    t.equal(sink.errors[0]?.code, CODE, role)
    t.equal(sink.errors[0]?.closeCode, 1008, role)
  }
})

t.test('control frames between fragments are not pieces of the message', async (t) => {
  // n one-byte fragments, each followed by five pings, everything fed one byte
  // per read: 1000 fragments (under the 1024 free pieces) pass with their 5000
  // pings and 21,000 reads; 1029 fragments do not, pings or no pings.
  const oneByteFragments = (n: number): { sink: Sink, reads: number } => {
    const parts: Buffer[] = []
    for (let i = 0; i < n; i++) {
      parts.push(frame({ opcode: i === 0 ? BINARY : CONT, fin: i === n - 1, payload: Buffer.of(i & 0xff), mask: true }))
      for (let p = 0; p < 5; p++) parts.push(frame({ opcode: PING, payload: Buffer.alloc(125, p), mask: true }))
    }
    const wire = Buffer.concat(parts)
    const sink = new Sink()
    const parser = new FrameParser(SERVER, sink)
    let reads = 0
    while (reads < wire.length && !parser.done) parser.push(ownChunk(wire.subarray(reads, ++reads)))
    return { sink, reads }
  }
  const { sink, reads } = oneByteFragments(1000)
  t.same(sink.errors, [])
  t.equal(reads, 1000 * (7 + 5 * 131), 'every byte read')
  t.equal(sink.pings.length, 5000, 'every ping delivered')
  t.equal(sink.messages.length, 1)
  t.ok(sink.messages[0].equals(Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff))), 'the message is intact')
  const over = oneByteFragments(1029)
  t.equal(over.sink.errors[0]?.code, CODE, '1029 fragments fail')
  t.equal(over.sink.pings.length, 1028 * 5, 'at the 1029th fragment, not before')

  // A streaming client: 2000 fragments of 512 bytes with a ping between each.
  const payload = randomBytesSeeded(prng(7), 2000 * 512)
  const stream: Buffer[] = []
  for (let i = 0; i < 2000; i++) {
    stream.push(frame({ opcode: i === 0 ? BINARY : CONT, fin: i === 1999, payload: payload.subarray(i * 512, (i + 1) * 512), mask: true }))
    stream.push(frame({ opcode: PING, payload: 'tick', mask: true }))
  }
  const sink2 = new Sink()
  new FrameParser(SERVER, sink2).push(Buffer.concat(stream))
  t.same(sink2.errors, [])
  t.ok(sink2.messages.length === 1 && sink2.messages[0].equals(payload), '2000 fragments of 512 bytes are accepted')
  t.equal(sink2.pings.length, 2000)
})

t.test('the count starts again with each message', async (t) => {
  const oneByteFragments = (messages: number, fragments: number): Sink => {
    const parts: Buffer[] = []
    for (let m = 0; m < messages; m++) {
      for (let i = 0; i < fragments; i++) {
        parts.push(frame({ opcode: i === 0 ? BINARY : CONT, fin: i === fragments - 1, payload: Buffer.of(m), mask: true }))
      }
    }
    const sink = new Sink()
    new FrameParser(SERVER, sink).push(Buffer.concat(parts))
    return sink
  }
  const three = oneByteFragments(3, 1000)
  t.same(three.errors, [], 'three messages of 1000 one-byte fragments each pass')
  t.equal(three.messages.length, 3)
  const one = oneByteFragments(1, 3000)
  t.equal(one.errors[0]?.code, CODE, 'one message of 3000 fails')
  t.same(one.messages, [])
})

t.test('the options: custom values, Infinity and 0 turn the cap off, nonsense is refused', async (t) => {
  const oneByteReads = (options: Partial<FrameParserOptions>, bytes: number): Sink => {
    const sink = new Sink()
    const parser = new FrameParser({ ...SERVER, ...options }, sink)
    const wire = frame({ opcode: BINARY, payload: Buffer.alloc(bytes, 7), mask: true })
    for (let i = 0; i < wire.length && !parser.done; i++) parser.push(ownChunk(wire.subarray(i, i + 1)))
    return sink
  }
  t.equal(oneByteReads({ maxMessagePieces: Infinity }, 5000).messages.length, 1, 'maxMessagePieces: Infinity')
  t.equal(oneByteReads({ minAveragePieceSize: 0 }, 5000).messages.length, 1, 'minAveragePieceSize: 0')
  const small = oneByteReads({ maxMessagePieces: 10, minAveragePieceSize: 2 }, 5000)
  t.match(small.errors[0]?.message, /21 pieces for 21 bytes/, 'custom values: 21 > 10 + 21/2')
  const strict = oneByteReads({ maxMessagePieces: 3, minAveragePieceSize: Infinity }, 5000)
  t.match(strict.errors[0]?.message, /^message arrived in 4 pieces/, 'minAveragePieceSize: Infinity caps the count itself')
  // A message in one piece is never counted, so maxMessagePieces 1 still lets it through.
  const sink = new Sink()
  new FrameParser({ ...SERVER, maxMessagePieces: 1, minAveragePieceSize: Infinity }, sink)
    .push(frame({ opcode: BINARY, payload: Buffer.alloc(100), mask: true }))
  t.equal(sink.messages.length, 1, 'maxMessagePieces: 1 allows a message in one frame and one read')

  for (const bad of [0, -1, 1.5, Number.NaN]) {
    t.throws(() => new FrameParser({ ...SERVER, maxMessagePieces: bad }, new Sink()), RangeError, `maxMessagePieces ${bad}`)
  }
  for (const bad of [-1, Number.NaN]) {
    t.throws(() => new FrameParser({ ...SERVER, minAveragePieceSize: bad }, new Sink()), RangeError, `minAveragePieceSize ${bad}`)
  }
})

t.test('WebSocketProtocol passes the options on and answers with a 1008 close frame', async (t) => {
  const h = new RecordingHandler()
  const p = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 20, maxMessagePieces: 4, minAveragePieceSize: 1000 }, h)
  const wire = frame({ opcode: BINARY, payload: Buffer.alloc(100), mask: true })
  for (let i = 0; i < wire.length; i++) p.receive(ownChunk(wire.subarray(i, i + 1)))
  const errors = h.events.filter((e) => e.type === 'error')
  t.equal(errors.length, 1)
  const error = errors[0].type === 'error' ? errors[0].error as ProtocolError : null
  t.equal(error?.code, CODE)
  t.match(error?.message, /5 pieces for 5 bytes/, '5 > 4 + 5/1000')
  const frames = h.frames()
  t.equal(frames.length, 1)
  t.equal(frames[0].opcode, 0x8)
  t.equal(frames[0].payload.readUInt16BE(0), 1008, 'the close frame carries 1008')
  t.equal(h.closeTransportCalls, 1, 'a server closes the transport after failing the connection')

  const defaults = new RecordingHandler()
  const d = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 20 }, defaults)
  for (let i = 0; i < 14 + 1029; i++) d.receive(ownChunk(frameOfMB.subarray(i, i + 1)))
  t.equal(defaults.frames()[0]?.payload.readUInt16BE(0), 1008, 'defaults apply when the options are left out')
})
