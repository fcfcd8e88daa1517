import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import { FrameParser, buildClientRequest, encodeFrame, Opcode, type FrameParserSink } from '../../lib/protocol/index.js'

function sink (messages: Buffer[]): FrameParserSink {
  return {
    onMessage: (data) => { messages.push(data) },
    onPing () {},
    onPong () {},
    onClose () {},
    onProtocolError (err) { throw err }
  }
}

t.test('a large frame reserves memory as its bytes arrive, not when its header claims them', async (t) => {
  const messages: Buffer[] = []
  const parser = new FrameParser({ role: 'server', maxMessageSize: 256 * 1024 * 1024 }, sink(messages))
  const size = 200 * 1024 * 1024
  const [header] = encodeFrame(Opcode.Binary, Buffer.alloc(0), { mask: true })
  // Re-encode the header for a 200 MiB payload: 127, then the 64-bit length, then the mask key.
  const big = Buffer.alloc(14)
  big[0] = 0x82
  big[1] = 0x80 | 127
  big.writeUInt32BE(0, 2)
  big.writeUInt32BE(size, 6)
  header.copy(big, 10, 2, 6)
  const before = process.memoryUsage().arrayBuffers
  parser.push(big)
  parser.push(Buffer.alloc(1024))
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(grown < 16 * 1024 * 1024, `array buffers grew by ${grown} bytes after the header of a 200 MiB frame`)
  t.equal(messages.length, 0)
})

t.test('a large frame split into many chunks is reassembled and unmasked exactly', async (t) => {
  const messages: Buffer[] = []
  const parser = new FrameParser({ role: 'server', maxMessageSize: 8 * 1024 * 1024 }, sink(messages))
  const payload = Buffer.alloc(3 * 1024 * 1024 + 7)
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + 7) & 0xff
  const frame = Buffer.concat(encodeFrame(Opcode.Binary, payload, { mask: true }))
  // Odd chunk sizes so pieces start at every mask phase.
  for (let offset = 0, step = 1; offset < frame.length; offset += step, step = (step * 7 + 3) % 70001 + 1) {
    parser.push(Buffer.from(frame.subarray(offset, offset + step)))
  }
  t.equal(messages.length, 1)
  t.ok(messages[0].equals(payload))
})

t.test('the client request builder refuses line breaks in the path and host', async (t) => {
  t.throws(() => buildClientRequest({ path: '/x\r\nEvil: 1', host: 'h', key: 'dGhlIHNhbXBsZSBub25jZQ==' }), SyntaxError)
  t.throws(() => buildClientRequest({ path: '/x', host: 'h\r\nEvil: 1', key: 'dGhlIHNhbXBsZSBub25jZQ==' }), SyntaxError)
})

// A gc() without node --expose-gc on the command line: the chunks fed below are
// garbage once parsed, and only a collection tells what is still held.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

t.test('tiny fragments padded with pongs do not pin the chunks they came in', async (t) => {
  // Each chunk carries a 1-byte fragment and ~62 KiB of unsolicited pongs. A parser
  // that kept fragments as views of their chunks would hold every chunk until the
  // message ends: 2000 chunks would pin ~124 MiB for a 2000-byte message.
  const messages: Buffer[] = []
  const parser = new FrameParser({ role: 'client', maxMessageSize: 1 << 20 }, sink(messages))
  const pong = Buffer.concat(encodeFrame(Opcode.Pong, Buffer.alloc(125)))
  const padding = Buffer.concat(new Array(500).fill(pong))
  const fragment = (opcode: number, fin: boolean): Buffer => Buffer.concat(encodeFrame(opcode, Buffer.of(0x61), { fin }))
  const count = 2000
  gc()
  const before = process.memoryUsage().arrayBuffers
  for (let i = 0; i < count; i++) {
    const chunk = Buffer.concat([fragment(i === 0 ? Opcode.Binary : Opcode.Continuation, false), padding])
    parser.push(chunk)
  }
  gc()
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(grown < 16 * 1024 * 1024, `array buffers grew by ${grown} bytes while ${count} one-byte fragments were open`)
  parser.push(fragment(Opcode.Continuation, true))
  t.equal(messages.length, 1)
  t.ok(messages[0].equals(Buffer.alloc(count + 1, 0x61)), 'the message is intact')
})
