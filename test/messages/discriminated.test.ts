import t from 'tap'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifySchemaCompiler } from 'fastify'
import { build, connect } from './helpers.js'

const Join = Type.Object({ type: Type.Literal('join'), room: Type.String({ minLength: 1 }) })
const Say = Type.Object({ type: Type.Literal('say'), text: Type.String(), to: Type.Optional(Type.String()) })
const Leave = Type.Object({ type: Type.Literal('leave') })
const Incoming = Type.Union([Join, Say, Leave])

t.test('each variant goes to its own handler, validated by its own schema', async (t) => {
  const app = (await build(t)).withTypeProvider<TypeBoxTypeProvider>()
  app.get('/chat', { websocket: true, schema: { message: Incoming } }, (conn) => {
    const rooms: string[] = []
    conn.onJson('type', {
      join: (msg) => {
        rooms.push(msg.room)
        conn.sendJson({ joined: msg.room })
      },
      say: (msg) => conn.sendJson({ said: msg.text, in: rooms, to: msg.to ?? null }),
      leave: () => conn.close(1000, 'bye')
    })
  })
  const client = await connect(app, '/chat')
  client.send({ type: 'join', room: 'lobby' })
  t.same(await client.json(), { joined: 'lobby' })
  client.send({ type: 'say', text: 'hi' })
  t.same(await client.json(), { said: 'hi', in: ['lobby'], to: null })

  client.send({ type: 'join', room: '' })
  t.same(await client.json(), {
    statusCode: 400,
    code: 'FST_ERR_VALIDATION',
    error: 'Bad Request',
    message: 'message/room must NOT have fewer than 1 characters',
    validation: [{ instancePath: '/room', keyword: 'minLength', message: 'must NOT have fewer than 1 characters', params: { limit: 1 } }]
  }, "the variant's own error, not one per branch of the union")

  client.send({ type: 'say' })
  t.match(await client.json(), { message: "message must have required property 'text'" })

  client.send({ type: 'shout', text: 'HI' })
  t.same(await client.json(), {
    statusCode: 400,
    code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE',
    error: 'Bad Request',
    message: 'message/type must be one of the known message types ("join", "say", "leave"), got "shout"',
    validation: [{
      instancePath: '/type',
      keyword: 'discriminator',
      message: 'must be one of "join", "say", "leave"',
      params: { tag: 'type', tagValue: 'shout', allowedValues: ['join', 'say', 'leave'] }
    }]
  })

  client.send({ text: 'no type' })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: "message must have required property 'type'", validation: [{ keyword: 'required', params: { missingProperty: 'type' } }] })

  client.send([{ type: 'join', room: 'x' }])
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: 'message must be object' })
  client.send('null')
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: 'message must be object' })

  client.send({ type: 'leave' })
  t.same(await client.closed, { code: 1000, reason: 'bye' })
})

t.test('an unknown variant closes with 1008 under the close policy', async (t) => {
  const app = await build(t)
  app.get('/chat', { websocket: { onInvalidMessage: 'close' }, schema: { message: Incoming } }, (conn) => {
    conn.onJson('type', { join: () => {}, say: () => {}, leave: () => {} })
  })
  const client = await connect(app, '/chat')
  client.send({ type: 'dance' })
  t.same(await client.closed, { code: 1008, reason: 'unknown message type' })
})

t.test('the compiler sees each variant once, not the union', async (t) => {
  const app = await build(t)
  const seen: unknown[] = []
  const compiler: FastifySchemaCompiler<any> = ({ schema }) => {
    seen.push(schema)
    return () => true
  }
  app.get('/v', { websocket: true, schema: { message: Incoming }, validatorCompiler: compiler }, (conn) => {
    conn.onJson('type', { join: () => conn.send('j'), say: () => conn.send('s'), leave: () => conn.send('l') })
  })
  await app.ready()
  t.same(seen, [Join, Say, Leave])
  const client = await connect(app, '/v')
  client.send({ type: 'say' })
  t.equal((await client.next()).data.toString(), 's')
  t.equal(seen.length, 3)
})

t.test('a union that is not discriminated is validated whole; handlers are then picked by the property', async (t) => {
  const app = await build(t)
  app.get('/loose', {
    websocket: true,
    schema: {
      message: {
        anyOf: [
          { type: 'object', properties: { kind: { type: 'string' }, a: { type: 'number' } }, required: ['kind', 'a'] },
          { type: 'object', properties: { kind: { type: 'string' }, b: { type: 'number' } }, required: ['kind', 'b'] }
        ]
      }
    }
  }, (conn) => {
    conn.onJson('kind', {
      first: (msg) => conn.sendJson({ first: msg.a }),
      second: (msg) => conn.sendJson({ second: msg.b })
    })
  })
  const client = await connect(app, '/loose')
  client.send({ kind: 'first', a: 1 })
  t.same(await client.json(), { first: 1 })
  client.send({ kind: 'second', b: 2 })
  t.same(await client.json(), { second: 2 })
  client.send({ kind: 'third', a: 3 })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE', message: 'message/kind must be one of the known message types ("first", "second"), got "third"' })
  client.send({ kind: 'first' })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION' })
})

t.test('without a schema, handlers are picked by the property; numbers work as tags', async (t) => {
  const app = await build(t)
  app.get('/free', { websocket: true }, (conn) => {
    conn.onJson('op', {
      1: (msg) => conn.sendJson({ one: msg }),
      inc: (msg) => conn.sendJson({ inc: (msg.by as number) + 1 })
    })
  })
  const client = await connect(app, '/free')
  client.send({ op: 1 })
  t.same(await client.json(), { one: { op: 1 } })
  client.send({ op: 'inc', by: 41 })
  t.same(await client.json(), { inc: 42 })
  client.send({ op: 'toString' })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE' }, 'inherited properties are not handlers')
  client.send({ op: '__proto__' })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE' })
  client.send({ op: { nested: true } })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE', validation: [{ instancePath: '/op' }] })
  client.send('"just a string"')
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: 'message must be object' })
})

t.test('numeric discriminators in a schema', async (t) => {
  const app = await build(t)
  app.get('/v', {
    websocket: true,
    schema: {
      message: Type.Union([
        Type.Object({ v: Type.Literal(1), a: Type.String() }),
        Type.Object({ v: Type.Literal(2), b: Type.Number() })
      ])
    }
  }, (conn) => {
    conn.onJson('v', {
      1: (msg) => conn.sendJson({ a: msg.a }),
      2: (msg) => conn.sendJson({ b: msg.b })
    })
  })
  const client = await connect(app, '/v')
  client.send({ v: 2, b: 5 })
  t.same(await client.json(), { b: 5 })
  client.send({ v: 1, a: 'x' })
  t.same(await client.json(), { a: 'x' })
  client.send({ v: 3 })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE', validation: [{ params: { allowedValues: [1, 2] } }] })
})

t.test('handler objects are checked', async (t) => {
  const app = await build(t)
  app.get('/v', { websocket: true }, (conn) => {
    t.throws(() => (conn.onJson as any)('type', { a: 'not a function' }), /the handler for "a" is not a function/)
    t.throws(() => (conn.onJson as any)('type'), /expects a handler function/)
    conn.send('done')
  })
  const client = await connect(app, '/v')
  t.equal((await client.next()).data.toString(), 'done')
})
