// Topics in one process: subscribe/unsubscribe/isSubscribed/topics on the
// connection, app.websocket.publish / subscriberCount, conn.publish (every
// subscriber but the sender), cleanup on close, one encoding per publish,
// per-subscriber backpressure, argument checks, and the cost of a publish
// among many topics.

import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { WebSocketConnection } from '../../lib/index.js'
import { kInternal } from '../../lib/connection/internal.js'
import { OutgoingMessage } from '../../lib/fastify/delivery.js'
import type { TopicTable } from '../../lib/topics/topics.js'
import { acceptConnections, build, closeEvent, connect, inboxOf, listen } from '../helpers/app.js'
import { rawUpgrade } from '../helpers/raw-peer.js'

const tableOf = (app: FastifyInstance): TopicTable => (app.websocket as unknown as { topics: TopicTable }).topics

/** `count` ws clients on `path`, with the server-side connection of each, in order. */
async function clients (app: FastifyInstance, path: string, count: number, settings: object | true = true) {
  const accepted = acceptConnections(app, path, settings as true)
  await listen(app)
  const pairs = []
  for (let i = 0; i < count; i++) {
    const ws = await connect(app, path)
    pairs.push({ ws, inbox: inboxOf(ws), conn: await accepted.next() })
  }
  return pairs
}

t.test('subscribe, unsubscribe, isSubscribed and topics', async (t) => {
  const app = await build(t)
  const [{ conn }] = await clients(app, '/t', 1)
  t.same(conn.topics, [], 'no topics at first')
  t.equal(conn[kInternal].topics, null, 'and no Set for them')
  t.equal(conn.subscribe('news'), true, 'subscribe: true when it joins')
  t.equal(conn.subscribe('news'), false, 'false when already in')
  t.equal(conn.subscribe('sport'), true)
  t.equal(conn.isSubscribed('news'), true)
  t.equal(conn.isSubscribed('weather'), false)
  const snapshot = conn.topics
  t.same(snapshot.sort(), ['news', 'sport'])
  snapshot.push('mutated')
  t.same(conn.topics.sort(), ['news', 'sport'], 'topics is a fresh array: changing it changes nothing')
  t.equal(app.websocket.subscriberCount('news'), 1)
  t.equal(conn.unsubscribe('news'), true, 'unsubscribe: true when it leaves')
  t.equal(conn.unsubscribe('news'), false, 'false when it was not in')
  t.equal(conn.isSubscribed('news'), false)
  t.equal(app.websocket.subscriberCount('news'), 0)
  t.equal(tableOf(app).size, 1, 'the empty topic has no entry')
  conn.unsubscribe('sport')
  t.equal(tableOf(app).size, 0)
  t.equal(conn[kInternal].topics, null, 'the Set goes with the last topic')
})

t.test('publish reaches the subscribers only, and counts them; conn.publish skips the sender', async (t) => {
  const app = await build(t)
  const [a, b, c] = await clients(app, '/t', 3)
  a.conn.subscribe('room')
  b.conn.subscribe('room')
  c.conn.subscribe('other')
  t.equal(app.websocket.publish('room', 'hello'), 2)
  t.equal(app.websocket.publish('nobody', 'hello'), 0, 'a topic without subscribers')
  t.equal(app.websocket.publish('room', Buffer.from([1, 2, 3])), 2)
  t.equal(a.conn.publish('room', 'from a'), 1, 'conn.publish: every subscriber but the sender')
  t.equal(c.conn.publish('room', 'from c'), 2, 'the sender need not be subscribed')
  t.equal(a.conn.publish('other', 'to c'), 1)
  t.equal(c.conn.publish('other', 'alone'), 0, 'the only subscriber publishing reaches nobody')
  const { publish, subscriberCount } = app.websocket
  t.equal(publish('room', 'unbound'), 2, 'publish works detached from app.websocket')
  t.equal(subscriberCount('room'), 2)
  t.same(await a.inbox.nextText(), 'hello')
  const bin = await a.inbox.next()
  t.equal(bin.isBinary, true)
  t.same(bin.data, Buffer.from([1, 2, 3]))
  t.same(await a.inbox.nextText(), 'from c')
  t.same(await a.inbox.nextText(), 'unbound')
  t.same(await b.inbox.nextText(), 'hello')
  await b.inbox.next()
  t.same(await b.inbox.nextText(), 'from a')
  t.same(await b.inbox.nextText(), 'from c')
  t.same(await b.inbox.nextText(), 'unbound')
  t.same(await c.inbox.nextText(), 'to c')
  t.equal(c.inbox.unread + a.inbox.unread + b.inbox.unread, 0, 'nothing else arrived')
  t.equal(app.websocket.publish('room', 'text as binary', { binary: true }), 2)
  t.equal((await a.inbox.next()).isBinary, true, '{ binary: true } sends a string as binary')
})

t.test('closing leaves every topic; a closed connection subscribes to nothing', async (t) => {
  const app = await build(t)
  const [a, b] = await clients(app, '/t', 2)
  for (const topic of ['x', 'y', 'z']) a.conn.subscribe(topic)
  b.conn.subscribe('x')
  const closed = closeEvent(a.conn)
  a.ws.close()
  await closed
  t.equal(app.websocket.subscriberCount('x'), 1)
  t.equal(app.websocket.subscriberCount('y'), 0)
  t.same(a.conn.topics, [])
  t.equal(a.conn.subscribe('y'), false, 'subscribe after close: false')
  t.equal(app.websocket.subscriberCount('y'), 0, 'and nothing joined')
  t.equal(tableOf(app).size, 1, 'only x is left')
  b.conn.terminate()
  await closeEvent(b.conn)
  t.equal(tableOf(app).size, 0, 'no entry once every subscriber left (terminated too)')
  t.equal(a.conn.publish('x', 'late'), 0, 'a closed connection may still publish: nobody is left')
})

t.test('one encoding per publish: every plain receiver is handed the same frame', async (t) => {
  const app = await build(t)
  const accepted = acceptConnections(app, '/t')
  await listen(app)
  const a = await rawUpgrade(app, '/t')
  const b = await rawUpgrade(app, '/t')
  const frames: Buffer[] = []
  for (const conn of [await accepted.next(), await accepted.next()]) {
    const internal = conn[kInternal]
    const enqueue = internal.enqueueFrame.bind(internal)
    internal.enqueueFrame = (frame: Buffer) => { frames.push(frame); return enqueue(frame) }
    conn.subscribe('t')
  }
  t.equal(app.websocket.publish('t', 'x'.repeat(300)), 2)
  t.equal(frames.length, 2)
  t.equal(frames[0], frames[1], 'one Buffer for both')
  const [fa, fb] = [await a.peer.frame(), await b.peer.frame()]
  t.same(fa, fb, 'byte-identical frames on the wire')
  t.equal(fa.payload.toString(), 'x'.repeat(300))
  a.peer.destroy()
  b.peer.destroy()
})

t.test('with compression, one compressed payload for every fresh-context receiver', async (t) => {
  const app = await build(t, { compression: true })
  const accepted = acceptConnections(app, '/t')
  await listen(app)
  const offer = { 'Sec-WebSocket-Extensions': 'permessage-deflate' }
  const a = await rawUpgrade(app, '/t', undefined, offer)
  const b = await rawUpgrade(app, '/t', undefined, offer)
  const frames: Buffer[] = []
  for (const conn of [await accepted.next(), await accepted.next()]) {
    const internal = conn[kInternal]
    const enqueue = internal.enqueueFrame.bind(internal)
    internal.enqueueFrame = (frame: Buffer) => { frames.push(frame); return enqueue(frame) }
    conn.subscribe('t')
  }
  const message = JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ id: i, name: `item ${i}` })))
  t.equal(app.websocket.publish('t', message), 2)
  t.equal(frames[0], frames[1], 'compressed once: one Buffer for both')
  const [fa, fb] = [await a.peer.frame(), await b.peer.frame()]
  t.equal(fa.rsv1, true, 'compressed (RSV1)')
  t.ok(fa.payload.length < Buffer.byteLength(message) / 2, 'smaller on the wire')
  t.ok(fa.payload.equals(fb.payload), 'the same bytes for both')
  a.peer.destroy()
  b.peer.destroy()
})

t.test('a subscriber that does not read is dropped with 1008; the others keep receiving', async (t) => {
  const app = await build(t)
  const slowAccepted = acceptConnections(app, '/slow', { maxBufferedAmount: 64 * 1024 })
  const fastAccepted = acceptConnections(app, '/fast')
  await listen(app)
  const slowWs = await connect(app, '/slow')
  const slow = await slowAccepted.next()
  const fastWs = await connect(app, '/fast')
  const fast = await fastAccepted.next()
  slow.subscribe('feed')
  fast.subscribe('feed')
  slowWs.pause() // the client stops reading: the kernel buffers fill, then the server's queue
  const slowClosed = closeEvent(slow)
  let dropped = false
  void slowClosed.then(() => { dropped = true })
  const chunk = Buffer.alloc(32 * 1024, 7)
  let sent = 0
  let countsAfterDrop = 0
  while (!dropped && sent < 3000) {
    const queued = app.websocket.publish('feed', chunk)
    t.ok(queued >= 1, 'the fast subscriber is always queued on') || t.bailout()
    sent++
    if (queued === 1) countsAfterDrop++
    await new Promise((resolve) => setImmediate(resolve))
  }
  const [code] = await slowClosed
  t.equal(code, 1008, 'the slow subscriber closed with 1008')
  t.equal(app.websocket.subscriberCount('feed'), 1, 'and left the topic')
  t.equal(app.websocket.publish('feed', 'after'), 1)
  sent++
  const fastInbox = inboxOf(fastWs)
  await fastInbox.untilCount(sent)
  t.equal(fastInbox.unread, sent, `the fast subscriber got all ${sent} messages`)
  t.ok(countsAfterDrop <= 1, 'at most the publish that dropped it counted one')
})

function thrown (call: () => unknown): unknown {
  try {
    call()
  } catch (error) {
    return error
  }
  return undefined
}

t.test('topics are non-empty strings; client connections have none', async (t) => {
  const app = await build(t)
  const [{ conn }] = await clients(app, '/t', 1)
  const bad: unknown[] = ['', 1, null, undefined, Symbol('s'), {}]
  for (const topic of bad) {
    const calls: Array<[string, () => unknown]> = [
      ['subscribe', () => conn.subscribe(topic as string)],
      ['unsubscribe', () => conn.unsubscribe(topic as string)],
      ['isSubscribed', () => conn.isSubscribed(topic as string)],
      ['conn.publish', () => conn.publish(topic as string, 'x')],
      ['app publish', () => app.websocket.publish(topic as string, 'x')],
      ['subscriberCount', () => app.websocket.subscriberCount(topic as string)]
    ]
    for (const [name, call] of calls) {
      const error = thrown(call)
      t.ok(error instanceof TypeError && (error as { code?: string }).code === 'WS_ERR_INVALID_ARGUMENT', `${name}(${typeof topic === 'symbol' ? 'a symbol' : JSON.stringify(topic)}) throws WS_ERR_INVALID_ARGUMENT`)
    }
  }
  t.equal(tableOf(app).size, 0, 'nothing was added')
  const client: WebSocketConnection<undefined> = await app.injectWS('/t')
  t.throws(() => client.subscribe('x'), { code: 'WS_ERR_NO_TOPICS' })
  t.throws(() => client.publish('x', 'y'), { code: 'WS_ERR_NO_TOPICS' })
  t.throws(() => client.topics, { code: 'WS_ERR_NO_TOPICS' })
  client.terminate()
})

t.test('10,000 topics with one subscriber each: a publish touches only its topic\'s subscribers', async (t) => {
  const app = await build(t)
  const pairs = await clients(app, '/t', 4)
  for (let i = 0; i < 10_000; i++) pairs[i % 4].conn.subscribe(`topic-${i}`)
  t.equal(tableOf(app).size, 10_000)
  t.equal(app.websocket.subscriberCount('topic-4321'), 1)
  let deliveries = 0
  const deliverTo = OutgoingMessage.prototype.deliverTo
  OutgoingMessage.prototype.deliverTo = function (this: OutgoingMessage, conn) {
    deliveries++
    return deliverTo.call(this, conn)
  }
  t.teardown(() => { OutgoingMessage.prototype.deliverTo = deliverTo })
  t.equal(app.websocket.publish('topic-4321', 'one'), 1)
  t.equal(deliveries, 1, 'one receiver looked at, not 10,000 topics or 4 connections')
  t.same(await pairs[4321 % 4].inbox.nextText(), 'one')
  deliveries = 0
  pairs[0].conn.subscribe('topic-4321')
  t.equal(pairs[0].conn.publish('topic-4321', 'two'), 1)
  t.equal(deliveries, 1, 'the sender is skipped without a delivery')
  OutgoingMessage.prototype.deliverTo = deliverTo
  const closing = pairs.map(({ conn }) => closeEvent(conn))
  for (const { ws } of pairs) ws.close()
  await Promise.all(closing)
  t.equal(tableOf(app).size, 0, 'closing emptied all 10,000 topics')
})

t.test('publishJson serializes with the route\'s schema.outgoing once', async (t) => {
  const app = await build(t)
  const conns: any[] = []
  app.get('/j', {
    websocket: true,
    schema: { outgoing: { type: 'object', properties: { text: { type: 'string' } } } }
  }, (conn) => { conns.push(conn); conn.subscribe('chat') })
  await listen(app)
  const a = await connect(app, '/j')
  const b = await connect(app, '/j')
  const c = await connect(app, '/j')
  while (conns.length < 3) await new Promise((resolve) => setImmediate(resolve))
  t.equal(conns[0].publishJson('chat', { text: 'hi', secret: 'not sent' }), 2)
  t.same(await inboxOf(b).json(), { text: 'hi' }, 'only the declared fields')
  t.same(await inboxOf(c).json(), { text: 'hi' })
  t.equal(inboxOf(a).unread, 0, 'not to the sender')
})

t.test('README\'s example: a chat room per path', async (t) => {
  const app = await build(t)
  app.get<{ Params: { room: string } }>('/chat/:room', { websocket: true }, (conn, req) => {
    const room = `room:${req.params.room}`
    conn.subscribe(room)
    conn.on('message', (data) => conn.publish(room, data.toString()))
  })
  await listen(app)
  const [a, b, c] = [await connect(app, '/chat/lobby'), await connect(app, '/chat/lobby'), await connect(app, '/chat/other')]
  while (app.websocket.subscriberCount('room:lobby') < 2 || app.websocket.subscriberCount('room:other') < 1) await new Promise((resolve) => setImmediate(resolve))
  a.send('hello lobby')
  t.equal(await inboxOf(b).nextText(), 'hello lobby')
  t.equal(app.websocket.publish('room:lobby', 'the server says hi'), 2)
  t.equal(await inboxOf(a).nextText(), 'the server says hi')
  t.equal(await inboxOf(b).nextText(), 'the server says hi')
  t.equal(inboxOf(a).unread + inboxOf(c).unread, 0, 'the sender and the other room got nothing else')
})
