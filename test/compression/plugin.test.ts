// The compression setting end to end: negotiation in the 101, messages both
// ways through the extension, and broadcast compressed once for every
// receiver that can take the same bytes.

import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, connect, inboxOf, listen } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { Inbox } from '../helpers/app.js'

const json = (n: number): string => JSON.stringify(Array.from({ length: n }, (_, i) => ({ id: i, name: `item ${i}`, price: i * 1.5, tags: ['a', 'b'] })))

function echo (app: FastifyInstance, path: string, websocket: object | true = true): void {
  app.get(path, { websocket }, (conn) => {
    conn.on('message', (data: Buffer, isBinary: boolean) => conn.send(data, { binary: isBinary }))
  })
}

t.test('off by default: an offer is declined, no Sec-WebSocket-Extensions in the 101', async (t) => {
  const app = await build(t)
  echo(app, '/e')
  await listen(app)
  const { peer, response } = await rawUpgrade(app, '/e', undefined, { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' })
  t.equal(response.headers['sec-websocket-extensions'], undefined)
  peer.destroy()
})

t.test('compression: true accepts a browser-style offer with the default terms', async (t) => {
  const app = await build(t, { compression: true })
  let serverSide = ''
  app.get('/e', { websocket: true }, (conn) => { serverSide = conn.extensions })
  await listen(app)
  const { peer, response } = await rawUpgrade(app, '/e', undefined, { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' })
  const header = response.headers['sec-websocket-extensions']
  t.match(header, /^permessage-deflate/)
  t.match(header, /server_no_context_takeover/, 'the server keeps no context (default)')
  t.match(header, /client_no_context_takeover/, 'and asks the client to keep none')
  t.equal(serverSide, header, 'conn.extensions says what was agreed')
  peer.destroy()
})

t.test('ws client with perMessageDeflate: text and binary, small and large, both ways', async (t) => {
  const app = await build(t, { compression: true, maxMessageSize: 32 * 1024 * 1024 })
  echo(app, '/e')
  await listen(app)
  const ws = await connect(app, '/e', undefined, { perMessageDeflate: true, maxPayload: 32 * 1024 * 1024 })
  t.match(ws.extensions, /permessage-deflate/)
  const inbox = inboxOf(ws)
  const cases: Array<[string, Buffer | string]> = [
    ['small text (under the threshold)', 'hi'],
    ['JSON text', json(100)],
    ['binary', Buffer.alloc(70_000, 7)],
    ['random binary', Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919) % 251))],
    ['16 MiB', Buffer.alloc(16 * 1024 * 1024, 3)]
  ]
  for (const [name, data] of cases) {
    ws.send(data)
    const got = await inbox.next()
    t.ok(got.data.equals(typeof data === 'string' ? Buffer.from(data) : data), name)
    t.equal(got.isBinary, typeof data !== 'string', `${name}: kind kept`)
  }
  ws.close()
})

t.test('injectWS({ compression: true }) negotiates and round-trips', async (t) => {
  const app = await build(t, { compression: { threshold: 0 } })
  echo(app, '/e')
  const client = await app.injectWS('/e', { compression: true })
  t.match(client.extensions, /permessage-deflate/)
  const inbox = new Inbox(client)
  for (const message of ['a', json(10), json(300)]) {
    client.send(message)
    t.equal(await inbox.nextText(), message)
  }
  client.terminate()
})

t.test('a route can turn it off under a plugin that has it on, and refine it', async (t) => {
  const app = await build(t, { compression: true })
  echo(app, '/off', { compression: false })
  echo(app, '/ctx', { compression: { serverContextTakeover: true, clientContextTakeover: true } })
  await listen(app)
  const off = await connect(app, '/off', undefined, { perMessageDeflate: true })
  t.equal(off.extensions, '', 'declined on the route that turned it off')
  const ctx = await connect(app, '/ctx', undefined, { perMessageDeflate: true })
  t.notMatch(ctx.extensions, /no_context_takeover/, 'context takeover on both sides')
  const inbox = inboxOf(ctx)
  for (let i = 0; i < 5; i++) {
    ctx.send(json(50 + i))
    t.equal(await inbox.nextText(), json(50 + i), `message ${i} through the kept contexts`)
  }
  off.close()
  ctx.close()
})

t.test('broadcast reaches compressed, context-keeping and plain receivers alike', async (t) => {
  const app = await build(t, { compression: true })
  app.get('/plain', { websocket: { compression: false } }, () => {})
  app.get('/fresh', { websocket: true }, () => {})
  app.get('/ctx', { websocket: { compression: { serverContextTakeover: true } } }, () => {})
  await listen(app)
  const clients = [
    await connect(app, '/plain', undefined, { perMessageDeflate: true }),
    await connect(app, '/fresh', undefined, { perMessageDeflate: true }),
    await connect(app, '/fresh', undefined, { perMessageDeflate: true }),
    await connect(app, '/ctx', undefined, { perMessageDeflate: true }),
    await connect(app, '/fresh')
  ]
  const inboxes = clients.map(inboxOf)
  const messages = [json(40), 'short', json(80), Buffer.alloc(3000, 1)]
  for (const m of messages) t.equal(app.websocket.broadcast(m), clients.length)
  for (const [i, inbox] of inboxes.entries()) {
    for (const m of messages) {
      const got = await inbox.next()
      t.ok(got.data.equals(typeof m === 'string' ? Buffer.from(m) : m), `receiver ${i} got the message intact and in order`)
    }
  }
  for (const c of clients) c.close()
})

t.test('a compressed broadcast is compressed once: the fresh-context receivers get identical frames', async (t) => {
  const app = await build(t, { compression: true })
  app.get('/fresh', { websocket: true }, () => {})
  await listen(app)
  const a = await rawUpgrade(app, '/fresh', undefined, { 'Sec-WebSocket-Extensions': 'permessage-deflate' })
  const b = await rawUpgrade(app, '/fresh', undefined, { 'Sec-WebSocket-Extensions': 'permessage-deflate' })
  const message = json(60)
  app.websocket.broadcast(message)
  const [fa, fb] = [await a.peer.frame(), await b.peer.frame()]
  t.equal(fa.rsv1, true, 'compressed (RSV1)')
  t.ok(fa.payload.length < Buffer.byteLength(message) / 2, `smaller on the wire (${fa.payload.length} of ${Buffer.byteLength(message)} bytes)`)
  t.ok(fa.payload.equals(fb.payload), 'the same bytes for both')
  a.peer.destroy()
  b.peer.destroy()
})

