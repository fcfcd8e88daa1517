import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { JsonWebSocketConnection, WebSocketConnection } from '../../lib/index.js'
import { build, injectClient } from '../helpers/app.js'

const Point = {
  type: 'object',
  properties: { x: { type: 'number' }, y: { type: 'number' } },
  required: ['x', 'y']
} as const

t.test('a valid message reaches onJson, parsed and validated; sendJson answers', async (t) => {
  const app = await build(t)
  app.get('/echo', { websocket: true, schema: { message: Point, outgoing: Point } }, (conn) => {
    t.ok(conn instanceof JsonWebSocketConnection)
    t.ok(conn instanceof WebSocketConnection)
    conn.onJson((msg: any, c) => {
      t.equal(c, conn, 'the handler gets the connection')
      c.sendJson({ x: msg.x * 2, y: msg.y * 2 })
    })
  })
  const client = await injectClient(app, '/echo')
  client.send({ x: 1, y: 2 })
  t.same(await client.json(), { x: 2, y: 4 })
  client.send({ x: 3, y: 4 })
  t.same(await client.json(), { x: 6, y: 8 })
})

t.test('outgoing serialization sends only declared fields', async (t) => {
  const app = await build(t)
  app.get('/user', {
    websocket: true,
    schema: {
      outgoing: { type: 'object', properties: { name: { type: 'string' }, tags: { type: 'array', items: { type: 'object', properties: { id: { type: 'integer' } } } } } }
    }
  }, (conn) => {
    conn.onJson(() => {
      conn.sendJson({ name: 'ada', password: 'secret', tags: [{ id: 1, internal: true }] } as any)
    })
  })
  const client = await injectClient(app, '/user')
  client.send({})
  const { data } = await client.next()
  t.equal(data.toString(), '{"name":"ada","tags":[{"id":1}]}', 'undeclared fields never leave the server')
})

t.test('without schema.outgoing, sendJson is JSON.stringify; without schema.message, onJson only parses', async (t) => {
  const app = await build(t)
  app.get('/plain', { websocket: true }, (conn) => {
    conn.onJson((msg) => {
      conn.sendJson({ got: msg, extra: [1, 'two'] })
    })
  })
  const client = await injectClient(app, '/plain')
  client.send({ anything: { goes: true } })
  const { data } = await client.next()
  t.equal(data.toString(), JSON.stringify({ got: { anything: { goes: true } }, extra: [1, 'two'] }))
  client.send('42')
  t.same(await client.json(), { got: 42, extra: [1, 'two'] })
})

t.test('a discriminated outgoing union serializes each variant with its own schema', async (t) => {
  const app = await build(t)
  app.get('/out', {
    websocket: true,
    schema: {
      outgoing: {
        anyOf: [
          { type: 'object', properties: { type: { const: 'a' }, n: { type: 'integer' } }, required: ['type'] },
          { type: 'object', properties: { type: { const: 'b' }, s: { type: 'string' } }, required: ['type'] }
        ]
      }
    }
  }, (conn) => {
    conn.onJson(() => {
      conn.sendJson({ type: 'b', s: 'x', n: 1, hidden: 1 })
      conn.sendJson({ type: 'a', n: 2, s: 'y' })
      t.throws(() => conn.sendJson({ type: 'c' }), /matches no variant/)
      t.equal(conn.serializeJson({ type: 'a', n: 3, z: 0 }), '{"type":"a","n":3}')
    })
  })
  const client = await injectClient(app, '/out')
  client.send({})
  t.equal((await client.next()).data.toString(), '{"type":"b","s":"x"}')
  t.equal((await client.next()).data.toString(), '{"type":"a","n":2}')
})

t.test('raw message events keep working next to onJson', async (t) => {
  const app = await build(t)
  const raw: string[] = []
  app.get('/both', { websocket: true, schema: { message: Point } }, (conn) => {
    conn.on('message', (data: Buffer) => raw.push(data.toString()))
    conn.onJson((msg: any) => conn.sendJson({ sum: msg.x + msg.y }))
  })
  const client = await injectClient(app, '/both')
  client.send({ x: 1, y: 1 })
  t.same(await client.json(), { sum: 2 })
  client.send('not json')
  t.equal((await client.json()).code, 'FST_ERR_WS_INVALID_JSON')
  t.same(raw, ['{"x":1,"y":1}', 'not json'], 'raw listeners see every message, valid or not')
})

t.test('messages sent before an async handler calls onJson are not lost', async (t) => {
  const app = await build(t)
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  app.get('/late', { websocket: true, schema: { message: Point } }, async (conn) => {
    await gate
    conn.onJson((msg: any) => conn.sendJson(msg.x))
  })
  const client = await injectClient(app, '/late')
  for (let i = 0; i < 20; i++) client.send({ x: i, y: 0 })
  client.send('{broken')
  client.send({ x: 99, y: 0 })
  // Nothing is answered until the handler listens.
  client.conn.ping('sync')
  await once(client.conn, 'pong')
  t.equal(client.unread, 0)
  release()
  const got: unknown[] = []
  for (let i = 0; i < 22; i++) {
    const msg = await client.json()
    got.push(typeof msg === 'object' ? msg.code : msg)
  }
  t.same(got, [...Array.from({ length: 20 }, (_, i) => i), 'FST_ERR_WS_INVALID_JSON', 99], 'all held, in order')
})

t.test('messages() iterates over valid messages, one at a time, and ends on close', async (t) => {
  const app = await build(t)
  const done = new Promise<unknown[]>((resolve, reject) => {
    app.get('/iter', { websocket: true, schema: { message: Point } }, async (conn) => {
      const seen: unknown[] = []
      try {
        for await (const msg of conn.messages()) {
          seen.push(msg)
          await new Promise((resolve) => setImmediate(resolve)) // a slow consumer
          conn.sendJson({ ok: seen.length })
        }
        resolve(seen)
      } catch (err) {
        reject(err)
      }
    })
  })
  const client = await injectClient(app, '/iter')
  client.send({ x: 1, y: 1 })
  client.send({ x: 'bad', y: 1 })
  client.send({ x: 2, y: 2 })
  t.same(await client.json(), { ok: 1 })
  const error = await client.json()
  t.equal(error.code, 'FST_ERR_VALIDATION', 'invalid ones get the policy and are skipped')
  t.same(await client.json(), { ok: 2 })
  client.conn.close(1000)
  t.same(await done, [{ x: 1, y: 1 }, { x: 2, y: 2 }])
})

t.test('one JSON consumer per connection', async (t) => {
  const app = await build(t)
  app.get('/twice', { websocket: true }, (conn) => {
    conn.onJson(() => {})
    t.throws(() => conn.onJson(() => {}), /already has a JSON consumer \(onJson\)/)
    t.throws(() => conn.messages(), /already has a JSON consumer/)
    t.throws(() => (conn.onJson as any)(42), /expects a handler function/)
    conn.send('checked')
  })
  const client = await injectClient(app, '/twice')
  t.equal((await client.next()).data.toString(), 'checked')
})

t.test('a throwing or rejecting JSON handler goes to the route errorHandler', async (t) => {
  const app = await build(t)
  const errors: string[] = []
  app.get('/boom', {
    websocket: {
      errorHandler (error, conn) {
        errors.push((error as Error).message)
        conn.close(4000, 'handled')
      }
    }
  }, (conn) => {
    conn.onJson(async (msg: any) => {
      if (msg.async === true) throw new Error('async boom')
      conn.sendJson({ ok: true })
    })
  })
  const client = await injectClient(app, '/boom')
  client.send({})
  t.same(await client.json(), { ok: true })
  client.send({ async: true })
  t.same(await client.closed, { code: 4000, reason: 'handled' })
  t.same(errors, ['async boom'])
})

t.test('without an errorHandler, a failing JSON handler closes with 1011', async (t) => {
  const app = await build(t)
  app.get('/boom', { websocket: true }, (conn) => {
    conn.onJson(() => {
      throw new Error('sync boom')
    })
  })
  const client = await injectClient(app, '/boom')
  client.send({})
  t.equal((await client.closed).code, 1011)
})

t.test('works the same over a real loopback socket', async (t) => {
  const app = await build(t)
  app.get('/echo', { websocket: true, schema: { message: Point, outgoing: Point } }, (conn) => {
    conn.onJson((msg: any) => conn.sendJson({ ...msg, z: 1 }))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  ws.send(JSON.stringify({ x: 1, y: 2, z: 3 }))
  const [reply] = await once(ws, 'message')
  t.equal(reply.toString(), '{"x":1,"y":2}')
  ws.send('{"x":"no"}')
  const [error] = await once(ws, 'message')
  t.match(JSON.parse(error.toString()), { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request' })
  ws.close()
  await once(ws, 'close')
})
