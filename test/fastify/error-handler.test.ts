import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import t from 'tap'
import websocket, { type WebSocketConnection } from '../../lib/index.js'
import { LogCapture, Queue, build, closeEvent, listen } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'
import { within } from '../helpers/time.js'
import { encodeFrame, parseClose } from '../helpers/wire.cjs'
import { collect } from '../helpers/gc.js'

interface Call {
  self: unknown
  error: Error
  conn: unknown
  request: FastifyRequest | undefined
  reply: FastifyReply | undefined
}

/** An errorHandler that records its calls. */
function recorder (): { calls: Queue<Call>, errorHandler: (this: FastifyInstance, error: Error, conn: unknown, request: FastifyRequest, reply: FastifyReply) => void } {
  const calls = new Queue<Call>()
  return { calls, errorHandler (error, conn, request, reply) { calls.push({ self: this, error, conn, request, reply }) } }
}


// An unmasked binary frame with RSV2 set: a protocol violation by the client (@fastify/websocket's test sends these bytes).
const BAD_FRAME = Buffer.from([0xa2, 0x00])

t.test('a peer\'s protocol violation goes to the errorHandler with (error, conn, request, reply), the route\'s instance as this', async (t) => {
  const { calls, errorHandler } = recorder()
  const app = await build(t, { errorHandler })
  const conns = new Queue<[WebSocketConnection<FastifyRequest>, FastifyRequest]>()
  let scope!: FastifyInstance
  await app.register(async (child) => {
    scope = child
    child.get('/ws', { websocket: true }, (conn, req) => { conns.push([conn, req]) })
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/ws')
  const [conn, req] = await conns.next()
  const closed = closeEvent(conn)
  peer.write(BAD_FRAME)
  const call = await within(calls.next(), 'the errorHandler call')
  t.ok(call.error instanceof Error)
  t.equal((call.error as Error & { closeCode?: number }).closeCode, 1002, 'the protocol error')
  t.equal(call.conn, conn)
  t.equal(call.request, req)
  t.equal(call.request?.ws, true)
  t.equal(call.reply?.request, req, 'the reply of the upgrade request')
  t.equal(call.self, scope, 'this is the instance the route was declared in')
  t.equal((await closed)[0], 1002, 'the connection still closes by itself')
  t.equal(parseClose(await peer.frame()).code, 1002)
})

t.test('a socket error goes to the errorHandler', async (t) => {
  const { calls, errorHandler } = recorder()
  const app = await build(t)
  app.get('/ws', { websocket: { errorHandler } }, () => {})
  await listen(app)
  const { peer } = await rawUpgrade(app, '/ws')
  peer.socket.resetAndDestroy()
  const call = await within(calls.next(), 'the errorHandler call')
  t.match(call.error, { code: 'ECONNRESET' })
})

t.test('a thrown non-Error reaches the errorHandler as the cause of an Error; a failing handler gets the reply too', async (t) => {
  const { calls, errorHandler } = recorder()
  const app = await build(t, { errorHandler })
  app.get('/ws', { websocket: true }, () => { throw 'a string' }) // eslint-disable-line no-throw-literal
  const client = await app.injectWS('/ws')
  const call = await within(calls.next(), 'the errorHandler call')
  t.ok(call.error instanceof Error)
  t.equal(call.error.cause, 'a string')
  t.match(call.error.message, /a string/)
  t.equal(call.reply?.request, call.request)
  client.terminate()
})

t.test('retainRequest: false — request and reply are passed while the handler runs, undefined after, and nothing keeps them', async (t) => {
  const { calls, errorHandler } = recorder()
  const app = await build(t, { retainRequest: false, errorHandler })
  const release = new Queue<() => void>()
  let requestRef: WeakRef<FastifyRequest> | undefined
  app.get('/ws', { websocket: true }, async (conn, req) => {
    requestRef = new WeakRef(req)
    conn.on('message', () => {})
    await new Promise<void>((resolve) => release.push(resolve))
  })
  await listen(app)
  const { peer } = await rawUpgrade(app, '/ws')
  const settle = await release.next()
  peer.write(encodeFrame(0x1, Buffer.from([0xff]))) // invalid UTF-8: the connection fails with 1007
  const during = await within(calls.next(), 'the errorHandler call')
  t.equal(during.request?.ws, true, 'while the handler runs: the request')
  t.equal(during.reply?.request, during.request, 'and the reply')

  const second = await rawUpgrade(app, '/ws')
  const settleSecond = await release.next()
  settleSecond()
  settle()
  await collect()
  t.equal(requestRef?.deref(), undefined, 'the second request was collected while its connection is open')
  second.peer.write(BAD_FRAME)
  const after = await within(calls.next(), 'the errorHandler call')
  t.equal(after.request, undefined, 'after the handler settled: no request')
  t.equal(after.reply, undefined, 'and no reply')
  peer.destroy()
})

t.test('an errorHandler that throws or rejects on a connection error is logged; the server keeps serving', async (t) => {
  const logs = new LogCapture()
  const app = await build(t, {}, { logger: { level: 'info', stream: logs } })
  app.get('/throws', { websocket: { errorHandler () { throw new Error('sync oops') } } }, () => {})
  app.get('/rejects', { websocket: { errorHandler: async () => { throw new Error('async oops') } } }, () => {})
  await listen(app)
  for (const path of ['/throws', '/rejects']) {
    const { peer } = await rawUpgrade(app, path)
    peer.write(BAD_FRAME)
    t.equal(parseClose(await peer.frame()).code, 1002, `${path}: closed as usual`) // the rejection was handled by then
    peer.destroy()
  }
  t.match(logs.lines.filter((l) => l.msg === 'websocket errorHandler failed').map((l) => l.err.message).sort(), ['async oops', 'sync oops'])
  const { peer } = await rawUpgrade(app, '/throws')
  peer.destroy()
})

t.test('errorHandler must be a function, at register and on a route (@fastify/websocket\'s message)', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(websocket, { errorHandler: {} as any }) }, { code: 'WS_ERR_INVALID_OPTION', message: 'invalid errorHandler function' })
  await t.rejects(app.listen({ port: 0 }), { message: 'invalid errorHandler function' }, 'and listen after it')

  const other = await build(t)
  t.throws(() => other.get('/ws', { websocket: { errorHandler: 'log' as any } }, () => {}), { code: 'WS_ERR_INVALID_OPTION', message: 'invalid errorHandler function' })
})
