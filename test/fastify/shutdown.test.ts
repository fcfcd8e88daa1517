import t from 'tap'
import type { FastifyRequest } from 'fastify'
import type { WebSocketConnection } from '../../lib/index.js'
import { Queue, build, clientClosed, closeEvent, connect, inboxOf, listen } from '../helpers/app.js'
import { RawPeer, handshake, rawUpgrade } from '../helpers/raw-peer.js'
import { closePayload, encodeFrame, parseClose } from '../helpers/wire.cjs'
import { activeTimers, fakeTimers, loopTurns, within } from '../helpers/time.js'

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
  await within(app.close(), 'app.close()')
  t.equal(app.server.listening, false, 'resolves, the server closed')
  t.equal(app.websocket.clients.size, 0)
})

t.test('a client that ignores the close frame is dropped after closeTimeout, and app.close() resolves', async (t) => {
  const clock = fakeTimers(t, ['setTimeout'])
  const app = await build(t, { closeTimeout: 5000 })
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
  let deafDropped = false
  void deafClosed.then(() => { deafDropped = true })

  let closed = false
  const closing = app.close().then(() => { closed = true })
  t.same(parseClose(await within(peer.frame(), 'the close frame')), { code: 1001, reason: 'server shutting down' }, 'the deaf peer was told')
  t.equal((await within(politeClosed, 'the polite client closing')).code, 1001, 'the polite client closed normally')
  t.equal((await within(politeServerClosed, 'the polite connection closing'))[0], 1001, 'with the code echoed')
  clock.tick(4999)
  await loopTurns()
  t.equal(deafDropped, false, 'the deaf connection is still open 1 ms before closeTimeout')
  t.equal(closed, false, 'and app.close() waits for it')
  clock.tick(1)
  t.equal((await within(deafClosed, 'the deaf connection closing'))[0], 1006, 'the deaf connection was dropped at closeTimeout')
  await within(closing, 'app.close()')
  await within(peer.closedEvent(), 'the deaf peer\'s TCP connection closing')
  t.ok(peer.closed)
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
    // The clock never moves: closeTimeout cannot end the shutdown, only the peer's answer can.
    fakeTimers(t, ['setTimeout'])
    const app = await build(t, { closeTimeout: 5000 }, { return503OnClosing })
    const conns = new Queue<WebSocketConnection<FastifyRequest>>()
    app.get('/ws', { websocket: true }, (conn) => { conns.push(conn) })
    await listen(app)
    // This peer ignores the close frame until told, which keeps the app closing meanwhile.
    const { peer } = await rawUpgrade(app, '/ws')
    const conn = await conns.next()
    const closed = closeEvent(conn)
    const closing = app.close()
    t.equal(parseClose(await peer.frame()).code, 1001, 'the shutdown has started')

    const late = await RawPeer.open(app)
    late.write(handshake('/ws'))
    const res = await late.response()
    t.equal(res.status, 503)
    await late.end()
    t.ok(late.ended, 'and the connection ends')

    // Answering the close lets the shutdown finish before the timeout.
    peer.write(encodeFrame(0x8, closePayload(1001)))
    t.same(await within(closed, 'the connection closing'), [1001, ''], 'the connection closed with the answered 1001')
    t.equal(conn.wasClean, true)
    await within(closing, 'app.close() after the answer')
    t.equal(app.server.listening, false, 'app.close() resolved')
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
  await within(app.close(), 'app.close() with both peers still open')
  t.equal(app.server.listening, false, 'app.close() resolved')
  refused.destroy()
  invalid.destroy()
})
