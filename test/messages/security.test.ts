import t from 'tap'
import { build, injectClient } from '../helpers/app.js'

const poison = [
  '{"__proto__":{"polluted":1}}',
  '{"a":{"b":[{"__proto__":{"polluted":1}}]}}',
  '{"\\u005f_proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"polluted":1}}}',
  '{"nested":{"constructor":{"prototype":{"polluted":1}}}}'
]

function untouched (t: { equal (...args: any[]): boolean }): void {
  t.equal(({} as any).polluted, undefined, 'Object.prototype is not polluted')
}

t.test('prototype-poisoning payloads are rejected by default', async (t) => {
  const app = await build(t)
  let handled = 0
  app.get('/any', { websocket: true }, (conn) => {
    conn.onJson((msg) => {
      handled++
      conn.sendJson({ ok: true, merged: Object.assign({}, msg as object) })
    })
  })
  const client = await injectClient(app, '/any')
  for (const text of poison) {
    client.send(text)
    t.same(await client.json(), {
      statusCode: 400,
      code: 'FST_ERR_WS_INVALID_JSON',
      error: 'Bad Request',
      message: 'Object contains forbidden prototype property'
    }, text)
  }
  t.equal(handled, 0, 'the handler never saw them')
  client.send('{"constructor":"a string is fine","proto":1}')
  t.same(await client.json(), { ok: true, merged: { constructor: 'a string is fine', proto: 1 } })
  untouched(t)
})

t.test("onProtoPoisoning / onConstructorPoisoning: 'remove' strips the keys", async (t) => {
  const app = await build(t, {}, { onProtoPoisoning: 'remove', onConstructorPoisoning: 'remove' })
  app.get('/any', { websocket: true, schema: { message: { type: 'object' } } }, (conn) => {
    conn.onJson((msg) => {
      conn.sendJson({ keys: Object.keys(msg as object), proto: Object.getPrototypeOf(msg) === Object.prototype })
    })
  })
  const client = await injectClient(app, '/any')
  client.send('{"__proto__":{"polluted":1},"a":1}')
  t.same(await client.json(), { keys: ['a'], proto: true })
  client.send('{"constructor":{"prototype":{"polluted":1}},"b":2}')
  t.same(await client.json(), { keys: ['b'], proto: true })
  untouched(t)
})

t.test("'ignore' is honoured too (the app asked for it)", async (t) => {
  const app = await build(t, {}, { onProtoPoisoning: 'ignore', onConstructorPoisoning: 'ignore' })
  app.get('/any', { websocket: true }, (conn) => {
    conn.onJson((msg) => {
      conn.sendJson({ own: Object.keys(msg as object) })
    })
  })
  const client = await injectClient(app, '/any')
  client.send('{"__proto__":{"polluted":1}}')
  t.same(await client.json(), { own: ['__proto__'] }, 'JSON.parse makes an own property, never a prototype')
  untouched(t)
})

t.test('poisoning is rejected before validation, under every policy', async (t) => {
  const app = await build(t)
  app.get('/close', { websocket: { onInvalidMessage: 'close' }, schema: { message: { type: 'object' } } }, (conn) => {
    conn.onJson(() => conn.send('handled'))
  })
  const client = await injectClient(app, '/close')
  client.send('{"constructor":{"prototype":{"isAdmin":true}}}')
  t.same(await client.closed, { code: 1007, reason: 'invalid JSON' })
  t.equal(client.unread, 0)
})

t.test('deeply nested and large inputs do not crash the parser path', async (t) => {
  const app = await build(t)
  app.get('/any', { websocket: true }, (conn) => {
    conn.onJson(() => conn.send('ok'))
  })
  const client = await injectClient(app, '/any')
  client.send('['.repeat(100_000))
  t.match(await client.json(), { code: 'FST_ERR_WS_INVALID_JSON' })
  client.send(JSON.stringify({ big: 'x'.repeat(500_000), constructor: 1 }))
  t.equal((await client.next()).data.toString(), 'ok')
})
