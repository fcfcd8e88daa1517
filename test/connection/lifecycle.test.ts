import { once } from 'node:events'
import t from 'tap'
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import websocket, { type WebSocketConnection } from '../../lib/index.js'
import { Queue, build, clientClosed, connect, gate, listen } from '../helpers/app.js'
import { RawPeer, handshake, rawRequest, rawUpgrade } from '../helpers/raw-peer.js'
import { closePayload, encodeFrame, parseClose } from '../helpers/wire.cjs'

t.test('an upgrade whose hooks were still running when app.close() began gets 503, and close() resolves', async (t) => {
  const app = await build(t)
  const entered = gate()
  const release = gate()
  app.get('/slow', {
    websocket: true,
    onRequest: async () => {
      entered.resolve()
      await release.promise
    }
  }, () => {})
  // Added after the plugin's: runs once every open connection was sent its 1001.
  app.addHook('preClose', (done) => {
    release.resolve()
    done()
  })
  await listen(app)
  const peer = await RawPeer.open(app)
  peer.write(handshake('/slow'))
  await entered.promise
  const closing = app.close()
  const response = await peer.response()
  t.equal(response.status, 503, 'refused, not upgraded')
  t.match(JSON.parse(response.body), { statusCode: 503, message: /shutting down/ })
  await closing
  t.equal(app.websocket.clients.size, 0, 'nothing was left open')
})

t.test('the 503 for an upgrade during shutdown does not wait for a half-open client', async (t) => {
  const app = await build(t, { closeTimeout: 60_000 })
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/a', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  const { peer: first } = await rawUpgrade(app, '/a')
  await conns.next()
  const closing = app.close() // waits for `first` to answer its 1001
  t.same(parseClose(await first.frame()), { code: 1001, reason: 'server shutting down' })
  const stubborn = await RawPeer.open(app, { allowHalfOpen: true })
  stubborn.write(handshake('/a'))
  const response = await stubborn.response()
  t.equal(response.status, 503)
  first.write(encodeFrame(0x8, closePayload(1001)))
  // The stubborn client never closes its side: only the server destroying its
  // socket lets the HTTP server, and so app.close(), finish. Bounded, to fail rather than hang.
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    closing.then(() => 'closed'),
    new Promise<string>((resolve) => { timer = setTimeout(resolve, 10_000, 'still waiting after 10 s') })
  ])
  clearTimeout(timer)
  t.equal(outcome, 'closed', 'app.close() resolved while the client kept its side open')
})

t.test('an async handler that awaits gets the messages and the close that came meanwhile', async (t) => {
  const app = await build(t)
  const release = gate()
  const seen = new Queue<{ messages: string[], close: [number, string] }>()
  app.get('/slow', { websocket: true }, async (conn) => {
    await release.promise
    const messages: string[] = []
    conn.on('message', (data: Buffer) => { messages.push(data.toString()) })
    conn.on('close', (code: number, reason: string) => { seen.push({ messages, close: [code, reason] }) })
  })
  await listen(app)
  const ws = await connect(app, '/slow')
  ws.send('one')
  ws.send('two')
  ws.close(4000, 'bye')
  const { code } = await clientClosed(ws)
  t.equal(code, 4000, 'the closing handshake completed while the handler was still awaiting')
  t.equal(app.websocket.clients.size, 0, 'the connection left the open set at once')
  release.resolve()
  t.same(await seen.next(), { messages: ['one', 'two'], close: [4000, 'bye'] }, 'nothing was lost, and close came after the messages')
})

t.test('a handler that only awaits the close gets it even when the client left first', async (t) => {
  const app = await build(t)
  const release = gate()
  const done = new Queue<[number, string]>()
  app.get('/wait', { websocket: true }, async (conn) => {
    await release.promise
    done.push(await once(conn, 'close') as [number, string])
  })
  await listen(app)
  const ws = await connect(app, '/wait')
  ws.send('ignored')
  ws.close(1000)
  await clientClosed(ws)
  release.resolve()
  t.same(await done.next(), [1000, ''])
})

t.test('for await in a late handler sees the held messages, then ends', async (t) => {
  const app = await build(t)
  const release = gate()
  const got = new Queue<string[]>()
  app.get('/iter', { websocket: true }, async (conn) => {
    await release.promise
    const list: string[] = []
    for await (const { data } of conn) list.push(data.toString())
    got.push(list)
  })
  await listen(app)
  const ws = await connect(app, '/iter')
  ws.send('a')
  ws.send('b')
  ws.close()
  await clientClosed(ws)
  release.resolve()
  t.same(await got.next(), ['a', 'b'])
})

t.test('a send-only route does not buffer what the client sends, and still hears its close', async (t) => {
  const app = await build(t, { closeTimeout: 60_000 })
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/feed', { websocket: true }, (conn) => {
    conns.push(conn)
    conn.send('welcome')
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/feed')
  const conn = await conns.next()
  const serverClosed = once(conn, 'close')
  t.equal((await peer.frame()).payload.toString(), 'welcome')
  // Far more than the connection would hold for a handler that is yet to listen (1 MiB).
  const chunk = encodeFrame(0x2, Buffer.alloc(64 * 1024))
  for (let i = 0; i < 64; i++) peer.write(chunk)
  peer.write(encodeFrame(0x8, closePayload(1000)))
  t.same(parseClose(await peer.frame()), { code: 1000, reason: '' }, 'the close behind 4 MiB of unread messages was answered')
  t.same(await serverClosed, [1000, ''], 'the server saw a clean close')
  t.equal(app.websocket.clients.size, 0)
})

t.test('a throwing close, ping or drain listener does not take the process down', async (t) => {
  const app = await build(t)
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/bad', {
    websocket: {
      errorHandler (error, conn) {
        conns.push(conn)
        failures.push((error as Error).message)
      }
    }
  }, (conn) => {
    conn.on('ping', () => { throw new Error('from ping') })
    conn.on('close', () => { throw new Error('from close') })
  })
  const failures = new Queue<string>()
  await listen(app)
  const ws = await connect(app, '/bad')
  ws.ping('x')
  t.equal(await failures.next(), 'from ping', 'the ping listener failure went to the route errorHandler')
  ws.close()
  await clientClosed(ws)
  t.equal(await failures.next(), 'from close', 'so did the close listener failure')
})

t.test('Upgrade to another protocol on a route that also serves HTTP gets the HTTP answer', async (t) => {
  const app = await build(t)
  app.route({
    method: 'GET',
    url: '/both',
    handler: async () => ({ plain: true }),
    wsHandler: () => {}
  })
  await listen(app)
  const response = await rawRequest(app, 'GET /both HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n')
  t.equal(response.status, 200)
  t.same(JSON.parse(response.body), { plain: true })
})

t.test('registering the plugin twice on one server is refused with a clear error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // Sibling contexts: their decorators do not collide, but both would answer every upgrade.
  app.register(async (first) => { await first.register(websocket) })
  app.register(async (second) => { await second.register(websocket) })
  await t.rejects(async () => { await app.ready() }, /already registered on this server/)
})
