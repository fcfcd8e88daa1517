import { deflateRawSync, constants as zc } from 'node:zlib'
import t from 'tap'
import { createDeflateExtension } from '../../lib/compression/deflate.js'
import { Limiter, sharedLimiter } from '../../lib/compression/pool.js'
import { WebSocketConnection } from '../../lib/index.js'
import { kInternal } from '../../lib/connection/internal.js'
import { PauseReason } from '../../lib/connection/inbox.js'
import { createDuplexPair } from '../../lib/duplex-pair.js'
import { WebSocketProtocol } from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded, randomInt } from '../helpers/data.js'
import { BacklogHandler, DeflatePair, params, received, settings, until } from '../helpers/deflate.js'
import { frame } from '../helpers/protocol.js'

const BINARY = 0x2
const PING = 0x9

t.test('the limiter runs at most `concurrency` tasks, the rest in FIFO order', async (t) => {
  const limiter = new Limiter(2)
  const order: number[] = []
  const releases: Array<() => void> = []
  for (let i = 0; i < 6; i++) limiter.run((release) => { order.push(i); releases.push(release) })
  t.same(order, [0, 1], 'two start at once')
  t.equal(limiter.queued, 4)
  releases[1]()
  releases[1]() // a second release of the same task is ignored
  t.same(order, [0, 1, 2])
  releases[0]()
  t.same(order, [0, 1, 2, 3])
  t.equal(limiter.running, 2)
  // Tasks that release at once are started one after the other, not recursively.
  const quick = new Limiter(1)
  let ran = 0
  quick.run((release) => { releases.push(release) })
  for (let i = 0; i < 100_000; i++) quick.run((release) => { ran++; release() })
  releases[releases.length - 1]()
  t.equal(ran, 100_000, 'a long queue of instant tasks drains without blowing the stack')
  t.throws(() => new Limiter(0), RangeError)
})

t.test('many connections, large and small messages interleaved: each arrives in order, thread-pool jobs stay within the bound', async (t) => {
  const concurrency = 2
  const limiter = sharedLimiter(concurrency)
  let peak = 0
  let jobs = 0
  const run = limiter.run.bind(limiter)
  limiter.run = (task) => run((release) => {
    jobs++
    peak = Math.max(peak, limiter.running)
    task(release)
  })
  t.teardown(() => { limiter.run = run })
  const random = prng(42)
  const pairs = Array.from({ length: 40 }, (_, i) => new DeflatePair({
    params: params({ serverNoContextTakeover: i % 2 === 0, clientNoContextTakeover: i % 3 === 0 }),
    settings: settings({ concurrency })
  }))
  const sent = pairs.map(() => [] as Buffer[])
  pairs.forEach((pair, i) => {
    for (let m = 0; m < 12; m++) {
      // Large ones are compressed and inflated on the thread pool, small ones in place.
      const size = m % 3 === 0 ? randomInt(random, 70_000, 200_000) : randomInt(random, 10, 3000)
      const data = m % 2 === 0 ? Buffer.alloc(size, `${i}:${m};`) : randomBytesSeeded(random, size)
      sent[i].push(data)
      pair.server.send(data)
    }
  })
  await Promise.all(pairs.map((pair) => until(pair.clientHandler, 12)))
  pairs.forEach((pair, i) => {
    const got = received(pair.clientHandler).map((m) => m.data)
    if (!got.every((d, m) => d.equals(sent[i][m]))) t.fail(`connection ${i}: messages out of order or damaged`)
  })
  t.pass('every connection got its messages intact and in order')
  t.ok(jobs >= 40 * 4, `the thread pool was used (${jobs} jobs)`)
  t.ok(peak <= concurrency, `at most ${concurrency} jobs at once (peak ${peak})`)
})

t.test('pings, pongs and pre-encoded frames wait for the messages being compressed before them', async (t) => {
  const pair = new DeflatePair()
  const big = Buffer.alloc(100_000, 'abcdefgh') // compressed on the thread pool
  const preEncoded = frame({ opcode: BINARY, payload: 'broadcast' })
  pair.server.send(big)
  pair.server.sendFrame(preEncoded)
  pair.server.ping('p')
  pair.server.send('small')
  pair.server.pong('q')
  t.equal(pair.serverHandler.written.length, 0, 'nothing overtook the message still being compressed')
  t.ok(pair.server.pendingOutboundBytes >= big.length, 'its bytes count as pending')
  await until(pair.clientHandler, 3)
  t.same(pair.serverHandler.frames().map((f) => f.opcode), [BINARY, BINARY, PING, 0x1, 0xa], 'written in the order sent')
  t.equal(pair.server.pendingOutboundBytes, 0)
  t.same(received(pair.clientHandler).map((m) => m.data.length), [100_000, 9, 5])
  // With nothing pending they go out at once.
  pair.server.ping('now')
  t.equal(pair.serverHandler.frames().at(-1)?.opcode, PING)
})

t.test('received messages waiting for an asynchronous decode are bounded: the backlog is signalled and cleared', async (t) => {
  const h = new BacklogHandler()
  const limit = 5000
  const p = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 20, maxDecodeBacklog: limit, extension: createDeflateExtension(params(), 'server', settings()) }, h)
  const message = Buffer.alloc(150_000, 'xyz') // inflates past the in-place budget: asynchronous
  const payload = deflateRawSync(message, { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)
  // Compressed messages with plain ones between them, all in one read (which pins its buffer).
  const parts: Buffer[] = []
  for (let i = 0; i < 40; i++) {
    parts.push(frame({ opcode: BINARY, rsv1: true, mask: true, payload }))
    parts.push(frame({ opcode: BINARY, mask: true, payload: Buffer.from(`plain ${i}`) }))
  }
  const wire = Buffer.concat(parts)
  p.receive(wire)
  t.same(h.backlog, [true], `one read of ${wire.length} bytes waiting behind a decode: backlogged`)
  t.ok(p.decodeBacklog >= wire.length, `the queue counts the read buffer it pins (${p.decodeBacklog})`)
  await until(h, 80)
  t.same(h.backlog, [true, false], 'cleared once decoded')
  t.equal(p.decodeBacklog, 0)
  const got = received(h)
  t.ok(got.every((m, i) => i % 2 === 0 ? m.data.equals(message) : m.data.toString() === `plain ${(i - 1) / 2}`), 'in order')
})

t.test('a connection stops reading while decodes lag, and counts messages being compressed in bufferedAmount', async (t) => {
  const [serverEnd, clientEnd] = createDuplexPair()
  const conn = new WebSocketConnection(serverEnd, undefined, {
    role: 'server', maxMessageSize: 1 << 20, closeTimeout: 1000, maxPendingBytes: 200_000,
    extension: createDeflateExtension(params(), 'server', settings())
  })
  const internal = conn[kInternal]
  const got: number[] = []
  let pausedSeen = false
  conn.on('message', (data) => {
    got.push(data.length)
    if (internal.pausedFor(PauseReason.Decoding)) pausedSeen = true
  })
  // Incompressible: what waits takes as much room compressed as not.
  const message = randomBytesSeeded(prng(9), 100_000)
  const payload = deflateRawSync(message, { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)
  const count = 10
  clientEnd.write(Buffer.concat(Array.from({ length: count }, () => frame({ opcode: BINARY, rsv1: true, mask: true, payload }))))
  await new Promise<void>((resolve) => conn.on('message', () => { if (got.length === count) resolve() }))
  t.ok(pausedSeen, 'reading was paused for decoding while messages waited')
  t.notOk(internal.pausedFor(PauseReason.Decoding), 'and resumed')
  t.ok(got.every((n) => n === message.length), `${count} messages`)
  t.equal(internal.core.decodeBacklog, 0)

  const big = Buffer.alloc(500_000, 'z')
  conn.send(big)
  t.ok(conn.bufferedAmount >= big.length, `bufferedAmount counts a message still being compressed (${conn.bufferedAmount})`)
  await new Promise<void>((resolve) => conn.send('after', () => resolve()))
  t.ok(conn.bufferedAmount < 1000, 'and lets go of it once written')
  conn.terminate()
})
