import Fastify from 'fastify'
import t from 'tap'
import websocket from '../../lib/index.js'
import { build, clientClosed, closeEvent, connect, gate, listen } from '../helpers/app.js'
import { RawPeer, handshake } from '../helpers/raw-peer.js'
import { within } from '../helpers/time.js'

t.test('an async preClose replaces the 1001 round: a custom close code on shutdown, the plugin registered first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, {
    async preClose () {
      await Promise.all([...this.websocket.clients].map(async (conn) => {
        const closed = closeEvent(conn)
        conn.close(4000, 'maintenance')
        await closed
      }))
    }
  })
  app.get('/ws', { websocket: true }, () => {})
  await listen(app)
  const clients = [await connect(app, '/ws'), await connect(app, '/ws')]
  const closed = clients.map(clientClosed)
  await within(app.close(), 'app.close()')
  t.same(await Promise.all(closed), [{ code: 4000, reason: 'maintenance' }, { code: 4000, reason: 'maintenance' }])
})

t.test('preClose(done), called with the instance as this', async (t) => {
  let self: unknown
  const app = await build(t, {
    preClose (done) {
      self = this
      for (const conn of this.websocket.clients) conn.close(4001, 'bye')
      done()
    }
  })
  app.get('/ws', { websocket: true }, () => {})
  await listen(app)
  const closed = clientClosed(await connect(app, '/ws'))
  await within(app.close(), 'app.close()')
  t.equal(self, app)
  t.same(await closed, { code: 4001, reason: 'bye' })
})

t.test('while a custom preClose runs, upgrades are refused with 503', async (t) => {
  const running = gate()
  const release = gate()
  const app = await build(t, {
    async preClose () {
      running.resolve()
      await release.promise
      for (const conn of this.websocket.clients) conn.close(4002, 'later')
    }
  })
  app.get('/ws', { websocket: true }, () => {})
  await listen(app)
  const client = await connect(app, '/ws')
  const closed = clientClosed(client)
  const closing = app.close()
  await within(running.promise, 'the preClose starting')
  const late = await RawPeer.open(app)
  late.write(handshake('/ws'))
  t.equal((await late.response()).status, 503, 'a new upgrade is refused')
  t.equal(client.readyState, client.OPEN, 'the open connection is left to the preClose')
  release.resolve()
  t.same(await closed, { code: 4002, reason: 'later' })
  await within(closing, 'app.close()')
  late.destroy()
})

t.test('preClose must be a function (@fastify/websocket\'s message)', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(websocket, { preClose: 'Not a function' as any }) }, {
    code: 'WS_ERR_INVALID_OPTION',
    message: 'invalid preClose function'
  })
  await t.rejects(app.listen({ port: 0 }), { message: 'invalid preClose function' }, 'and listen after it')
})
