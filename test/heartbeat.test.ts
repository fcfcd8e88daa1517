import { once } from 'node:events'
import t from 'tap'
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import websocket, { type WebSocketConnection } from '../lib/index.js'
import { Heartbeats, type Beating } from '../lib/connection/heartbeat.js'
import { Queue, build, connect, listen } from './helpers/app.js'
import { rawUpgrade } from './helpers/raw-peer.js'

t.test('a peer that answers the heartbeat pings stays connected', async (t) => {
  const app = await build(t, { heartbeatInterval: 30 })
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/hb', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  const ws = await connect(app, '/hb') // the ws client answers pings with pongs by itself
  const conn = await conns.next()
  let pings = 0
  await new Promise<void>((resolve) => {
    ws.on('ping', () => { if (++pings === 4) resolve() })
  })
  t.equal(conn.readyState, 1, 'still open after four heartbeats')
  t.equal(app.websocket.clients.size, 1)
})

t.test('a peer that sends nothing back is terminated after the next heartbeat', async (t) => {
  const app = await build(t, { heartbeatInterval: 30 })
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/hb', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  // A raw peer that reads but never writes: it got the pings, it answers none.
  const { peer } = await rawUpgrade(app, '/hb')
  const conn = await conns.next()
  const [code] = await once(conn, 'close')
  t.equal(code, 1006, 'dropped without a closing handshake')
  t.equal((await peer.frame()).opcode, 0x9, 'it was pinged first')
  t.equal(app.websocket.clients.size, 0)
})

t.test('per-route heartbeat, off by default', async (t) => {
  const app = await build(t)
  const conns = new Queue<WebSocketConnection<FastifyRequest>>()
  app.get('/plain', { websocket: true }, (conn) => { conns.push(conn) })
  app.get('/hb', { websocket: { heartbeatInterval: 30 } }, (conn) => { conns.push(conn) })
  await listen(app)
  const { peer: quiet } = await rawUpgrade(app, '/plain')
  const plain = await conns.next()
  const readAfterUpgrade = quiet.socket.bytesRead
  await rawUpgrade(app, '/hb')
  const silent = await conns.next()
  // The heartbeat route pinged its silent peer and dropped it two intervals later;
  // meanwhile the route without heartbeat sent its own silent peer nothing.
  await once(silent, 'close')
  t.equal(quiet.socket.bytesRead, readAfterUpgrade, 'no ping on the route without heartbeat')
  t.equal(plain.readyState, 1)
  t.equal(app.websocket.clients.size, 1)
})

t.test('one shared timer per interval, gone with its last connection', async (t) => {
  const beats = new Heartbeats()
  t.teardown(() => beats.stop())
  const a: Beating = { heartbeat () {} }
  const b: Beating = { heartbeat () {} }
  const c: Beating = { heartbeat () {} }
  beats.add(a, 1000)
  beats.add(b, 1000)
  beats.add(c, 2000)
  t.equal(beats.timerCount, 2, 'two intervals, two timers')
  beats.remove(a)
  t.equal(beats.timerCount, 2, 'b still uses the 1000 ms timer')
  beats.remove(b)
  t.equal(beats.timerCount, 1, 'its last connection gone, the timer is cleared')
  beats.remove(a)
  t.equal(beats.timerCount, 1, 'removing twice is harmless')
  beats.stop()
  t.equal(beats.timerCount, 0, 'stop() clears the rest (app.close())')
})

t.test('heartbeatInterval is validated', async (t) => {
  for (const bad of [-1, Number.NaN, 2 ** 31, 'often']) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(websocket, { heartbeatInterval: bad as number }) }, /heartbeatInterval/, `${String(bad)} is refused`)
    await app.close()
  }
})
