import Fastify from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import websocket, { WebSocketConnection } from '../../lib/index.js'
import { build, clientClosed, closeEvent, connect, gate, inboxOf, listen } from '../helpers/app.js'
import { RawPeer, handshake, rawRequest, rawUpgrade } from '../helpers/raw-peer.js'
import { encodeFrame, parseClose } from '../helpers/wire.cjs'

function echo (conn: WebSocketConnection<unknown>): void {
  conn.on('message', (data: Buffer, isBinary: boolean) => conn.send(data, { binary: isBinary }))
}

t.test('the plugin decorates the instance and the request', async (t) => {
  const app = await build(t)
  await app.ready()
  t.ok(app.hasDecorator('websocket'), 'app.websocket')
  t.ok(app.hasDecorator('injectWS'), 'app.injectWS')
  t.ok(app.hasRequestDecorator('ws'), 'request.ws')
  t.equal(app.websocket.clients.size, 0)
  t.equal(app.websocket.settings.maxMessageSize, 1024 * 1024, 'default maxMessageSize')
  t.equal(app.websocket.settings.closeTimeout, 5000, 'default closeTimeout')
})

t.test('app.close() removes the upgrade listener the plugin added', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const before = app.server.listenerCount('upgrade')
  await app.register(websocket)
  app.get('/echo', { websocket: true }, echo)
  await listen(app)
  t.equal(app.server.listenerCount('upgrade'), before + 1, 'one listener while the app runs')
  const ws = await connect(app, '/echo')
  const closed = clientClosed(ws)
  await app.close()
  t.equal((await closed).code, 1001, 'the open connection was closed on the way')
  t.equal(app.server.listenerCount('upgrade'), before, 'back to the count before registering')
})

t.test('invalid plugin settings are refused at registration', async (t) => {
  for (const options of [{ maxMessageSize: -1 }, { maxMessageSize: 1.5 }, { closeTimeout: 0 }]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(websocket, options) }, { name: 'WebSocketError', code: 'WS_ERR_INVALID_OPTION', message: /^fastify-rfc6455: / }, JSON.stringify(options))
  }
})

t.test('the websocket shorthand upgrades and echoes', async (t) => {
  const app = await build(t)
  app.get('/echo', { websocket: true }, (conn, req) => {
    t.equal(req.ws, true, 'request.ws is set on the upgrade request')
    echo(conn)
  })
  await listen(app)
  const ws = await connect(app, '/echo')
  const inbox = inboxOf(ws)
  ws.send('hello')
  t.equal(await inbox.nextText(), 'hello')
  ws.close()
  await clientClosed(ws)
})

t.test('route() with handler and wsHandler serves plain GET and upgrades', async (t) => {
  const app = await build(t)
  app.route({
    method: 'GET',
    url: '/chat',
    handler: async (req) => ({ http: true, ws: req.ws }),
    wsHandler: (conn) => { conn.send('from wsHandler') }
  })
  await listen(app)

  const res = await app.inject('/chat')
  t.equal(res.statusCode, 200)
  t.same(res.json(), { http: true, ws: false }, 'plain GET goes to handler, request.ws is false')

  const ws = await connect(app, '/chat')
  const inbox = inboxOf(ws)
  t.equal(await inbox.nextText(), 'from wsHandler')
  ws.close()
  await clientClosed(ws)
})

t.test('a plain GET without Upgrade on a WebSocket-only route gets 426', async (t) => {
  const app = await build(t)
  app.get('/only', { websocket: true }, (conn) => { conn.close() })
  await listen(app)
  const res = await rawRequest(app, 'GET /only HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
  t.equal(res.status, 426)
  t.equal(res.headers.upgrade, 'websocket')
  t.match(JSON.parse(res.body), { statusCode: 426, error: 'Upgrade Required' })
  res.peer.destroy()

  const injected = await app.inject('/only')
  t.equal(injected.statusCode, 426, 'through inject as well')
})

t.test('a route without wsHandler answers plain HTTP and ignores Upgrade', async (t) => {
  const app = await build(t)
  app.get('/plain', async () => ({ plain: true }))
  await listen(app)
  const res = await rawRequest(app, handshake('/plain'))
  t.equal(res.status, 200)
  t.same(JSON.parse(res.body), { plain: true })
  await res.peer.end()
  t.ok(res.peer.ended, 'the server ends the connection after the response')
})

t.test('unknown URL with Upgrade gets 404', async (t) => {
  const app = await build(t)
  app.get('/echo', { websocket: true }, echo)
  await listen(app)
  const res = await rawRequest(app, handshake('/nowhere'))
  t.equal(res.status, 404)
  t.match(JSON.parse(res.body), { statusCode: 404 })
  await res.peer.end()
})

t.test('unknown URL with Upgrade goes through a custom not-found handler', async (t) => {
  const app = await build(t)
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).header('x-not-found', 'yes').send({ custom: true, url: req.url })
  })
  await listen(app)
  const res = await rawRequest(app, handshake('/nowhere'))
  t.equal(res.status, 404)
  t.equal(res.headers['x-not-found'], 'yes')
  t.same(JSON.parse(res.body), { custom: true, url: '/nowhere' })
})

t.test('invalid handshakes on a WebSocket route', async (t) => {
  const app = await build(t)
  let handled = 0
  app.get('/ws', { websocket: true }, (conn) => {
    handled++
    conn.close()
  })
  await listen(app)

  t.test('a bad Sec-WebSocket-Key gets 400 naming the rule', async (t) => {
    const res = await rawRequest(app, handshake('/ws', { 'Sec-WebSocket-Key': 'not-a-key' }))
    t.equal(res.status, 400)
    t.match(JSON.parse(res.body), { statusCode: 400, message: /Sec-WebSocket-Key/ })
    await res.peer.end()
    t.ok(res.peer.ended, 'the connection ends')
  })

  t.test('a missing Sec-WebSocket-Key gets 400', async (t) => {
    const res = await rawRequest(app, handshake('/ws', { 'Sec-WebSocket-Key': null }))
    t.equal(res.status, 400)
    t.match(JSON.parse(res.body), { message: /Sec-WebSocket-Key/ })
  })

  t.test('Upgrade without "Connection: Upgrade" gets 400 naming the rule', async (t) => {
    const res = await rawRequest(app, handshake('/ws', { Connection: 'keep-alive' }))
    t.equal(res.status, 400)
    t.match(JSON.parse(res.body), { statusCode: 400, message: /Connection/ })
  })

  t.test('an unsupported version gets 426 with Sec-WebSocket-Version: 13', async (t) => {
    const res = await rawRequest(app, handshake('/ws', { 'Sec-WebSocket-Version': '8' }))
    t.equal(res.status, 426)
    t.equal(res.headers['sec-websocket-version'], '13')
    t.match(JSON.parse(res.body), { message: /Sec-WebSocket-Version/ })
  })

  t.test('an invalid subprotocol list gets 400', async (t) => {
    const res = await rawRequest(app, handshake('/ws', { 'Sec-WebSocket-Protocol': 'a, a' }))
    t.equal(res.status, 400)
    t.match(JSON.parse(res.body), { message: /Sec-WebSocket-Protocol/ })
  })

  t.test('HTTP/1.0 gets 400', async (t) => {
    const res = await rawRequest(app, handshake('/ws').replace('HTTP/1.1', 'HTTP/1.0'))
    t.equal(res.status, 400)
    t.match(JSON.parse(res.body), { message: /HTTP\/1\.1/ })
  })

  t.test('the handler never ran', async (t) => {
    t.equal(handled, 0)
  })
})

t.test('an upgrade with a method other than GET on a WebSocket route gets 405', async (t) => {
  const app = await build(t)
  let handled = 0
  const handler = (conn: WebSocketConnection<unknown>): void => {
    handled++
    conn.close()
  }
  // A WebSocket route is a GET route (another method is refused when it is added, test/fastify/routes.test.ts):
  // the HEAD twin Fastify adds to it is where another method reaches the handshake check.
  app.get('/x', { websocket: true }, handler)
  app.route({ method: 'GET', url: '/both', handler: async () => ({ plain: true }), wsHandler: handler })
  await listen(app)

  for (const path of ['/x', '/both']) {
    const peer = await RawPeer.open(app)
    peer.write(handshake(path).replace(/^GET /, 'HEAD '))
    await peer.end()
    t.ok(peer.ended || peer.closed, `${path}: the connection ends`)
    const head = peer.unread.toString('latin1')
    t.match(head, /^HTTP\/1\.1 405 Method Not Allowed\r\n/, `${path}: 405`)
    t.match(head, /\r\nallow: GET\r\n/i, `${path}: Allow: GET`)
    peer.destroy()
  }

  const ok = await rawUpgrade(app, '/x')
  t.equal(ok.response.status, 101, 'a GET upgrade on the same route is accepted')
  t.equal(parseClose(await ok.peer.frame()).code, 1005, 'and reaches the handler')
  ok.peer.destroy()
  t.equal(handled, 1, 'the handler ran for the GET only')
})

t.test('per-route settings override the plugin settings', async (t) => {
  const app = await build(t, { maxMessageSize: 8 })
  app.get('/small', { websocket: true }, echo)
  app.get('/large', { websocket: { maxMessageSize: 64 } }, echo)
  await listen(app)

  const large = await connect(app, '/large')
  const inbox = inboxOf(large)
  large.send('x'.repeat(64))
  t.equal(await inbox.nextText(), 'x'.repeat(64), 'the route allows 64 bytes')

  const small = await connect(app, '/small')
  const closed = clientClosed(small)
  small.send('x'.repeat(9))
  t.equal((await closed).code, 1009, 'the plugin-level limit of 8 bytes applies')

  large.send('x'.repeat(65))
  t.equal((await clientClosed(large)).code, 1009, 'the route-level limit applies too')
})

t.test('invalid route settings are refused when the route is added', async (t) => {
  const app = await build(t)
  t.throws(() => app.get('/bad', { websocket: { closeTimeout: -5 } }, () => {}), {
    code: 'WS_ERR_INVALID_OPTION',
    message: 'WebSocket route GET /bad: closeTimeout must be a positive number of milliseconds, got -5'
  })
})

t.test('host constraints pick the route', async (t) => {
  const app = await build(t)
  app.get('/where', { websocket: true, constraints: { host: 'a.example' } }, (conn) => { conn.send('a') })
  app.get('/where', { websocket: true, constraints: { host: 'b.example' } }, (conn) => { conn.send('b') })
  await listen(app)
  for (const host of ['a', 'b']) {
    const { peer } = await rawUpgrade(app, '/where', undefined, { Host: `${host}.example` })
    const frame = await peer.frame()
    t.equal(frame.payload.toString(), host, `host ${host}.example`)
    peer.destroy()
  }
  const res = await rawRequest(app, handshake('/where', { Host: 'c.example' }))
  t.equal(res.status, 404, 'no route for another host')
})

t.test('version constraints pick the route', async (t) => {
  const app = await build(t)
  app.get('/api', { websocket: true, constraints: { version: '1.2.0' } }, (conn) => { conn.send('v1') })
  app.get('/api', { websocket: true, constraints: { version: '2.0.0' } }, (conn) => { conn.send('v2') })
  await listen(app)
  for (const [range, expected] of [['1.x', 'v1'], ['2.0.0', 'v2']]) {
    const { peer } = await rawUpgrade(app, '/api', undefined, { 'Accept-Version': range })
    t.equal((await peer.frame()).payload.toString(), expected, `Accept-Version ${range}`)
    peer.destroy()
  }
})

t.test('routes under a prefix', async (t) => {
  const app = await build(t)
  await app.register(async (child) => {
    child.get('/echo', { websocket: true }, echo)
    child.get('/', { websocket: true }, (conn) => { conn.send('root') })
  }, { prefix: '/v1' })
  await listen(app)

  const ws = await connect(app, '/v1/echo')
  const inbox = inboxOf(ws)
  ws.send('prefixed')
  t.equal(await inbox.nextText(), 'prefixed')
  ws.terminate()

  for (const path of ['/v1', '/v1/']) {
    const root = await connect(app, path)
    t.equal(await inboxOf(root).nextText(), 'root', path)
    root.terminate()
  }

  const res = await rawRequest(app, handshake('/echo'))
  t.equal(res.status, 404, 'not served without the prefix')
})

t.test('schemas are validated before the upgrade', async (t) => {
  const app = await build(t)
  app.get<{ Querystring: { n: number }, Params: { room: string }, Headers: { 'x-token': string } }>('/rooms/:room', {
    websocket: true,
    schema: {
      querystring: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] },
      params: { type: 'object', properties: { room: { type: 'string', pattern: '^[a-z]+$' } } },
      headers: { type: 'object', properties: { 'x-token': { type: 'string', minLength: 3 } }, required: ['x-token'] }
    }
  }, (conn, req) => {
    const n: number = req.query.n
    const room: string = req.params.room
    const token: string = req.headers['x-token']
    conn.send(JSON.stringify({ n, type: typeof n, room, token }))
  })
  await listen(app)

  const ok = await rawUpgrade(app, '/rooms/lobby?n=42', undefined, { 'X-Token': 'abc' })
  t.same(JSON.parse((await ok.peer.frame()).payload.toString()), { n: 42, type: 'number', room: 'lobby', token: 'abc' },
    'the handler sees coerced, typed query, params and headers')
  ok.peer.destroy()

  const badQuery = await rawRequest(app, handshake('/rooms/lobby?n=abc', { 'X-Token': 'abc' }))
  t.equal(badQuery.status, 400)
  t.match(JSON.parse(badQuery.body), { message: /querystring/ })

  const missingQuery = await rawRequest(app, handshake('/rooms/lobby', { 'X-Token': 'abc' }))
  t.equal(missingQuery.status, 400)

  const badParams = await rawRequest(app, handshake('/rooms/LOBBY?n=1', { 'X-Token': 'abc' }))
  t.equal(badParams.status, 400)
  t.match(JSON.parse(badParams.body), { message: /params/ })

  const badHeaders = await rawRequest(app, handshake('/rooms/lobby?n=1'))
  t.equal(badHeaders.status, 400)
  t.match(JSON.parse(badHeaders.body), { message: /headers/ })
  t.equal(app.websocket.clients.size, 0, 'no connection was opened for the refused requests')
})

t.test('request decorators are available to the handler', async (t) => {
  const app = await build(t)
  app.decorateRequest('user', null)
  app.addHook('onRequest', async (req) => {
    (req as unknown as { user: string }).user = 'alice'
  })
  app.get('/me', { websocket: true }, (conn, req) => {
    conn.send((req as unknown as { user: string }).user)
  })
  await listen(app)
  const ws = await connect(app, '/me')
  t.equal(await inboxOf(ws).nextText(), 'alice')
  ws.terminate()
})

t.test('bytes sent together with the handshake are not lost', async (t) => {
  const app = await build(t)
  app.get('/echo', { websocket: true }, echo)
  await listen(app)
  const early = Buffer.concat([encodeFrame(0x1, 'first'), encodeFrame(0x2, Buffer.from([1, 2, 3]))])
  const { peer, response } = await rawUpgrade(app, '/echo', early)
  t.equal(response.status, 101)
  const first = await peer.frame()
  t.same({ opcode: first.opcode, text: first.payload.toString() }, { opcode: 0x1, text: 'first' })
  const second = await peer.frame()
  t.same({ opcode: second.opcode, bytes: [...second.payload] }, { opcode: 0x2, bytes: [1, 2, 3] })
  peer.destroy()
})

t.test('early bytes and bytes arriving during async hooks keep their order', async (t) => {
  const app = await build(t)
  const entered = gate()
  const release = gate()
  app.get('/echo', {
    websocket: true,
    onRequest: async () => {
      entered.resolve()
      await release.promise
    }
  }, echo)
  await listen(app)
  const peer = await RawPeer.open(app)
  peer.write(Buffer.concat([Buffer.from(handshake('/echo')), encodeFrame(0x1, 'one')]))
  await entered.promise
  peer.write(encodeFrame(0x1, 'two'))
  release.resolve()
  t.equal((await peer.response()).status, 101)
  t.equal((await peer.frame()).payload.toString(), 'one')
  t.equal((await peer.frame()).payload.toString(), 'two')
  peer.destroy()
})

t.test('early bytes reach an async handler that listens late', async (t) => {
  const app = await build(t)
  const release = gate()
  app.get('/late', { websocket: true }, async (conn) => {
    await release.promise
    echo(conn)
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/late', encodeFrame(0x1, 'early'))
  release.resolve()
  t.equal((await peer.frame()).payload.toString(), 'early')
  peer.destroy()
})

t.test('subprotocol selection', async (t) => {
  const app = await build(t)
  const seen: string[] = []
  app.get('/list', { websocket: { protocols: ['v2.chat', 'v1.chat'] } }, (conn) => {
    seen.push(conn.protocol)
    conn.send(conn.protocol)
  })
  app.get('/fn', {
    websocket: { protocols: (offered) => offered.find((p) => p.startsWith('x-')) }
  }, (conn) => { conn.send(conn.protocol) })
  app.get('/none', { websocket: true }, (conn) => { conn.send(`[${conn.protocol}]`) })
  await listen(app)

  t.test('a list chooses by server preference', async (t) => {
    const ws = await connect(app, '/list', ['v1.chat', 'v2.chat'])
    t.equal(ws.protocol, 'v2.chat', 'the client sees the selected protocol')
    t.equal(await inboxOf(ws).nextText(), 'v2.chat', 'conn.protocol')
    ws.terminate()
  })

  t.test('the 101 carries the header', async (t) => {
    const { peer, response } = await rawUpgrade(app, '/list', undefined, { 'Sec-WebSocket-Protocol': 'v1.chat' })
    t.equal(response.headers['sec-websocket-protocol'], 'v1.chat')
    t.equal((await peer.frame()).payload.toString(), 'v1.chat')
    peer.destroy()
  })

  t.test('a function chooses among the offered ones', async (t) => {
    const ws = await connect(app, '/fn', ['a', 'x-b', 'x-c'])
    t.equal(ws.protocol, 'x-b')
    t.equal(await inboxOf(ws).nextText(), 'x-b')
    ws.terminate()
  })

  t.test('no match: no header and an empty conn.protocol', async (t) => {
    for (const path of ['/list', '/fn']) {
      const { peer, response } = await rawUpgrade(app, path, undefined, { 'Sec-WebSocket-Protocol': 'other, another' })
      t.notOk('sec-websocket-protocol' in response.headers, `${path}: no Sec-WebSocket-Protocol`)
      t.equal((await peer.frame()).payload.toString(), '', `${path}: conn.protocol is empty`)
      peer.destroy()
    }
  })

  t.test('a route without protocols selects none', async (t) => {
    const { peer, response } = await rawUpgrade(app, '/none', undefined, { 'Sec-WebSocket-Protocol': 'v1.chat' })
    t.notOk('sec-websocket-protocol' in response.headers)
    t.equal((await peer.frame()).payload.toString(), '[]')
    peer.destroy()
  })

  t.test('the selected protocols were recorded on the server', async (t) => {
    t.same(seen, ['v2.chat', 'v1.chat', ''], 'the no-match connection to /list selected none')
  })
})

t.test('app.websocket.clients follows open connections', async (t) => {
  const app = await build(t)
  const serverConns: Array<WebSocketConnection<unknown>> = []
  app.get('/c', { websocket: true }, (conn) => {
    serverConns.push(conn)
  })
  await listen(app)
  t.equal(app.websocket.clients.size, 0)
  const a = await connect(app, '/c')
  t.equal(app.websocket.clients.size, 1)
  const b = await connect(app, '/c')
  t.equal(app.websocket.clients.size, 2)
  t.ok(app.websocket.clients.has(serverConns[0] as never) && app.websocket.clients.has(serverConns[1] as never))

  const firstClosed = closeEvent(serverConns[0])
  a.close()
  await firstClosed
  t.equal(app.websocket.clients.size, 1, 'removed after a clean close')
  t.notOk(app.websocket.clients.has(serverConns[0] as never))

  const secondClosed = closeEvent(serverConns[1])
  b.terminate()
  await secondClosed
  t.equal(app.websocket.clients.size, 0, 'removed after the socket drops')
})

t.test('broadcast', async (t) => {
  const app = await build(t)
  app.get<{ Querystring: { room: string } }>('/room', { websocket: true }, () => {})
  await listen(app)
  const clients = [await connect(app, '/room?room=a'), await connect(app, '/room?room=a'), await connect(app, '/room?room=b')]
  const inboxes = clients.map((ws) => inboxOf(ws))

  t.equal(app.websocket.broadcast('to all'), 3, 'returns how many connections it queued on')
  for (const inbox of inboxes) t.same(await inbox.next(), { data: Buffer.from('to all'), isBinary: false })

  t.equal(app.websocket.broadcast(Buffer.from([7, 8])), 3)
  for (const inbox of inboxes) t.same(await inbox.next(), { data: Buffer.from([7, 8]), isBinary: true }, 'bytes go as binary')

  t.equal(app.websocket.broadcast('as bytes', { binary: true }), 3)
  for (const inbox of inboxes) t.same(await inbox.next(), { data: Buffer.from('as bytes'), isBinary: true }, 'binary option')

  const count = app.websocket.broadcast('room a', {
    filter: (conn) => (conn.request as { query: { room: string } }).query.room === 'a'
  })
  t.equal(count, 2, 'filter')
  t.equal(await inboxes[0].nextText(), 'room a')
  t.equal(await inboxes[1].nextText(), 'room a')

  const only = [...app.websocket.clients].filter((conn) => (conn.request.query as { room: string }).room === 'b')
  t.equal(app.websocket.broadcast('room b', { clients: only }), 1, 'explicit receivers')
  t.equal(await inboxes[2].nextText(), 'room b', 'the filtered-out client got the next message meant for it, not "room a"')

  const closedOnServer = closeEvent(only[0])
  clients[2].close()
  await closedOnServer
  t.equal(app.websocket.broadcast('after close'), 2, 'closed connections are not counted')
  t.equal(await inboxes[0].nextText(), 'after close')
  t.equal(app.websocket.broadcast('to the closed one', { clients: only }), 0, 'not even when named explicitly')

  const closing = [...app.websocket.clients][0]
  closing.close(1000)
  t.equal(closing.readyState, WebSocketConnection.CLOSING)
  t.equal(app.websocket.broadcast('while closing'), 1, 'a connection that sent its close frame is skipped')
  for (const ws of clients) ws.terminate()
})

t.test('the ws client reports the server\'s close code and reason', async (t) => {
  const app = await build(t)
  app.get('/bye', { websocket: true }, (conn) => { conn.close(4000, 'bye now') })
  await listen(app)
  const ws = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/bye`)
  const { code, reason } = await clientClosed(ws)
  t.equal(code, 4000)
  t.equal(reason, 'bye now')
})

t.test('a raw peer sees a proper close frame', async (t) => {
  const app = await build(t)
  app.get('/bye', { websocket: true }, (conn) => { conn.close(1000, 'done') })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/bye')
  t.same(parseClose(await peer.frame()), { code: 1000, reason: 'done' })
  peer.destroy()
})
