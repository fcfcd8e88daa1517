// The `upgrade` event is shared: another listener may have bound a response
// to the socket before ours runs, and a request pipelined before the upgrade
// leaves its response bound to the socket. Binding a second one throws
// ERR_HTTP_SOCKET_ASSIGNED out of the event and would end the process.

import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import t from 'tap'
import Fastify from 'fastify'
import websocket from '../../lib/index.js'
import { LogCapture, connect, gate, inboxOf, listen, track } from '../helpers/app.js'
import { RawPeer, handshake } from '../helpers/raw-peer.js'

t.test('an upgrade listener added before the plugin that binds a response keeps the request; ours warns and stays up', async (t) => {
  const logs = new LogCapture()
  const app = Fastify({ logger: { level: 'warn', stream: logs } })
  t.teardown(() => app.close())
  // What a library answering its own upgrades looks like: its response owns the socket.
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    if (req.url !== '/theirs') return
    const res = new ServerResponse(req)
    res.assignSocket(socket as any)
    res.shouldKeepAlive = false
    res.statusCode = 418
    res.end('short and stout')
    // Node's server would let go of a response it bound itself; a library binding its own must.
    res.once('finish', () => {
      res.detachSocket(socket as any)
      socket.end()
    })
  })
  await app.register(websocket)
  app.get('/theirs', { websocket: true }, (conn) => { conn.send('ours') })
  app.get('/ours', { websocket: true }, (conn) => { conn.send('ours') })
  await listen(app)

  const peer = await RawPeer.open(app)
  peer.write(handshake('/theirs'))
  const response = await peer.response()
  t.equal(response.status, 418, 'the other listener answered')
  t.equal(response.body, 'short and stout')
  t.ok(logs.find((l) => l.level === 40 && /left to another upgrade listener/.test(l.msg) && l.url === '/theirs'), 'a warning names the request')

  // The process is still up and serving WebSockets.
  const ws = await connect(app, '/ours')
  t.equal(await inboxOf(ws).nextText(), 'ours')
  ws.terminate()
})

t.test('an upgrade pipelined behind a request is answered after that request\'s response, in order', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const slow = gate()
  app.get('/slow', async () => {
    await slow.promise
    return 'slow done'
  })
  app.get('/ws', { websocket: true }, (conn) => { conn.send('hello') })
  await listen(app)
  // Registered after the plugin's: runs once ours has seen the upgrade, while /slow is still pending.
  let upgradeSeen = false
  app.server.on('upgrade', () => {
    upgradeSeen = true
    slow.resolve()
  })

  const peer = await RawPeer.open(app)
  peer.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' + handshake('/ws'))
  const first = await peer.response()
  t.ok(upgradeSeen, 'the upgrade arrived while /slow was unanswered')
  t.equal(first.status, 200)
  t.equal(first.body, 'slow done')
  const second = await peer.response()
  t.equal(second.status, 101, 'then the upgrade is accepted')
  const frame = await peer.frame()
  t.equal(frame.payload.toString(), 'hello', 'and the connection works')
  peer.destroy()
})

t.test('a pipelined upgrade whose socket closes before the earlier response finishes is dropped quietly', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  const slow = gate()
  let handlerRan = false
  app.get('/slow', async () => {
    await slow.promise
    return 'late'
  })
  app.get('/ws', { websocket: true }, () => { handlerRan = true })
  await listen(app)
  const seen = gate()
  app.server.on('upgrade', () => seen.resolve())

  const peer = await RawPeer.open(app)
  track(app, peer)
  peer.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' + handshake('/ws'))
  await seen.promise
  peer.destroy()
  await peer.closedEvent()
  slow.resolve()
  // The app still closes (nothing waits on that socket) and the handler never ran.
  await app.close()
  t.notOk(handlerRan)
  t.equal(app.websocket.clients.size, 0)
})
