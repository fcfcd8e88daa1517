import { once } from 'node:events'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { ProtocolError, WebSocketConnection, WebSocketError } from '../../lib/index.js'
import { kInternal } from '../../lib/connection/internal.js'
import { createDuplexPair } from '../../lib/duplex-pair.js'
import { Queue, build, closeEvent, listen } from '../helpers/app.js'
import { hex } from '../helpers/data.js'
import { frame } from '../helpers/protocol.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { fakeTimers } from '../helpers/time.js'

// Errors a real connection emits, throws or passes to callbacks carry their
// code: a peer's violation on a TCP socket, sends the connection cannot
// carry out, and the timers that end a connection (coded in the debug log).

type ServerConn = WebSocketConnection<FastifyRequest>

t.test('a2 00 from a raw TCP peer: the error event carries WS_ERR_UNEXPECTED_RSV_2_3 and 1002, as the close does', async (t) => {
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/ws', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/ws')
  const conn = await conns.next()
  const errored = once(conn, 'error')
  const closed = closeEvent(conn)
  peer.write(hex('a2 00'))
  const [err] = await errored
  t.ok(err instanceof ProtocolError && err instanceof WebSocketError, 'a ProtocolError, a WebSocketError')
  t.match(err, { code: 'WS_ERR_UNEXPECTED_RSV_2_3', closeCode: 1002, message: /RSV2 and RSV3/ })
  const reply = await peer.frame()
  t.equal(reply.opcode, 0x8, 'the server answers with a close frame')
  t.equal(reply.payload.readUInt16BE(0), 1002, 'carrying 1002')
  t.equal((await closed)[0], 1002, '`close` reports 1002')
})

t.test('a frame over maxMessageSize from a raw peer: WS_ERR_UNSUPPORTED_MESSAGE_LENGTH, 1009', async (t) => {
  const app = await build(t, { maxMessageSize: 16 })
  const conns = new Queue<ServerConn>()
  app.get('/ws', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/ws')
  const conn = await conns.next()
  const errored = once(conn, 'error')
  peer.write(frame({ opcode: 0x2, mask: true, payload: Buffer.alloc(17) }))
  t.match((await errored)[0], { code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', closeCode: 1009 })
})

t.test('send on a connection that is closing: WS_ERR_NOT_OPEN, thrown, to the callback, and from sendAsync; a bad close code: WS_ERR_INVALID_ARGUMENT', async (t) => {
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/ws', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  await rawUpgrade(app, '/ws')
  const conn = await conns.next()
  t.throws(() => conn.close(1005), { name: 'RangeError', code: 'WS_ERR_INVALID_ARGUMENT' }, 'a close code that may not be sent')
  conn.close(1000)
  t.throws(() => conn.send('late'), { name: 'WebSocketError', code: 'WS_ERR_NOT_OPEN', closeCode: undefined }, 'thrown without a callback')
  const [err] = await new Promise<unknown[]>((resolve) => conn.send('late', (...args) => resolve(args)))
  t.match(err, { code: 'WS_ERR_NOT_OPEN' }, 'to the callback')
  await t.rejects(conn.sendAsync('late'), { code: 'WS_ERR_NOT_OPEN' }, 'sendAsync rejects')
  t.throws(() => conn.ping(), { code: 'WS_ERR_NOT_OPEN' }, 'ping too')
})

t.test('a send whose data never reached the socket: WS_ERR_CLOSED_BEFORE_SENT', async (t) => {
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/ws', { websocket: true }, (conn) => { conns.push(conn) })
  await listen(app)
  await rawUpgrade(app, '/ws')
  const conn = await conns.next()
  // Queued for the next flush; the socket is gone before it.
  const sent = conn.sendAsync('never written')
  conn.terminate()
  await t.rejects(sent, { name: 'WebSocketError', code: 'WS_ERR_CLOSED_BEFORE_SENT' })
})

/** A server connection on one end of an in-memory pipe, its debug log kept. */
function pipeConnection (closeTimeout = 1000): { conn: WebSocketConnection, debug: Array<{ err?: WebSocketError }> } {
  const [, serverEnd] = createDuplexPair()
  const debug: Array<{ err?: WebSocketError }> = []
  const logger = { debug: (obj: unknown) => { debug.push(obj as { err?: WebSocketError }) }, info () {}, warn () {}, error () {} }
  const conn = new WebSocketConnection(serverEnd, undefined, { role: 'server', maxMessageSize: 1024, closeTimeout, logger })
  return { conn, debug }
}

t.test('a closing handshake the peer never finishes: WS_ERR_CLOSE_TIMEOUT in the debug log, close 1006, no error event', async (t) => {
  const clock = fakeTimers(t, ['setTimeout'])
  const { conn, debug } = pipeConnection(1000)
  let errors = 0
  conn.on('error', () => { errors++ })
  const closed = closeEvent(conn)
  conn.close(1000)
  clock.tick(1000)
  t.equal((await closed)[0], 1006, '`close` reports 1006')
  t.match(debug.find((entry) => entry.err !== undefined)?.err, { code: 'WS_ERR_CLOSE_TIMEOUT', closeCode: 1006 })
  t.equal(errors, 0, 'no error event: an `await once(conn, \'close\')` is not rejected')
})

t.test('a peer silent for a whole heartbeat: WS_ERR_HEARTBEAT_TIMEOUT in the debug log, close 1006', async (t) => {
  const { conn, debug } = pipeConnection()
  const closed = closeEvent(conn)
  conn[kInternal].heartbeat() // pings
  conn[kInternal].heartbeat() // nothing came since: terminates
  t.equal((await closed)[0], 1006)
  t.match(debug.find((entry) => entry.err !== undefined)?.err, { code: 'WS_ERR_HEARTBEAT_TIMEOUT', closeCode: 1006 })
})
