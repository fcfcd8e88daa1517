import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { WebSocketConnection } from '../lib/index.js'
import {
  Queue, RawPeer, activeTimers, build, clientClosed, clientFrame, closeEvent, closePayload, connect, handshake, inboxOf, listen,
  parseClose, rawUpgrade
} from './helpers.js'

t.test('app.close() closes every connection with 1001 and resolves', async (t) => {
  const app = await build(t)
  app.get('/a', { websocket: true }, () => {})
  app.get('/b', { websocket: { closeTimeout: 60_000 } }, () => {})
  await listen(app)
  const clients = [await connect(app, '/a'), await connect(app, '/a'), await connect(app, '/b')]
  t.equal(app.websocket.clients.size, 3)
  const closed = clients.map(clientClosed)
  await app.close()
  const results = await Promise.all(closed)
  t.same(results, clients.map(() => ({ code: 1001, reason: 'server shutting down' })), 'every client got 1001')
  t.equal(app.websocket.clients.size, 0)
})

t.test('app.close() with no connections', async (t) => {
  const app = await build(t)
  app.get('/a', { websocket: true }, () => {})
  await listen(app)
  await app.close()
  t.pass('resolves')
})

t.test('a client that ignores the close frame is dropped after closeTimeout, and app.close() resolves', async (t) => {
  const app = await build(t, { closeTimeout: 200 })
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/deaf', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  const polite = await connect(app, '/deaf')
  const politeConn = await conns.next()
  const { peer } = await rawUpgrade(app, '/deaf')
  const deafConn = await conns.next()
  const politeClosed = clientClosed(polite)
  const deafClosed = closeEvent(deafConn)
  const politeServerClosed = closeEvent(politeConn)

  const started = Date.now()
  await app.close()
  const elapsed = Date.now() - started
  t.same(parseClose(await peer.frame()), { code: 1001, reason: 'server shutting down' }, 'the deaf peer was told')
  t.ok(elapsed >= 150, `app.close() waited for the timeout (${elapsed} ms)`)
  t.equal((await deafClosed)[0], 1006, 'the deaf connection was dropped')
  await peer.closedEvent()
  t.ok(peer.closed)
  t.equal((await politeClosed).code, 1001, 'the polite client closed normally')
  t.equal((await politeServerClosed)[0], 1001, 'with the code echoed')
})

t.test('no timers are left behind', async (t) => {
  const before = activeTimers()
  const app = await build(t, { closeTimeout: 200 })
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data: Buffer) => { conn.send(data) })
  })
  app.get('/closer', { websocket: true }, (conn) => { conn.close(1000) })
  await listen(app)

  // A clean close started by the server arms the close timer, which must be cleared.
  const closer = await connect(app, '/closer')
  await clientClosed(closer)
  // And one started by the client.
  const client = await connect(app, '/echo')
  client.send('x')
  await inboxOf(client).next()
  const clientDone = clientClosed(client)
  client.close()
  await clientDone
  // A connection dropped without a close.
  const dropped = await connect(app, '/echo')
  const droppedDone = clientClosed(dropped)
  dropped.terminate()
  await droppedDone
  // Connections closed by the shutdown, one of which ignores the close frame.
  const open = await connect(app, '/echo')
  const openDone = clientClosed(open)
  const { peer } = await rawUpgrade(app, '/echo')
  await app.close()
  await openDone
  await peer.closedEvent()
  t.equal(app.websocket.clients.size, 0)
  t.equal(activeTimers(), before, 'as many timers as before the test')
})

for (const return503OnClosing of [true, false]) {
  t.test(`an upgrade that arrives while closing gets 503 (Fastify's return503OnClosing: ${return503OnClosing})`, async (t) => {
    const app = await build(t, { closeTimeout: 2000 }, { return503OnClosing })
    app.get('/ws', { websocket: true }, () => {})
    await listen(app)
    // This peer ignores the close frame, which keeps the app closing for a while.
    const { peer } = await rawUpgrade(app, '/ws')
    const closing = app.close()
    t.equal(parseClose(await peer.frame()).code, 1001, 'the shutdown has started')

    const late = await RawPeer.open(app)
    late.write(handshake('/ws'))
    const res = await late.response()
    t.equal(res.status, 503)
    await late.end()
    t.ok(late.ended, 'and the connection ends')

    // Answering the close lets the shutdown finish before the timeout.
    peer.write(clientFrame(0x8, closePayload(1001)))
    await closing
    t.pass('app.close() resolved')
  })
}

t.test('a client that keeps a refused connection open does not hold up app.close()', async (t) => {
  const app = await build(t)
  app.get('/private', {
    websocket: true,
    onRequest: async (_req, reply) => { await reply.code(401).send({ error: 'no' }) }
  }, () => {})
  app.get('/ws', { websocket: true }, () => {})
  await listen(app)
  const refused = await RawPeer.open(app, { allowHalfOpen: true })
  refused.write(handshake('/private'))
  t.equal((await refused.response()).status, 401)
  const invalid = await RawPeer.open(app, { allowHalfOpen: true })
  invalid.write(handshake('/ws', { 'Sec-WebSocket-Key': 'bad' }))
  t.equal((await invalid.response()).status, 400)
  // Neither peer ends its side; the server must not wait for them.
  await refused.end()
  await invalid.end()
  t.ok(refused.ended && invalid.ended, 'the server ended its side')
  await app.close()
  t.pass('app.close() resolved')
  refused.destroy()
  invalid.destroy()
})
