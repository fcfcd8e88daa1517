import { once } from 'node:events'
import t from 'tap'
import Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import websocket, { type WebSocketConnection } from '../../lib/index.js'
import { HEARTBEAT_SLICES, Heartbeats, type Beating } from '../../lib/connection/heartbeat.js'
import { Queue, build, closeEvent, connect, listen } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { fakeTimers, loopTurns, within } from '../helpers/time.js'

// The heartbeat timer runs on a fake clock (fakeTimers): the tests move it by
// whole intervals and wait on the sockets only, so a slow machine cannot make
// them fail or pass by accident, and a long interval costs no time.
const INTERVAL = 30_000
// The beats are spread over the interval in slices: a connection's first ping
// comes one interval and at most one slice after it was added (exactly that
// for one added at time 0 on the fake clock), then once per interval.
const SLICE = INTERVAL / HEARTBEAT_SLICES
const FIRST = INTERVAL + SLICE

type ServerConn = WebSocketConnection<FastifyRequest>

t.test('a peer that answers the heartbeat pings stays connected', async (t) => {
  const clock = fakeTimers(t, ['setInterval'])
  const app = await build(t, { heartbeatInterval: INTERVAL })
  const conns = new Queue<ServerConn>()
  app.get('/hb', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  const ws = await connect(app, '/hb') // the ws client answers pings with pongs by itself
  const conn = await conns.next()
  let closed = false
  conn.on('close', () => { closed = true })
  for (let beat = 1; beat <= 4; beat++) {
    const pinged = once(ws, 'ping')
    const ponged = once(conn, 'pong')
    clock.tick(beat === 1 ? FIRST : INTERVAL)
    await within(pinged, `the client got ping ${beat}`)
    await within(ponged, `the server got pong ${beat}`)
  }
  // The beat after an answered ping pings again instead of terminating.
  const pinged = once(ws, 'ping')
  clock.tick(INTERVAL)
  await within(pinged, 'the client got ping 5')
  await loopTurns()
  t.equal(closed, false, 'no close event after five heartbeats')
  t.equal(conn.readyState, 1, 'still open')
  t.equal(app.websocket.clients.size, 1)
})

t.test('a peer that sends nothing back is terminated at the next heartbeat', async (t) => {
  const clock = fakeTimers(t, ['setInterval'])
  const app = await build(t, { heartbeatInterval: INTERVAL })
  const conns = new Queue<ServerConn>()
  app.get('/hb', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  // A raw peer that reads but never writes: it gets the ping, it answers nothing.
  const { peer } = await rawUpgrade(app, '/hb')
  const conn = await conns.next()
  let closed = false
  const closing = closeEvent(conn).then((event) => { closed = true; return event })

  clock.tick(FIRST - 1)
  await loopTurns()
  t.equal(peer.unread.length, 0, 'nothing sent before the first interval (and its slice) has passed')
  clock.tick(1)
  t.equal((await within(peer.frame(), 'the first ping')).opcode, 0x9, 'pinged once the interval has passed')
  await loopTurns()
  t.equal(closed, false, 'not dropped at the beat that pinged it: it has until the next one to answer')

  clock.tick(INTERVAL)
  const [code] = await within(closing, 'the close event')
  t.equal(code, 1006, 'dropped without a closing handshake')
  t.equal(peer.unread.length, 0, 'and without a close frame')
  await within(peer.closedEvent(), 'the TCP connection closing')
  t.equal(app.websocket.clients.size, 0)
})

t.test('per-route heartbeat, off by default', async (t) => {
  const clock = fakeTimers(t, ['setInterval'])
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/plain', { websocket: true }, (conn) => { conns.push(conn) })
  app.get('/hb', { websocket: { heartbeatInterval: INTERVAL } }, (conn) => { conns.push(conn) })
  await listen(app)
  const { peer: quiet } = await rawUpgrade(app, '/plain')
  const plain = await conns.next()
  const readAfterUpgrade = quiet.socket.bytesRead
  const { peer: silentPeer } = await rawUpgrade(app, '/hb')
  const silent = await conns.next()
  const silentClosed = closeEvent(silent)
  // The heartbeat route pings its silent peer, then drops it a beat later;
  // meanwhile the route without heartbeat sends its own silent peer nothing.
  clock.tick(FIRST)
  t.equal((await within(silentPeer.frame(), 'the ping on /hb')).opcode, 0x9, 'the heartbeat route pings')
  clock.tick(INTERVAL)
  t.equal((await within(silentClosed, 'the close on /hb'))[0], 1006, 'and drops the peer that did not answer')
  await loopTurns()
  t.equal(quiet.socket.bytesRead, readAfterUpgrade, 'no ping on the route without heartbeat')
  t.equal(plain.readyState, 1)
  t.equal(app.websocket.clients.size, 1)
})

t.test('one shared timer per interval, beating each connection at its own interval, gone with its last connection', async (t) => {
  const clock = fakeTimers(t, ['setInterval'])
  const beats = new Heartbeats()
  t.teardown(() => beats.stop())
  const count = { a: 0, b: 0, c: 0 }
  const beating = (name: keyof typeof count): Beating => ({ heartbeat: () => { count[name]++ } })
  const a = beating('a')
  const b = beating('b')
  const c = beating('c')
  beats.add(a, 1000)
  beats.add(b, 1000)
  beats.add(c, 2000)
  t.equal(beats.timerCount, 2, 'two intervals, two timers')
  // First beats one slice after each interval, from time 0: a and b at 1062.5 and 2062.5, c at 2125.
  clock.tick(2125)
  t.same(count, { a: 2, b: 2, c: 1 }, 'each connection beats at its own interval')
  beats.remove(a)
  t.equal(beats.timerCount, 2, 'b still uses the 1000 ms timer')
  clock.tick(1000)
  t.same(count, { a: 2, b: 3, c: 1 }, 'a removed connection is beaten no more')
  beats.remove(b)
  t.equal(beats.timerCount, 1, 'its last connection gone, the timer is cleared')
  beats.remove(a)
  t.equal(beats.timerCount, 1, 'removing twice is harmless')
  clock.tick(1000)
  t.same(count, { a: 2, b: 3, c: 2 }, 'the other interval beats on')
  beats.stop()
  t.equal(beats.timerCount, 0, 'stop() clears the rest (app.close())')
  clock.tick(10_000)
  t.same(count, { a: 2, b: 3, c: 2 }, 'and nothing beats after stop()')
})

t.test('the beats of one interval are spread over it in slices, each connection beaten once per interval', async (t) => {
  const clock = fakeTimers(t, ['setInterval'])
  const beats = new Heartbeats()
  t.teardown(() => beats.stop())
  const interval = 16_000
  const slice = interval / HEARTBEAT_SLICES
  const beaten = new Map<number, number>()
  let inThisTick = 0
  // Connections arrive over one interval, as they do on a live server.
  const total = 1600
  let added = 0
  const addSome = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const id = added++
      beaten.set(id, 0)
      beats.add({ heartbeat: () => { beaten.set(id, beaten.get(id)! + 1); inThisTick++ } }, interval)
    }
  }
  for (let step = 0; step < HEARTBEAT_SLICES; step++) {
    addSome(total / HEARTBEAT_SLICES)
    clock.tick(slice)
  }
  t.equal(beats.timerCount, 1)
  // From now on every slice of time beats about a sixteenth of them, never all at once.
  const perTick: number[] = []
  for (let step = 0; step < 2 * HEARTBEAT_SLICES; step++) {
    inThisTick = 0
    clock.tick(slice)
    perTick.push(inThisTick)
  }
  t.equal(Math.max(...perTick), total / HEARTBEAT_SLICES, 'no tick beats more than its slice')
  t.equal(perTick.reduce((a, b) => a + b, 0), 2 * total, 'two intervals: every connection beaten twice')
  t.ok([...beaten.values()].every((n) => n === 2), 'each connection beaten once per interval')
})

t.test('heartbeatInterval is validated', async (t) => {
  for (const bad of [-1, Number.NaN, 2 ** 31, 'often']) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(websocket, { heartbeatInterval: bad as number }) }, /heartbeatInterval/, `${String(bad)} is refused`)
    await app.close()
  }
})
