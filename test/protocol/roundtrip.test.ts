import t, { type Test } from 'tap'
import { FrameParser, Opcode, encodeControlFrame, encodeFrame, type Role } from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded, randomChunks, randomInt, randomText } from '../helpers/data.js'
import { RecordingSink, summarize, type ParserEvent } from '../helpers/protocol.js'

// Each test draws from its own seed, so a failure reproduces by re-running it.
const SIZES = [0, 1, 125, 126, 127, 1024, 1025, 65535, 65536, (1 << 20) + 5]

/** The role that reads what `writer` writes. */
const readerOf = (writer: Role): Role => writer === 'client' ? 'server' : 'client'

function parseInChunks (role: Role, chunks: Buffer[]): ParserEvent[] {
  const sink = new RecordingSink()
  // Chunks down to 1 byte: the piece cap (tested in piece-limit.test.ts) is off here.
  const parser = new FrameParser({ role, maxMessageSize: 4 << 20, maxMessagePieces: Infinity }, sink)
  for (const chunk of chunks) parser.push(chunk)
  return sink.events
}

interface Sent { data: Buffer, isBinary: boolean }

function checkMessages (t: Test, events: ParserEvent[], sent: Sent[], name: string): void {
  const messages = events.filter((e): e is Extract<ParserEvent, { type: 'message' }> => e.type === 'message')
  const others = events.filter((e) => e.type !== 'message' && e.type !== 'ping')
  t.same(summarize(others), [], `${name}: no errors`)
  t.equal(messages.length, sent.length, `${name}: message count`)
  let mismatch = -1
  for (let i = 0; i < Math.min(messages.length, sent.length); i++) {
    const m = messages[i]
    if (m.isBinary !== sent[i].isBinary || m.compressed || !m.data.equals(sent[i].data)) {
      mismatch = i
      break
    }
  }
  t.equal(mismatch, -1, `${name}: every message arrives intact and in order`)
}

t.test('single-frame messages of boundary and random sizes, both roles, text and binary', async (t) => {
  const random = prng(1001)
  const sizes = [...SIZES, ...Array.from({ length: 20 }, () => randomInt(random, 0, 200000))]
  for (const writer of ['client', 'server'] as const) {
    const mask = writer === 'client'
    const sent: Sent[] = []
    const wire: Buffer[] = []
    for (const size of sizes) {
      const bin = randomBytesSeeded(random, size)
      sent.push({ data: bin, isBinary: true })
      wire.push(...encodeFrame(Opcode.Binary, bin, { mask }))
      const str = randomText(random, size)
      sent.push({ data: Buffer.from(str), isBinary: false })
      wire.push(...encodeFrame(Opcode.Text, str, { mask }))
    }
    const all = Buffer.concat(wire)
    for (const maxChunk of [1 << 20, 70000, 4096, 7]) {
      // Copy: the server-role parser unmasks in place.
      const copy = Buffer.from(all)
      const events = parseInChunks(readerOf(writer), randomChunks(random, copy, maxChunk))
      checkMessages(t, events, sent, `${writer} frames, chunks up to ${maxChunk} bytes`)
    }
    const whole = parseInChunks(readerOf(writer), [Buffer.from(all)])
    checkMessages(t, whole, sent, `${writer} frames, all in one chunk`)
  }
})

t.test('fragmented messages with control frames between fragments, random chunking', async (t) => {
  const random = prng(2002)
  for (const writer of ['client', 'server'] as const) {
    const mask = writer === 'client'
    for (let round = 0; round < 8; round++) {
      const sent: Sent[] = []
      const wire: Buffer[] = []
      const pings: string[] = []
      for (let m = 0; m < 12; m++) {
        const isBinary = random() < 0.5
        const size = random() < 0.2 ? randomInt(random, 60000, 300000) : randomInt(random, 0, 3000)
        // Text fragments are cut at arbitrary bytes, so code points straddle frames.
        const data = isBinary ? randomBytesSeeded(random, size) : Buffer.from(randomText(random, size))
        sent.push({ data, isBinary })
        const pieces = randomInt(random, 1, 6)
        const cuts = Array.from({ length: pieces - 1 }, () => randomInt(random, 0, data.length)).sort((a, b) => a - b)
        let start = 0
        const bounds = [...cuts, data.length]
        bounds.forEach((end, i) => {
          const opcode = i === 0 ? (isBinary ? Opcode.Binary : Opcode.Text) : Opcode.Continuation
          wire.push(...encodeFrame(opcode, data.subarray(start, end), { mask, fin: i === bounds.length - 1 }))
          start = end
          if (random() < 0.3) {
            const p = `ping ${m}.${i}`
            pings.push(p)
            wire.push(...encodeControlFrame(Opcode.Ping, p, mask))
          }
        })
      }
      const all = Buffer.concat(wire)
      const events = parseInChunks(readerOf(writer), randomChunks(random, all, randomInt(random, 1, 100000)))
      checkMessages(t, events, sent, `${writer}, round ${round}`)
      t.same(events.filter((e) => e.type === 'ping').map((e) => e.type === 'ping' && e.data.toString()), pings,
        `${writer}, round ${round}: pings arrive in order`)
    }
  }
})

t.test('a ~1 MiB message in small fragments, one byte and odd-sized chunks', async (t) => {
  const random = prng(3003)
  const data = randomBytesSeeded(random, (1 << 20) + 3)
  for (const writer of ['client', 'server'] as const) {
    const wire: Buffer[] = []
    for (let offset = 0; offset < data.length; offset += 40000) {
      const end = Math.min(offset + 40000, data.length)
      wire.push(...encodeFrame(offset === 0 ? Opcode.Binary : Opcode.Continuation, data.subarray(offset, end), {
        mask: writer === 'client', fin: end === data.length
      }))
    }
    const all = Buffer.concat(wire)
    for (const size of [1, 3, 1021, 65537]) {
      const chunks: Buffer[] = []
      const copy = Buffer.from(all)
      for (let i = 0; i < copy.length; i += size) chunks.push(copy.subarray(i, i + size))
      checkMessages(t, parseInChunks(readerOf(writer), chunks), [{ data, isBinary: true }], `${writer}, ${size}-byte chunks`)
    }
  }
})
