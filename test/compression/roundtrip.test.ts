import { deflateRawSync, constants as zc } from 'node:zlib'
import t from 'tap'
import { createDeflateExtension } from '../../lib/compression/deflate.js'
import { WebSocketProtocol } from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded, randomInt } from '../helpers/data.js'
import { DeflateInspector, DeflatePair, params, received, settings, until } from '../helpers/deflate.js'
import { RecordingHandler, frame } from '../helpers/protocol.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0

/** JSON-ish text: compressible, like the traffic compression is for. */
function jsonText (random: () => number, size: number): string {
  let out = '['
  while (out.length < size) out += JSON.stringify({ id: randomInt(random, 0, 1e6), user: `user${randomInt(random, 0, 50)}`, online: random() < 0.5, score: randomInt(random, 0, 999) }) + ','
  return out.slice(0, size)
}

// Sizes around the interesting edges: empty, tiny, the in-place deflate
// limit (8 KiB), the in-place inflate budget (64 KiB of output), large.
const EDGES = [0, 1, 2, 100, 8191, 8192, 8193, 65535, 65536, 65537, 200_000]

function randomMessage (random: () => number): { data: string | Buffer, isBinary: boolean } {
  const size = random() < 0.3 ? EDGES[randomInt(random, 0, EDGES.length - 1)] : randomInt(random, 0, random() < 0.8 ? 4096 : 150_000)
  if (random() < 0.5) return { data: jsonText(random, size), isBinary: false }
  // Binary: random bytes (incompressible) or repetitive ones.
  return { data: random() < 0.5 ? randomBytesSeeded(random, size) : Buffer.from(jsonText(random, size)), isBinary: true }
}

/** Random chunk boundaries, down to single bytes. */
function randomChunker (random: () => number): (data: Buffer) => Buffer[] {
  return (data) => {
    const chunks: Buffer[] = []
    let at = 0
    while (at < data.length) {
      const size = random() < 0.2 ? randomInt(random, 1, 8) : randomInt(random, 1, 20_000)
      chunks.push(data.subarray(at, at + size))
      at += size
    }
    return chunks
  }
}

const takeovers = [
  { serverNoContextTakeover: false, clientNoContextTakeover: false },
  { serverNoContextTakeover: true, clientNoContextTakeover: false },
  { serverNoContextTakeover: false, clientNoContextTakeover: true },
  { serverNoContextTakeover: true, clientNoContextTakeover: true }
]

for (const takeover of takeovers) {
  t.test(`round trips both ways, random sizes and chunkings (${JSON.stringify(takeover)})`, async (t) => {
    for (let seed = 1; seed <= 4; seed++) {
      const random = prng(seed * 101 + (takeover.serverNoContextTakeover ? 1 : 0) + (takeover.clientNoContextTakeover ? 2 : 0))
      const pair = new DeflatePair({ params: params(takeover), settings: settings({ threshold: randomInt(random, 0, 64) }) })
      pair.chunker = randomChunker(random)
      const toServer = Array.from({ length: 30 }, () => randomMessage(random))
      const toClient = Array.from({ length: 30 }, () => randomMessage(random))
      for (let i = 0; i < 30; i++) {
        pair.client.send(toServer[i].data, toServer[i].isBinary)
        pair.server.send(toClient[i].data, toClient[i].isBinary)
      }
      await Promise.all([until(pair.serverHandler, 30), until(pair.clientHandler, 30)])
      const check = (got: Array<{ data: Buffer, isBinary: boolean }>, sent: typeof toServer, direction: string): void => {
        const bad = sent.findIndex((m, i) => got[i] === undefined || got[i].isBinary !== m.isBinary || !got[i].data.equals(Buffer.from(m.data)))
        t.equal(bad, -1, `seed ${seed}, ${direction}: every message arrives intact and in order`)
      }
      check(received(pair.serverHandler), toServer, 'client → server')
      check(received(pair.clientHandler), toClient, 'server → client')
      t.notOk(pair.serverHandler.events.some((e) => e.type === 'error') || pair.clientHandler.events.some((e) => e.type === 'error'), 'no errors')
      pair.client.transportClosed()
      pair.server.transportClosed()
    }
  })
}

t.test('messages under the threshold are sent as they are, the others with RSV1', async (t) => {
  const pair = new DeflatePair({ settings: settings({ threshold: 100 }) })
  pair.server.send('x'.repeat(99))
  pair.server.send('x'.repeat(100))
  pair.server.send('')
  await until(pair.clientHandler, 3)
  t.same(pair.serverHandler.frames().map((f) => f.rsv1), [false, true, false], 'RSV1 only on the one at the threshold; never on an empty message')
  t.same(received(pair.clientHandler).map((m) => m.data.length), [99, 100, 0])
})

t.test('context takeover: a repeated message is smaller on the wire the second time; without it, the same size', async (t) => {
  const message = jsonText(prng(7), 3000)
  for (const serverNoContextTakeover of [false, true]) {
    const pair = new DeflatePair({ params: params({ serverNoContextTakeover }) })
    pair.server.send(message)
    pair.server.send(message)
    await until(pair.clientHandler, 2)
    const [first, second] = pair.serverHandler.frames().map((f) => f.payload.length)
    if (serverNoContextTakeover) t.equal(second, first, `no context takeover: ${first} then ${second} bytes`)
    else t.ok(second < first / 10, `context takeover: ${first} then ${second} bytes`)
    t.same(received(pair.clientHandler).map((m) => m.data.toString()), [message, message])
  }
})

t.test('without context takeover an incompressible message goes uncompressed; with it, compressed all the same', async (t) => {
  const noise = randomBytesSeeded(prng(3), 2000)
  for (const serverNoContextTakeover of [true, false]) {
    const pair = new DeflatePair({ params: params({ serverNoContextTakeover }) })
    pair.server.send(noise)
    await until(pair.clientHandler, 1)
    t.equal(pair.serverHandler.frames()[0].rsv1, !serverNoContextTakeover, `serverNoContextTakeover ${String(serverNoContextTakeover)}`)
    t.ok(received(pair.clientHandler)[0].data.equals(noise))
  }
})

// Every window size: what we send never reaches back further than the
// window agreed for our side, including across messages (context takeover);
// the peer decodes it with exactly that window.
for (let bits = 8; bits <= 15; bits++) {
  t.test(`window ${bits}: every distance fits, round trips with context takeover`, async (t) => {
    const random = prng(bits)
    // Repeats at distances around the window size, and across messages.
    const block = jsonText(random, 1 << bits)
    const messages = [block + block, randomBytesSeeded(random, 300).toString('hex') + block.slice(0, 2000), block.slice(100) + block.slice(0, 100)]
    for (const side of ['server', 'client'] as const) {
      if (side === 'server' && bits === 8) continue // servers use 9..15: negotiation declines 8 for the server
      const pair = new DeflatePair({ params: params({ serverMaxWindowBits: Math.max(bits, 9), clientMaxWindowBits: bits }) })
      const sender = side === 'server' ? pair.server : pair.client
      const handler = side === 'server' ? pair.serverHandler : pair.clientHandler
      const peer = side === 'server' ? pair.clientHandler : pair.serverHandler
      for (const m of messages) sender.send(m)
      await until(peer, messages.length)
      const inspector = new DeflateInspector()
      const decoded = handler.frames().map((f) => inspector.message(f.payload).toString())
      t.same(decoded, messages, `${side}: the wire decodes to the messages`)
      const window = 1 << bits
      t.ok(inspector.maxDistance <= window, `${side}: farthest match ${inspector.maxDistance} ≤ ${window}`)
      t.ok(inspector.maxDistance > window / 4, `${side}: the window was used (${inspector.maxDistance})`)
      t.same(received(peer).map((m) => m.data.toString()), messages, `${side}: the peer, inflating with a ${bits}-bit window, gets them`)
    }
  })
}

t.test('a fragmented compressed message (RSV1 on the first frame only) is decoded as one', async (t) => {
  const random = prng(11)
  for (const takeover of [false, true]) {
    const text = jsonText(random, 50_000)
    const handler = new RecordingHandler()
    const server = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 20, extension: createDeflateExtension(params({ clientNoContextTakeover: !takeover }), 'server', settings()) }, handler)
    const deflated = deflateRawSync(text, { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)
    const cuts = [0, 1, 2, 500, 3000, deflated.length]
    const frames = cuts.slice(0, -1).map((at, i) => frame({ opcode: i === 0 ? TEXT : CONT, rsv1: i === 0, fin: i === cuts.length - 2, mask: true, payload: deflated.subarray(at, cuts[i + 1]) }))
    server.receive(Buffer.concat([...frames, frame({ opcode: BINARY, mask: true, payload: 'plain' })]))
    await until(handler, 2)
    t.same(received(handler).map((m) => m.data.toString()), [text, 'plain'], `context takeover ${String(takeover)}: decoded, then the next message`)
  }
})

t.test('an empty compressed payload is an empty message and leaves the context in step', async (t) => {
  const handler = new RecordingHandler()
  const server = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 20, extension: createDeflateExtension(params(), 'server', settings()) }, handler)
  const payload = deflateRawSync('hello', { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)
  server.receive(Buffer.concat([frame({ opcode: TEXT, rsv1: true, mask: true, payload: Buffer.alloc(0) }), frame({ opcode: TEXT, rsv1: true, mask: true, payload })]))
  await until(handler, 2)
  t.same(received(handler).map((m) => m.data.toString()), ['', 'hello'])
})

t.test('a peer that ends its DEFLATE stream with BFINAL (RFC 7692 §7.2.3.4) is understood, and its next message too', async (t) => {
  const handler = new RecordingHandler()
  const server = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 20, extension: createDeflateExtension(params(), 'server', settings()) }, handler)
  const final = deflateRawSync('Hello') // Z_FINISH: one block with BFINAL set
  const next = deflateRawSync('again', { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)
  server.receive(Buffer.concat([frame({ opcode: TEXT, rsv1: true, mask: true, payload: final }), frame({ opcode: TEXT, rsv1: true, mask: true, payload: next })]))
  await until(handler, 2)
  t.same(received(handler).map((m) => m.data.toString()), ['Hello', 'again'])
})
