// The adapter seam (the `adapter` setting): which calls the plugin makes and
// when, what the host hands back, and that a misbehaving adapter costs the
// app nothing. The adapter here is a small in-process bus joining two apps,
// written against the public TopicAdapter interface as a user would; the
// Redis adapter's own tests are in test/adapters/.

import { once } from 'node:events'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import websocket, { type TopicAdapter, type TopicAdapterHost } from '../../lib/index.js'
import { acceptConnections, build, closeEvent, connect, inboxOf, listen } from '../helpers/app.js'

type Call = [string, ...unknown[]]

/** Records every call, and forwards publishes to the other adapters on the same bus. */
class BusAdapter implements TopicAdapter {
  readonly calls: Call[] = []
  host!: TopicAdapterHost
  constructor (private readonly bus: Set<BusAdapter> = new Set()) {
    bus.add(this)
  }

  attach (host: TopicAdapterHost): void {
    this.calls.push(['attach'])
    this.host = host
  }

  subscribe (topic: string): void { this.calls.push(['subscribe', topic]) }
  unsubscribe (topic: string): void { this.calls.push(['unsubscribe', topic]) }
  publish (topic: string, payload: string | Buffer, binary: boolean): void {
    this.calls.push(['publish', topic, payload, binary])
    for (const other of this.bus) {
      if (other !== this) other.host.deliver(topic, Buffer.from(payload), binary)
    }
  }

  async close (): Promise<void> {
    this.calls.push(['close', [...this.host.topics()]])
    this.bus.delete(this)
  }

  named (name: string): Call[] {
    return this.calls.filter((call) => call[0] === name)
  }
}

async function appWith (t: Tap, adapter: TopicAdapter): Promise<{ app: FastifyInstance, next: () => Promise<any> }> {
  const app = await build(t, { adapter })
  const accepted = acceptConnections(app, '/t', true)
  await listen(app)
  return { app, next: async () => await accepted.next() }
}
type Tap = Parameters<typeof build>[0]

t.test('subscribe on the first local subscriber of a topic, unsubscribe after the last, also when it closes', async (t) => {
  const adapter = new BusAdapter()
  const { app, next } = await appWith(t, adapter)
  t.same(adapter.calls, [['attach']], 'attached once, at register')
  const a = await connect(app, '/t')
  const connA = await next()
  await connect(app, '/t')
  const connB = await next()
  connA.subscribe('room')
  connB.subscribe('room')
  connA.subscribe('other')
  t.same(adapter.named('subscribe'), [['subscribe', 'room'], ['subscribe', 'other']], 'one call per topic, on its first subscriber')
  t.same([...adapter.host.topics()].sort(), ['other', 'room'], 'the host lists the topics with local subscribers')
  connB.unsubscribe('room')
  t.same(adapter.named('unsubscribe'), [], 'a subscriber is left')
  const closed = closeEvent(connA)
  a.close()
  await closed
  t.same(adapter.named('unsubscribe').map((call) => call[1]).sort(), ['other', 'room'], 'closing left both topics')
  t.same([...adapter.host.topics()], [])
})

t.test('publish: local delivery first, then the adapter gets the payload and kind', async (t) => {
  const adapter = new BusAdapter()
  const { app, next } = await appWith(t, adapter)
  const ws = await connect(app, '/t')
  const conn = await next()
  conn.subscribe('room')
  t.equal(app.websocket.publish('room', 'hi'), 1, 'the local count')
  t.equal(app.websocket.publish('nobody-here', 'x'), 0, 'no local subscriber…')
  const bytes = new Uint8Array([1, 2, 3, 4]).subarray(1, 3)
  app.websocket.publish('room', bytes)
  app.websocket.publish('room', 'as bytes', { binary: true })
  const published = adapter.named('publish')
  t.same(published[0], ['publish', 'room', 'hi', false], 'a string is handed as it is')
  t.same(published[1], ['publish', 'nobody-here', 'x', false], '…yet still handed on: other instances may have subscribers')
  t.ok(Buffer.isBuffer(published[2]![2]), 'a typed array becomes a Buffer…')
  t.same([...(published[2]![2] as Buffer)], [2, 3], '…over its own bytes only')
  t.equal(published[2]![3], true)
  t.same(published[3]!.slice(2), ['as bytes', true], 'binary: true travels with it')
  const inbox = inboxOf(ws)
  t.equal((await inbox.next()).data.toString(), 'hi')
})

t.test('what another instance publishes is delivered through the host, as text or binary, skipping nobody', async (t) => {
  const bus = new Set<BusAdapter>()
  const one = await appWith(t, new BusAdapter(bus))
  const two = await appWith(t, new BusAdapter(bus))
  const sender = await connect(one.app, '/t')
  const senderConn = await one.next()
  const receiver = await connect(two.app, '/t')
  const receiverConn = await two.next()
  senderConn.subscribe('room')
  receiverConn.subscribe('room')
  // conn.publish skips its sender locally; on the other instance everyone subscribed gets it.
  t.equal(senderConn.publish('room', 'from one'), 0)
  senderConn.publish('room', Buffer.from([0xff, 0x00]))
  const inbox = inboxOf(receiver)
  const text = await inbox.next()
  t.same([text.data.toString(), text.isBinary], ['from one', false])
  const binary = await inbox.next()
  t.same([[...binary.data], binary.isBinary], [[0xff, 0x00], true])
  t.equal(inboxOf(sender).received.length, 0, 'the sender got nothing back')
  t.equal(two.app.websocket.subscriberCount('room'), 1)
})

t.test('ready is awaited before the app is ready; close runs at app.close, after the shutdown round', async (t) => {
  let release!: () => void
  const adapter = new BusAdapter()
  Object.assign(adapter, { ready: async () => await new Promise<void>((resolve) => { release = resolve }) })
  const app = await build(t, { adapter })
  const accepted = acceptConnections(app, '/late', true)
  let ready = false
  const readyDone = app.ready().then(() => { ready = true })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(ready, false, 'app.ready() waits for the adapter')
  release()
  await readyDone
  await listen(app)
  const ws = await connect(app, '/late')
  const conn = await accepted.next()
  conn.subscribe('room')
  const wsClosed = once(ws, 'close')
  await app.close()
  await wsClosed
  t.same(adapter.named('close'), [['close', []]], 'closed once, when every connection had left its topics')
  t.same(adapter.named('unsubscribe'), [['unsubscribe', 'room']])
})

t.test('an adapter that throws is logged; the table and the app carry on', async (t) => {
  const logged: Array<{ msg: string, topic?: string }> = []
  const adapter = new BusAdapter()
  const fail = (): never => { throw new Error('broker exploded') }
  Object.assign(adapter, { subscribe: fail, unsubscribe: fail, publish: fail })
  const app = await build(t, { adapter })
  app.log.error = ((obj: { topic?: string }, msg: string) => { logged.push({ msg, topic: obj.topic }) }) as any
  const accepted = acceptConnections(app, '/t', true)
  await listen(app)
  const ws = await connect(app, '/t')
  const conn = await accepted.next()
  t.equal(conn.subscribe('room'), true, 'subscribed all the same')
  t.equal(app.websocket.publish('room', 'still here'), 1, 'delivered locally all the same')
  t.equal((await inboxOf(ws).next()).data.toString(), 'still here')
  const closed = closeEvent(conn)
  ws.close()
  await closed
  t.equal(app.websocket.subscriberCount('room'), 0, 'the closing connection left its topic')
  t.same(logged.map((entry) => entry.msg), ['subscribe', 'publish', 'unsubscribe'].map((m) => `fastify-rfc6455: the topic adapter threw in ${m}`))
  t.ok(logged.every((entry) => entry.topic === 'room'))
})

t.test('the setting is checked at register, and is app-wide only', async (t) => {
  const bad = Fastify()
  t.teardown(async () => await bad.close())
  await t.rejects(async () => { await bad.register(websocket, { adapter: { attach () {} } as any }) }, {
    code: 'WS_ERR_INVALID_OPTION',
    message: /adapter must be a topic adapter .*missing subscribe, unsubscribe, publish, close/
  })
  const app = await build(t)
  t.throws(() => app.get('/r', { websocket: { adapter: new BusAdapter() } as any }, () => {}), { code: 'WS_ERR_UNKNOWN_OPTION', message: /websocket\.adapter.*applies to the whole app/ })
})
