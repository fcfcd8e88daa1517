import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import type net from 'node:net'
import t, { type Test } from 'tap'
import type { WebSocketConnection } from '../../lib/index.js'
import { build, connect, gate, listen } from '../helpers/app.js'
import { RawPeer, rawUpgrade } from '../helpers/raw-peer.js'
import { encodeFrame } from '../helpers/wire.cjs'
import { fakeTimers, loopTurns, within } from '../helpers/time.js'

// Peers that stop reading: what the server queues for them must stay bounded,
// and the connection must end, whatever the route does with send()'s return value.

interface Seen {
  code?: number
  reason?: string
  errorCode?: string
  maxBuffered: number
}

/** Writes `batch` repeatedly, honouring backpressure, until the server closes the connection or `max` batches went out. */
async function writeUntilClosed (socket: net.Socket, batch: Buffer, max: number): Promise<number> {
  // A reset from the server rejects `once`: that is a close too.
  const closed = once(socket, 'close').then(() => true, () => true)
  let sent = 0
  while (sent < max && !socket.destroyed) {
    sent++
    if (!socket.write(batch)) {
      if (await Promise.race([once(socket, 'drain').then(() => false, () => true), closed])) break
    }
  }
  return sent
}

function limitEvents (t: Test): Array<{ limit: string, error?: { code?: string } }> {
  const events: Array<{ limit: string, error?: { code?: string } }> = []
  const listener = (message: unknown): void => { events.push(message as { limit: string }) }
  subscribe('fastify-rfc6455:limit', listener)
  t.teardown(() => { unsubscribe('fastify-rfc6455:limit', listener) })
  return events
}

t.test('a peer that floods pings and never reads is dropped with 1008; its pongs never pile up', async (t) => {
  const app = await build(t)
  const seen: Seen = { maxBuffered: 0 }
  const closed = gate()
  app.get('/quiet', { websocket: true }, (conn) => {
    conn.on('ping', () => { seen.maxBuffered = Math.max(seen.maxBuffered, conn.bufferedAmount) })
    conn.on('error', (err: Error & { code?: string }) => { seen.errorCode = err.code })
    conn.on('close', (code, reason) => {
      seen.code = code
      seen.reason = reason
      closed.resolve()
    })
  })
  const limits = limitEvents(t)
  await listen(app)
  const { peer } = await rawUpgrade(app, '/quiet')
  peer.socket.pause() // never reads again
  // The reported case: masked 125-byte pings, up to a million of them.
  const ping = encodeFrame(0x9, Buffer.alloc(125, 0x61))
  const batch = Buffer.concat(Array.from({ length: 1000 }, () => ping))
  const batches = await writeUntilClosed(peer.socket, batch, 1000)
  await closed.promise
  t.equal(seen.code, 1008, 'closed with 1008 (policy violation)')
  t.equal(seen.errorCode, 'WS_ERR_PING_FLOOD', 'the error names the flood')
  t.ok(batches < 1000, `closed before the million pings were all sent (after ${batches * 1000})`)
  // One pong is in flight, later ones coalesce: the queue never holds more than a batch of pongs.
  t.ok(seen.maxBuffered < 256 * 1024, `bufferedAmount stayed small (max ${seen.maxBuffered} bytes)`)
  t.same(limits.map((e) => [e.limit, e.error?.code]), [['maxOwedPings', 'WS_ERR_PING_FLOOD']], 'published on the limit channel')
  peer.destroy()
})

t.test('a ping burst from a peer that reads gets a pong for the latest ping at least', async (t) => {
  const app = await build(t)
  app.get('/quiet', { websocket: true }, () => {})
  await listen(app)
  const { peer } = await rawUpgrade(app, '/quiet')
  const pings = Buffer.concat(Array.from({ length: 50 }, (_, i) => encodeFrame(0x9, `ping ${i}`)))
  peer.write(pings)
  const payloads: string[] = []
  const opcodes = new Set<number>()
  while (payloads.at(-1) !== 'ping 49') {
    const frame = await peer.frame()
    opcodes.add(frame.opcode)
    payloads.push(frame.payload.toString())
  }
  t.same([...opcodes], [0xa], 'only pongs come back')
  t.ok(payloads.length >= 1 && payloads.length <= 50, `${payloads.length} pongs for 50 pings, in order`)
  t.same([...payloads].sort((a, b) => Number(a.slice(5)) - Number(b.slice(5))), payloads, 'pongs answer pings in order')
  peer.destroy()
})

t.test('an echo route whose client never reads is closed at maxBufferedAmount (default 4 MiB)', async (t) => {
  const app = await build(t)
  const seen: Seen = { maxBuffered: 0 }
  const closed = gate()
  let largest = 0
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data, isBinary) => {
      largest = Math.max(largest, data.length)
      seen.maxBuffered = Math.max(seen.maxBuffered, conn.bufferedAmount)
      conn.send(data, { binary: isBinary }) // ignores the return value, as careless routes do
    })
    conn.on('error', (err: Error & { code?: string }) => { seen.errorCode = err.code })
    conn.on('close', (code) => {
      seen.code = code
      closed.resolve()
    })
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/echo')
  peer.socket.pause()
  const message = encodeFrame(0x2, Buffer.alloc(64 * 1024, 7))
  // 2 GiB would be sent without the limit; the connection must end long before.
  const batches = await writeUntilClosed(peer.socket, message, 32 * 1024)
  await closed.promise
  t.equal(seen.code, 1008, 'closed with 1008')
  t.equal(seen.errorCode, 'WS_ERR_BUFFER_FULL', 'the error names the full buffer')
  t.ok(batches < 32 * 1024, `closed after ${(batches * 64) / 1024} MiB of 2 GiB`)
  t.ok(seen.maxBuffered <= 4 * 1024 * 1024 + largest + 14, `never more than the limit plus one message queued (max ${seen.maxBuffered})`)
  peer.destroy()
})

t.test('onBufferFull: refuse keeps the connection and refuses sends past the limit', async (t) => {
  const app = await build(t)
  const maxBufferedAmount = 256 * 1024
  let server: WebSocketConnection<unknown> | undefined
  const opened = gate()
  app.get('/push', { websocket: { maxBufferedAmount, onBufferFull: 'refuse' } }, (conn) => {
    server = conn
    opened.resolve()
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/push')
  peer.socket.pause()
  await opened.promise
  const conn = server!
  const chunk = Buffer.alloc(64 * 1024)
  let accepted = 0
  let refused: (Error & { code?: string }) | undefined
  // Bounded: the kernel takes a few MiB before the socket backs up.
  for (let i = 0; i < 4096 && refused === undefined; i++) {
    try {
      conn.send(chunk)
      accepted++
    } catch (err) {
      refused = err as Error & { code?: string }
    }
    if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve)) // let writes reach the kernel
  }
  t.ok(refused !== undefined, `a send was refused after ${accepted} were queued`)
  t.equal(refused?.code, 'WS_ERR_BUFFER_FULL', 'the refusal carries its code')
  t.ok(conn.bufferedAmount >= maxBufferedAmount, 'refused only once the limit was reached')
  t.equal(conn.readyState, 1, 'the connection stays open')
  const viaCallback = await new Promise<(Error & { code?: string }) | null | undefined>((resolve) => conn.send('x', resolve))
  t.equal(viaCallback?.code, 'WS_ERR_BUFFER_FULL', 'a send with a callback gets the error there instead of a throw')
  // Once the peer reads, sends are accepted again.
  peer.socket.resume()
  peer.socket.on('data', () => {})
  while (conn.bufferedAmount >= maxBufferedAmount) await once(conn, 'drain')
  t.doesNotThrow(() => conn.send('after'), 'sends work again once the peer reads')
  peer.destroy()
})

t.test('maxConnections: 503 with Retry-After past the plugin-level limit; open connections untouched', async (t) => {
  const app = await build(t, { maxConnections: 2 })
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
  })
  app.get('/health', async () => ({ ok: true }))
  const limits = limitEvents(t)
  await listen(app)
  const a = await connect(app, '/echo')
  const b = await connect(app, '/echo')
  const peer = await RawPeer.open(app)
  peer.write(`GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  const refused = await peer.response()
  t.equal(refused.status, 503, '503 past the limit')
  t.equal(refused.headers['retry-after'], '5', 'with Retry-After')
  t.same(limits.map((e) => e.limit), ['maxConnections'], 'published on the limit channel')
  for (const ws of [a, b]) {
    ws.send('still here')
    t.equal(String((await once(ws, 'message'))[0]), 'still here', 'an open connection still echoes')
  }
  t.equal((await app.inject('/health')).statusCode, 200, 'plain HTTP is not limited')
  const gone = once(app.websocket.clients.values().next().value!, 'close')
  a.close()
  await gone
  const c = await connect(app, '/echo')
  t.equal(c.readyState, 1, 'a freed slot is usable again')
  for (const ws of [b, c]) ws.terminate()
})

t.test('maxConnections on a route limits that route only', async (t) => {
  const app = await build(t)
  app.get('/one', { websocket: { maxConnections: 1 } }, () => {})
  app.get('/many', { websocket: true }, () => {})
  await listen(app)
  const first = await connect(app, '/one')
  await t.rejects(connect(app, '/one'), /503/, 'the second connection to /one gets 503')
  const others = await Promise.all([connect(app, '/many'), connect(app, '/many')])
  t.equal(app.websocket.clients.size, 3, 'other routes are not limited')
  for (const ws of [first, ...others]) ws.terminate()
})

t.test('maxConnections must be a positive integer or Infinity', async (t) => {
  const app = await build(t)
  for (const bad of [0, -1, 1.5, NaN]) {
    t.throws(() => app.get(`/bad${String(bad)}`, { websocket: { maxConnections: bad } }, () => {}), /maxConnections/)
  }
  for (const bad of [0, -5]) {
    t.throws(() => app.get(`/b${bad}`, { websocket: { maxBufferedAmount: bad } }, () => {}), /maxBufferedAmount/)
  }
  t.throws(() => app.get('/p', { websocket: { onBufferFull: 'drop' as 'close' } }, () => {}), /onBufferFull/)
})

t.test('handshakeTimeout: an upgrade whose hooks hang has its socket closed; others are served meanwhile', async (t) => {
  const clock = fakeTimers(t, ['setTimeout'])
  const app = await build(t, { handshakeTimeout: 10_000 })
  const hang = gate()
  const hanging = gate()
  t.teardown(() => hang.resolve())
  app.addHook('onRequest', async (req) => {
    if (req.url !== '/slow') return
    hanging.resolve()
    await hang.promise
  })
  app.get('/slow', { websocket: true }, () => { t.fail('the handler of a timed-out upgrade must not run') })
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data) => conn.send(data))
  })
  const refused: Array<{ statusCode: number, reason: string }> = []
  const onRefused = (m: unknown): void => { refused.push(m as { statusCode: number, reason: string }) }
  subscribe('fastify-rfc6455:refused', onRefused)
  t.teardown(() => { unsubscribe('fastify-rfc6455:refused', onRefused) })
  const limits = limitEvents(t)
  await listen(app)
  const peer = await RawPeer.open(app)
  peer.write('GET /slow HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  // The upgrade's timer is armed before routing, so before its hooks run.
  await within(hanging.promise, 'the hook of /slow')
  const other = await connect(app, '/echo')
  other.send('meanwhile')
  t.equal(String((await once(other, 'message'))[0]), 'meanwhile', 'another client is served while the hook hangs')
  clock.tick(9_999)
  await loopTurns()
  t.equal(peer.ended || peer.closed, false, 'the hanging upgrade is still open 1 ms before handshakeTimeout')
  clock.tick(1)
  await within(peer.closedEvent(), 'the hanging upgrade closing at handshakeTimeout')
  t.equal(peer.ended || peer.closed, true, 'the hanging upgrade was closed')
  t.same(refused.map((m) => [m.statusCode, m.reason]), [[0, 'handshakeTimeout']], 'published as refused without an answer')
  t.same(limits.map((e) => e.limit), ['handshakeTimeout'], 'and on the limit channel')
  t.equal(limits[0]?.error?.code, 'WS_ERR_HANDSHAKE_TIMEOUT', 'with a coded error')
  hang.resolve()
  other.terminate()
})

t.test('Node\'s headersTimeout applies to upgrade requests as to any request', async (t) => {
  const http = await import('node:http')
  const app = await build(t, {}, {
    serverFactory: (handler) => http.createServer({ headersTimeout: 100, requestTimeout: 200, connectionsCheckingInterval: 20 }, handler)
  })
  app.get('/ws', { websocket: true }, () => {})
  await listen(app)
  const peer = await RawPeer.open(app)
  peer.write('GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n') // the head never ends
  const response = await peer.response()
  t.equal(response.status, 408, 'Node answers 408 Request Timeout')
  await peer.end()
})

t.test('diagnostics channels: open, close with its code, refused with its status', async (t) => {
  const app = await build(t)
  app.get('/ws', { websocket: true }, (conn) => {
    conn.on('message', () => conn.close(4001, 'bye'))
  })
  const seen: string[] = []
  const all = gate()
  const record = (line: string): void => {
    seen.push(line)
    if (seen.length === 4) all.resolve()
  }
  const listeners = {
    'fastify-rfc6455:open': (m: any) => record(`open ${m.request.url} ${typeof m.connection.send}`),
    'fastify-rfc6455:close': (m: any) => record(`close ${m.code} ${m.reason} ${m.wasClean}`),
    'fastify-rfc6455:refused': (m: any) => record(`refused ${m.statusCode} ${m.request.url}`)
  }
  for (const [name, fn] of Object.entries(listeners)) subscribe(name, fn)
  t.teardown(() => { for (const [name, fn] of Object.entries(listeners)) unsubscribe(name, fn) })
  await listen(app)
  const ws = await connect(app, '/ws')
  ws.send('x')
  await once(ws, 'close')
  await t.rejects(connect(app, '/ws', undefined, { protocolVersion: 8 }))
  await t.rejects(connect(app, '/nowhere'))
  await all.promise
  t.same(seen, ['open /ws function', 'close 4001 bye true', 'refused 426 /ws', 'refused 404 /nowhere'])
})

t.test('broadcast: a receiver that stops reading is dropped at its limit, the others get every message', async (t) => {
  const app = await build(t, { maxBufferedAmount: 512 * 1024 })
  const closes: number[] = []
  app.get('/feed', { websocket: true }, (conn) => {
    conn.on('close', (code) => closes.push(code))
  })
  await listen(app)
  const good = await connect(app, '/feed')
  const { peer: stalled } = await rawUpgrade(app, '/feed')
  stalled.socket.pause()
  let received = 0
  good.on('message', () => { received++ })
  const counts: number[] = []
  const payload = Buffer.alloc(64 * 1024, 1)
  for (let i = 0; i < 400 && (counts.length === 0 || counts.at(-1) === 2); i++) {
    counts.push(app.websocket.broadcast(payload))
    // The good client reads as fast as it can: give its reads a turn.
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(counts.at(-1), 1, `after ${counts.length} broadcasts only the reading client is counted`)
  t.same(closes, [1008], 'the stalled receiver was dropped with 1008')
  const total = counts.length
  while (received < total) await once(good, 'message')
  t.equal(received, total, 'the reading client got every broadcast')
  good.terminate()
  stalled.destroy()
})

t.test('maxMessagePieces and minAveragePieceSize are route settings: past them, close 1008', async (t) => {
  const app = await build(t)
  const seen: Array<[number, string | undefined]> = []
  const closed = gate()
  app.get('/strict', { websocket: { maxMessagePieces: 3, minAveragePieceSize: Infinity } }, (conn) => {
    let code: string | undefined
    conn.on('error', (err: Error & { code?: string }) => { code = err.code })
    conn.on('close', (c) => {
      seen.push([c, code])
      closed.resolve()
    })
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/strict')
  // Four fragments: one piece more than allowed.
  peer.write(Buffer.concat([
    encodeFrame(0x1, 'a', { fin: false }), encodeFrame(0x0, 'b', { fin: false }),
    encodeFrame(0x0, 'c', { fin: false }), encodeFrame(0x0, 'd')
  ]))
  const frame = await peer.frame()
  t.equal(frame.payload.readUInt16BE(0), 1008, 'the peer gets a close frame with 1008')
  await closed.promise
  t.same(seen, [[1008, 'WS_ERR_MESSAGE_TOO_FRAGMENTED']])
  peer.destroy()
  const other = await build(t)
  for (const bad of [0, 1.5, -1]) {
    t.throws(() => other.get(`/bad-pieces-${bad}`, { websocket: { maxMessagePieces: bad } }, () => {}), /maxMessagePieces/)
  }
  t.throws(() => other.get('/bad-average', { websocket: { minAveragePieceSize: -1 } }, () => {}), /minAveragePieceSize/)
})
