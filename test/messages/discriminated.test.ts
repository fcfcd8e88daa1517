import t from 'tap'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifySchemaCompiler } from 'fastify'
import { build, injectClient } from '../helpers/app.js'

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
  const client = await injectClient(app, '/chat')
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
  const client = await injectClient(app, '/chat')
  client.send({ type: 'dance' })
  t.same(await client.closed, { code: 1008, reason: 'unknown message type' })
})

t.test('the compiler sees each variant once, then the union once, at startup', async (t) => {
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
  t.same(seen, [Join, Say, Leave, Incoming])
  const client = await injectClient(app, '/v')
  client.send({ type: 'say' })
  t.equal((await client.next()).data.toString(), 's')
  client.send({ type: 'dance' })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE' }, 'a union validator that accepts anything still needs a known tag')
  t.equal(seen.length, 4)
})

const Numbered = Type.Union([
  Type.Object({ v: Type.Literal(1), a: Type.String() }),
  Type.Object({ v: Type.Literal(2), b: Type.Number() })
])

t.test("a tag that names no variant as sent gets the whole union's validation, coercion included, as an HTTP body would", async (t) => {
  const app = (await build(t)).withTypeProvider<TypeBoxTypeProvider>()
  app.post('/http', { schema: { body: Numbered } }, async (req) => req.body)
  app.get('/handlers', { websocket: true, schema: { message: Numbered } }, (conn) => {
    conn.onJson('v', {
      1: (msg) => conn.sendJson({ handler: 1, msg: { ...msg } }),
      2: (msg) => conn.sendJson({ handler: 2, msg: { ...msg } })
    })
  })
  app.get('/plain', { websocket: true, schema: { message: Numbered } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  app.get('/iter', { websocket: true, schema: { message: Numbered } }, async (conn) => {
    for await (const msg of conn.messages()) conn.sendJson(msg)
  })

  const http = await app.inject({ method: 'POST', url: '/http', payload: { v: '1', a: 'x' } })
  t.same(http.json(), { v: 1, a: 'x' }, 'Fastify coerces the tag of a body')

  const handlers = await injectClient(app, '/handlers')
  handlers.send({ v: '1', a: 'x' })
  t.same(await handlers.json(), { handler: 1, msg: { v: 1, a: 'x' } }, 'dispatched by the coerced tag')
  handlers.send({ v: '2', b: '5' })
  t.same(await handlers.json(), { handler: 2, msg: { v: 2, b: 5 } })

  const plain = await injectClient(app, '/plain')
  plain.send({ v: '2', b: 7 })
  t.same(await plain.json(), { v: 2, b: 7 }, 'onJson(handler) too')
  const iter = await injectClient(app, '/iter')
  iter.send({ v: '1', a: 'y' })
  t.same(await iter.json(), { v: 1, a: 'y' }, 'messages() too')

  handlers.send({ v: 1 })
  t.same(await handlers.json(), {
    statusCode: 400,
    code: 'FST_ERR_VALIDATION',
    error: 'Bad Request',
    message: "message must have required property 'a'",
    validation: [{ instancePath: '', keyword: 'required', message: "must have required property 'a'", params: { missingProperty: 'a' } }]
  }, "a strict tag still gets its variant's own errors")
  handlers.send({ v: '1' })
  t.match(await handlers.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE', validation: [{ params: { tagValue: '1' } }] }, 'no variant as sent, and the union refuses it')
  handlers.send({ v: '3', a: 'x' })
  t.match(await handlers.json(), {
    code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE',
    message: 'message/v must be one of the known message types (1, 2), got "3"',
    validation: [{ params: { tagValue: '3', allowedValues: [1, 2] } }]
  })
  handlers.send({ a: 'x' })
  t.match(await handlers.json(), { code: 'FST_ERR_VALIDATION', message: "message must have required property 'v'" })
})

t.test('without coercion, a tag of the wrong type is an unknown variant', async (t) => {
  const app = await build(t, {}, { ajv: { customOptions: { coerceTypes: false } } })
  app.get('/v', { websocket: true, schema: { message: Numbered } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  const client = await injectClient(app, '/v')
  client.send({ v: '1', a: 'x' })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE', validation: [{ params: { tagValue: '1' } }] })
  client.send({ v: 1, a: 'x' })
  t.same(await client.json(), { v: 1, a: 'x' })
})

t.test('the union validator behind the fallback is compiled once per route, not per connection or message', async (t) => {
  const app = await build(t)
  const compiled: string[] = []
  // Coerces a string tag only in the whole union, as a coercing Ajv would.
  const compiler: FastifySchemaCompiler<any> = ({ schema }) => {
    const s = schema as { anyOf?: unknown[], properties?: { v: { const: number } } }
    if (s.anyOf !== undefined) {
      compiled.push('union')
      return (data: any) => {
        const v = Number(data?.v)
        return v === 1 || v === 2 ? { value: { ...data, v } } : { error: new Error('no branch matches') }
      }
    }
    const tag = s.properties!.v.const
    compiled.push(`variant ${tag}`)
    return (data: any) => data?.v === tag ? { value: data } : { error: new Error(`v must be ${tag}`) }
  }
  app.get('/a', { websocket: true, schema: { message: Numbered }, validatorCompiler: compiler }, (conn) => {
    conn.onJson('v', { 1: (msg) => conn.sendJson({ one: msg }), 2: (msg) => conn.sendJson({ two: msg }) })
  })
  app.get('/b', { websocket: true, schema: { message: Numbered }, validatorCompiler: compiler }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  await app.ready()
  t.same(compiled, ['variant 1', 'variant 2', 'union', 'variant 1', 'variant 2', 'union'], 'at startup, once per route')
  for (let i = 0; i < 2; i++) {
    const a = await injectClient(app, '/a')
    const b = await injectClient(app, '/b')
    for (let j = 0; j < 3; j++) {
      a.send({ v: '2', n: j })
      t.same(await a.json(), { two: { v: 2, n: j } })
      b.send({ v: '1', n: j })
      t.same(await b.json(), { v: 1, n: j })
      a.send({ v: 'x' })
      t.match(await a.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE' })
    }
  }
  t.equal(compiled.length, 6, 'never again')
})

t.test("branches with their own $id compile with Fastify's Ajv, union included", async (t) => {
  const app = await build(t)
  const A = Type.Object({ kind: Type.Literal('a'), n: Type.Integer() }, { $id: 'VariantA' })
  const B = Type.Object({ kind: Type.Literal('b') }, { $id: 'VariantB' })
  app.get('/ids', { websocket: true, schema: { message: Type.Union([A, B]) } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  const client = await injectClient(app, '/ids')
  client.send({ kind: 'a', n: '3' })
  t.same(await client.json(), { kind: 'a', n: 3 })
  client.send({ kind: 'c' })
  t.match(await client.json(), { code: 'FST_ERR_WS_UNKNOWN_MESSAGE_TYPE' })
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
  const client = await injectClient(app, '/loose')
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
  const client = await injectClient(app, '/free')
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
  const client = await injectClient(app, '/v')
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
  const client = await injectClient(app, '/v')
  t.equal((await client.next()).data.toString(), 'done')
})
