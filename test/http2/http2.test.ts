// WebSocket over HTTP/2 (RFC 8441) on a real TLS HTTP/2 server on loopback,
// driven by the package's own HTTP/2 client (connectOverHttp2) and Node's
// http2 module: many WebSockets and requests on one session, the same routes
// and hooks as HTTP/1.1, refusals as HTTP/2 responses, flow control as
// backpressure, resets and lost sessions, and the shutdown round.

import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import http2, { type ClientHttp2Session } from 'node:http2'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import WebSocket from 'ws'
import websocket, { WebSocketUpgradeError, type WebSocketConnection, type WebSocketPluginOptions } from '../../lib/index.js'
import { connectOverHttp2 } from '../../lib/client/http2.js'
import { closeEvent, Inbox, Queue, type Tap } from '../helpers/app.js'
import { selfSignedCert } from '../../scripts/self-signed-cert.cjs'

const tls = selfSignedCert()

/** An HTTP/2 app (TLS unless `cleartext`), closed when the test ends. */
async function h2App (t: Tap, plugin: WebSocketPluginOptions = {}, { cleartext = false, allowHTTP1 = false } = {}): Promise<FastifyInstance> {
  // Typed as the default instance: the HTTP/2 server types change nothing the tests use.
  const app = (cleartext
    ? Fastify({ http2: true })
    : Fastify({ http2: true, https: { key: tls.key, cert: tls.cert, allowHTTP1 } })) as unknown as FastifyInstance
  t.teardown(async () => await app.close())
  await app.register(websocket, plugin)
  return app
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return `${'setSecureContext' in app.server ? 'https' : 'http'}://127.0.0.1:${port}`
}

/** A client session, destroyed when the test ends. */
async function session (t: Tap, origin: string): Promise<ClientHttp2Session> {
  const s = http2.connect(origin, { ca: tls.cert, rejectUnauthorized: false })
  t.teardown(() => { s.destroy() })
  await once(s, 'connect')
  return s
}

/** An ordinary GET on the session, its body as text. */
async function get (s: ClientHttp2Session, path: string): Promise<{ status: number, body: string }> {
  const req = s.request({ ':path': path })
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { body += chunk })
  const [headers] = await once(req, 'response')
  await once(req, 'end')
  return { status: Number(headers[':status']), body }
}

function echoRoute (app: FastifyInstance, path = '/echo/:id'): Queue<WebSocketConnection<FastifyRequest>> {
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get(path, { websocket: true }, (conn) => {
    conns.push(conn)
    conn.on('message', (data, isBinary) => { conn.send(data as Buffer, { binary: isBinary }) })
  })
  return conns
}

t.test('many WebSockets on one session, interleaved with ordinary requests, through the same route', async (t) => {
  const app = await h2App(t)
  const seen: Array<{ id: string, q: unknown, version: string, method: string, host: string }> = []
  app.get<{ Params: { id: string }, Querystring: { q?: string } }>('/echo/:id', { websocket: true }, (conn, req) => {
    seen.push({ id: req.params.id, q: req.query.q, version: req.raw.httpVersion, method: req.method, host: req.host })
    conn.on('message', (data, isBinary) => { conn.send(data as Buffer, { binary: isBinary }) })
  })
  app.get('/api/n/:n', async (req) => ({ n: Number((req.params as { n: string }).n) }))
  const s = await session(t, await listen(app))
  const count = 24
  const work: Array<Promise<unknown>> = []
  const conns: Array<WebSocketConnection<undefined>> = []
  for (let i = 0; i < count; i++) {
    work.push(connectOverHttp2(s, `/echo/${i}?q=${i * 2}`).then(async (conn) => {
      conns.push(conn)
      const inbox = new Inbox(conn)
      conn.send(`text ${i}`)
      conn.send(Buffer.from([i, 0xff, 0]))
      const text = await inbox.next()
      const binary = await inbox.next()
      t.same([text.data.toString(), text.isBinary], [`text ${i}`, false])
      t.same([[...binary.data], binary.isBinary], [[i, 0xff, 0], true])
    }))
    work.push(get(s, `/api/n/${i}`).then((res) => { t.same(res, { status: 200, body: JSON.stringify({ n: i }) }) }))
  }
  await Promise.all(work)
  t.equal(app.websocket.clients.size, count, 'all open at once')
  t.same(seen.map((x) => x.id).sort((a, b) => Number(a) - Number(b)), Array.from({ length: count }, (_, i) => String(i)))
  t.ok(seen.every((x) => x.version === '2.0' && x.method === 'GET' && x.q === String(Number(x.id) * 2)), 'params and querystring, on HTTP/2, as a GET route')
  t.same([...new Set(seen.map((x) => x.host))], [new URL(s.originSet![0]!).host], ':authority is the session\'s origin')
  t.equal(new Set([...app.websocket.clients].map((c) => (c.request.raw as unknown as http2.Http2ServerRequest).stream.session)).size, 1, 'one session on the server too')
  for (const conn of conns) conn.close(1000, 'done')
  await Promise.all(conns.map(async (conn) => await closeEvent(conn)))
  t.equal((await get(s, '/api/n/7')).status, 200, 'the session serves on')
})

t.test('refusals are ordinary HTTP/2 responses: a hook\'s 401, a plain route, no route, a bad version', async (t) => {
  const app = await h2App(t)
  app.addHook('onRequest', async (req, reply) => {
    if ((req.query as { token?: string }).token !== 'ok') return await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'who are you' })
  })
  echoRoute(app, '/ws')
  app.get('/plain', async () => ({ plain: true }))
  const s = await session(t, await listen(app))
  const refused = async (path: string): Promise<WebSocketUpgradeError> => {
    const error = await connectOverHttp2(s, path).then(() => null, (err: unknown) => err)
    t.type(error, WebSocketUpgradeError, path)
    return error as WebSocketUpgradeError
  }
  // The server publishes once its response has finished, which the client may see first.
  const published = new Promise<number>((resolve) => {
    const onRefused = (message: unknown): void => {
      unsubscribe('fastify-rfc6455:refused', onRefused)
      resolve((message as { statusCode: number }).statusCode)
    }
    subscribe('fastify-rfc6455:refused', onRefused)
  })
  const auth = await refused('/ws')
  t.same([auth.statusCode, auth.headers['www-authenticate'], auth.json], [401, 'Bearer', { error: 'who are you' }])
  t.equal(await published, 401, 'the refusal is published on the diagnostics channel, as over HTTP/1.1')
  const plain = await refused('/plain?token=ok')
  t.equal(plain.statusCode, 404, 'a route without a WebSocket handler: its 200 would open the tunnel')
  t.match(plain.json, { message: 'no WebSocket route at /plain?token=ok' })
  t.equal((await refused('/nowhere?token=ok')).statusCode, 404, 'no route: the 404 handler')
  // A raw extended CONNECT with the wrong version.
  const stream = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws?token=ok', ':scheme': 'https', ':authority': 'localhost', 'sec-websocket-version': '8' }, { endStream: false })
  const [headers] = await once(stream, 'response')
  t.same([headers[':status'], headers['sec-websocket-version']], [400, '13'], 'version 8: 400 naming 13 (HTTP/2 has no 426 Upgrade)')
  stream.resume()
  await once(stream, 'close')
  t.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR, 'the server closed the refused stream after its answer (RST_STREAM NO_ERROR)')
  t.equal(app.websocket.clients.size, 0)
  const ok = await connectOverHttp2(s, '/ws?token=ok')
  t.equal(ok.readyState, ok.OPEN, 'the session still opens WebSockets')
  ok.terminate()
})

t.test('subprotocol, compression and hook headers on the 200', async (t) => {
  const app = await h2App(t, { compression: true, protocols: ['chat.v2', 'chat.v1'] })
  app.addHook('onRequest', async (_req, reply) => { reply.header('x-served-by', 'h2') })
  const conns = echoRoute(app, '/ws')
  const s = await session(t, await listen(app))
  const conn = await connectOverHttp2(s, '/ws', { protocols: ['chat.v1', 'chat.v2'], compression: true })
  const server = await conns.next()
  t.equal(conn.protocol, 'chat.v2', 'the server\'s preference')
  const raw = s.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/ws', ':scheme': 'https', ':authority': 'localhost', 'sec-websocket-version': '13', 'sec-websocket-protocol': 'chat.v1' }, { endStream: false })
  const [head] = await once(raw, 'response')
  t.same([head[':status'], head['sec-websocket-protocol'], head['x-served-by'], head['sec-websocket-accept']], [200, 'chat.v1', 'h2', undefined],
    '200 with the subprotocol and the hook\'s header; no accept key over HTTP/2')
  raw.close(http2.constants.NGHTTP2_CANCEL)
  await conns.next()
  t.equal(server.protocol, 'chat.v2')
  t.match(conn.extensions, /^permessage-deflate/)
  const big = 'compressible '.repeat(20_000)
  const inbox = new Inbox(conn)
  conn.send(big)
  t.equal((await inbox.next()).data.toString(), big, 'a compressed message both ways')
  conn.close()
  await closeEvent(conn)
})

t.test('flow control is the backpressure: a reader that stops reading stops the writer', async (t) => {
  const app = await h2App(t)
  let serverConn!: WebSocketConnection<FastifyRequest>
  const ready = new Queue<void>()
  app.get('/flood', { websocket: true }, (conn) => { serverConn = conn; ready.push() })
  const s = await session(t, await listen(app))
  const conn = await connectOverHttp2(s, '/flood')
  await ready.next()
  conn.pause()
  const chunk = Buffer.alloc(256 * 1024, 7)
  let sent = 0
  while (serverConn.send(chunk)) sent++
  t.ok(sent < 64, `send returned false after ${sent} chunks of 256 KiB: the stream's window is closed`)
  t.ok(serverConn.bufferedAmount >= 1024 * 1024, 'bytes wait in the connection, counted in bufferedAmount')
  const drained = once(serverConn, 'drain')
  let received = 0
  conn.on('message', (data: Buffer) => { received += data.length })
  conn.resume()
  await drained
  t.pass('drain once the reader read again (WINDOW_UPDATE)')
  const total = (sent + 1) * chunk.length
  while (received < total) await once(conn, 'message')
  t.equal(received, total, 'every byte arrived, in 256 KiB messages')
  conn.terminate()
})

t.test('large messages both ways under flow control', async (t) => {
  const app = await h2App(t, { maxMessageSize: 16 * 1024 * 1024 })
  echoRoute(app, '/ws')
  const s = await session(t, await listen(app))
  const conn = await connectOverHttp2(s, '/ws', { maxMessageSize: 16 * 1024 * 1024 })
  const inbox = new Inbox(conn)
  const payload = Buffer.alloc(8 * 1024 * 1024)
  for (let i = 0; i < payload.length; i += 4096) payload[i] = i & 0xff
  conn.send(payload)
  const echoed = await inbox.next()
  t.ok(echoed.data.equals(payload), '8 MiB echoed byte for byte')
  conn.terminate()
})

t.test('a stream reset mid-message closes that WebSocket with 1006 only; a lost session closes its WebSockets only', async (t) => {
  const app = await h2App(t)
  const conns = echoRoute(app, '/ws')
  const origin = await listen(app)
  const s = await session(t, origin)
  const other = await session(t, origin)
  const victim = await connectOverHttp2(s, '/ws')
  const victimServer = await conns.next()
  const neighbour = await connectOverHttp2(s, '/ws')
  await conns.next()
  const elsewhere = await connectOverHttp2(other, '/ws')
  const elsewhereServer = await conns.next()
  // Half of a masked frame's header and payload, then RST_STREAM (CANCEL).
  const stream = streamOf(victim)
  stream.write(Buffer.from([0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4, 9, 9, 9]))
  const closed = closeEvent(victimServer)
  stream.close(http2.constants.NGHTTP2_CANCEL)
  t.equal((await closed)[0], 1006, 'the reset WebSocket: 1006')
  const inbox = new Inbox(neighbour)
  neighbour.send('still here')
  t.equal((await inbox.next()).data.toString(), 'still here', 'its neighbour on the session is untouched')

  const lost = closeEvent(elsewhereServer)
  const neighbourServers = [...app.websocket.clients].filter((c) => c !== elsewhereServer)
  other.destroy()
  t.equal((await lost)[0], 1006, 'a destroyed session: 1006 for its WebSocket')
  t.equal(neighbourServers.every((c) => c.readyState === c.OPEN), true, 'the other session\'s WebSockets are open')
  void elsewhere
  neighbour.terminate()
})

t.test('app.close(): 1001 to each WebSocket, then GOAWAY, and it completes', async (t) => {
  const app = await h2App(t)
  echoRoute(app, '/ws')
  const s = await session(t, await listen(app))
  const conns = await Promise.all([1, 2, 3].map(async () => await connectOverHttp2(s, '/ws')))
  const closes = conns.map(async (conn) => await closeEvent(conn))
  const goaway = once(s, 'goaway')
  await app.close()
  t.same((await Promise.all(closes)).map(([code]) => code), [1001, 1001, 1001], '1001 to each')
  await goaway
  t.pass('the session got GOAWAY (an idle browser session would otherwise hold app.close() for http2SessionTimeout)')
})

t.test('allowHTTP1 servers take HTTP/1.1 upgrades and HTTP/2 streams on one port; h2c works too', async (t) => {
  const app = await h2App(t, {}, { allowHTTP1: true })
  const versions: string[] = []
  app.get('/ws', { websocket: true }, (conn, req) => {
    versions.push(req.raw.httpVersion)
    conn.on('message', (data) => conn.send(data as Buffer))
  })
  const origin = await listen(app)
  const h1 = new WebSocket(`${origin.replace('https', 'wss')}/ws`, { rejectUnauthorized: false })
  await once(h1, 'open')
  h1.send('over 1.1')
  const [reply] = await once(h1, 'message')
  t.equal(String(reply), 'over 1.1')
  const s = await session(t, origin)
  const h2 = await connectOverHttp2(s, '/ws')
  const inbox = new Inbox(h2)
  h2.send('over 2')
  t.equal((await inbox.next()).data.toString(), 'over 2')
  t.same(versions, ['1.1', '2.0'], 'the handler tells them apart by request.raw.httpVersion')
  h1.close()
  h2.close()
  await Promise.all([once(h1, 'close'), closeEvent(h2)])

  const clear = await h2App(t, {}, { cleartext: true })
  const hosts: string[] = []
  clear.addHook('onRequest', async (req) => { hosts.push(req.host) })
  echoRoute(clear, '/ws')
  const cs = await session(t, await listen(clear))
  const c = await connectOverHttp2(cs, '/ws')
  t.same(hosts, [`127.0.0.1:${(clear.server.address() as AddressInfo).port}`], 'h2c: :authority is the address the session is connected to')
  const cinbox = new Inbox(c)
  c.send('h2c')
  t.equal((await cinbox.next()).data.toString(), 'h2c', 'cleartext HTTP/2 (h2c)')
  c.terminate()
})

t.test('broadcast, topics and heartbeats reach HTTP/2 WebSockets as any other', async (t) => {
  const app = await h2App(t, { heartbeatInterval: 60_000 })
  app.get('/ws', { websocket: true }, (conn) => { conn.subscribe('news') })
  const s = await session(t, await listen(app))
  const a = await connectOverHttp2(s, '/ws')
  const b = await connectOverHttp2(s, '/ws')
  const [ia, ib] = [new Inbox(a), new Inbox(b)]
  t.equal(app.websocket.broadcast('to all'), 2)
  t.equal(app.websocket.publish('news', 'to subscribers'), 2)
  for (const inbox of [ia, ib]) {
    t.equal((await inbox.next()).data.toString(), 'to all')
    t.equal((await inbox.next()).data.toString(), 'to subscribers')
  }
  const server = [...app.websocket.clients][0]!
  const pong = once(server, 'pong')
  server.ping('are you there')
  t.equal(String((await pong)[0]), 'are you there', 'ping and the client\'s automatic pong')
  a.terminate()
  b.terminate()
})

/** The client connection's HTTP/2 stream, for writing raw bytes in the reset test. */
function streamOf (conn: WebSocketConnection<undefined>): http2.ClientHttp2Stream {
  return conn._socket as http2.ClientHttp2Stream
}

t.test('maxConnections and handshakeTimeout hold over HTTP/2 as over HTTP/1.1', async (t) => {
  const app = await h2App(t, { maxConnections: 1, handshakeTimeout: 300 })
  echoRoute(app, '/ws')
  app.get('/stuck', { websocket: true, onRequest: async () => await new Promise(() => {}) }, () => {})
  const s = await session(t, await listen(app))
  const first = await connectOverHttp2(s, '/ws')
  const full = await connectOverHttp2(s, '/ws').then(() => null, (err: WebSocketUpgradeError) => err)
  t.same([full?.statusCode, full?.headers['retry-after']], [503, '5'], 'past maxConnections: 503 with Retry-After')
  first.close()
  await closeEvent(first)
  // A hook that never answers: the stream is reset once handshakeTimeout has passed.
  const stuck = await connectOverHttp2(s, '/stuck').then(() => null, (err: { code?: string }) => err)
  t.equal(stuck?.code, 'WS_ERR_UPGRADE_ABORTED', 'the stream was reset')
  t.equal(app.websocket.clients.size, 0)
  const plain = await get(s, '/ws')
  t.same([plain.status, JSON.parse(plain.body).message], [400, 'this route only accepts WebSocket connections (over HTTP/2: an extended CONNECT, RFC 8441)'],
    'the session serves on; a plain GET on a WebSocket-only route is a 400 (HTTP/2 has no Upgrade for a 426)')
})

t.test('a route\'s own maxConnections, and upgrades during app.close(), are refused without HTTP/1-only headers', async (t) => {
  const app = await h2App(t)
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  app.get('/one', { websocket: { maxConnections: 1 } }, () => {})
  app.get('/slow', { websocket: true, preHandler: async () => await held }, () => {})
  // Released from a preClose hook after the plugin's: the shutdown round has begun.
  app.addHook('preClose', (done) => { release(); done() })
  const s = await session(t, await listen(app))
  const first = await connectOverHttp2(s, '/one')
  const second = await connectOverHttp2(s, '/one').then(() => null, (err: WebSocketUpgradeError) => err)
  t.same([second?.statusCode, second?.headers.connection], [503, undefined], 'the route\'s limit: 503, no Connection header')
  first.terminate()
  const slow = connectOverHttp2(s, '/slow').then(() => null, (err: WebSocketUpgradeError) => err)
  await new Promise<void>((resolve) => app.server.once('connect' as any, () => setImmediate(resolve)))
  const closing = app.close()
  t.equal((await slow)?.statusCode, 503, 'its hooks were still running when app.close() began: 503')
  await closing
})

t.test('app.injectWS on an HTTP/2 app opens the WebSocket as an extended CONNECT over an in-memory session', async (t) => {
  for (const cleartext of [false, true]) {
    const app = await h2App(t, {}, { cleartext })
    const versions: string[] = []
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers.authorization !== 'Bearer ok') return await reply.code(401).send({ error: 'no' })
    })
    app.get('/ws', { websocket: true }, (conn, req) => {
      versions.push(req.raw.httpVersion)
      conn.on('message', (data) => conn.send(data as Buffer))
    })
    const conn = await app.injectWS('/ws', { headers: { Authorization: 'Bearer ok' } })
    const inbox = new Inbox(conn)
    conn.send('injected')
    t.equal((await inbox.next()).data.toString(), 'injected', cleartext ? 'h2c' : 'TLS')
    t.same(versions, ['2.0'])
    await t.rejects(app.injectWS('/ws'), { statusCode: 401, message: 'Unexpected server response: 401' }, 'a refusal rejects as on HTTP/1.1')
    conn.close()
    await closeEvent(conn)
  }
})

t.test('hostile streams: reset while the hooks run, frames that break the protocol, DATA after a refusal — the session and the app serve on', async (t) => {
  const app = await h2App(t)
  let entered!: () => void
  let release!: () => void
  const inHook = new Promise<void>((resolve) => { entered = resolve })
  const held = new Promise<void>((resolve) => { release = resolve })
  let handled = 0
  let serverStream!: http2.ServerHttp2Stream
  app.server.on('connect' as any, (req: http2.Http2ServerRequest) => { serverStream = req.stream })
  let passed!: () => void
  const hookDone = new Promise<void>((resolve) => { passed = resolve })
  app.get('/slow', { websocket: true, preHandler: async () => { entered(); await held; passed() } }, () => { handled++ })
  app.addHook('onRequest', async (req, reply) => { if (req.url === '/denied') return await reply.code(403).send({ no: true }) })
  app.get('/denied', { websocket: true }, () => { handled++ })
  const conns = echoRoute(app, '/ws')
  const s = await session(t, await listen(app))
  const connectHeaders = (path: string) => ({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': path, ':scheme': 'https', ':authority': 'localhost', 'sec-websocket-version': '13' })

  // Reset while a hook is pending: nothing is accepted when it resolves, nothing is left counted.
  const early = s.request(connectHeaders('/slow'), { endStream: false })
  await inHook
  const serverSide = serverStream
  early.close(http2.constants.NGHTTP2_CANCEL)
  await once(serverSide, 'close')
  release()
  await hookDone
  // What follows the hook (accept.ts) runs in the same chain of promise jobs: done by the next macrotask.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(handled, 0, 'the handler never ran for a reset stream')
  t.equal(app.websocket.clients.size, 0, 'nothing accepted')

  // DATA after a refusal: the server closed the stream after answering; more bytes change nothing.
  const refused = s.request(connectHeaders('/denied'), { endStream: false })
  const [head] = await once(refused, 'response')
  t.equal(head[':status'], 403)
  refused.write(Buffer.alloc(1024, 0x82), () => {})
  refused.resume()
  await once(refused, 'close')

  // An unmasked frame from a client: 1002 for that WebSocket only.
  const bad = await connectOverHttp2(s, '/ws')
  const badServer = await conns.next()
  const closed = closeEvent(badServer)
  streamOf(bad).write(Buffer.from([0x81, 0x02, 0x68, 0x69]))
  t.equal((await closed)[0], 1002, 'protocol error: 1002')
  const good = await connectOverHttp2(s, '/ws')
  const inbox = new Inbox(good)
  good.send('fine')
  t.equal((await inbox.next()).data.toString(), 'fine', 'the session still carries WebSockets')
  t.equal((await get(s, '/denied')).status, 403, 'and requests')
  t.equal(app.websocket.clients.size, 1)
  good.terminate()
})
