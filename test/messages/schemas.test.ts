import t from 'tap'
import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify'
import { setFastifyInternalsEnabled } from '../../lib/messages/index.js'
import { build, injectClient } from '../helpers/app.js'

t.test('$ref to a shared schema added with app.addSchema', async (t) => {
  const app = await build(t)
  app.addSchema({ $id: 'point', type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] })
  app.get('/ref', {
    websocket: true,
    schema: { message: { $ref: 'point#' }, outgoing: { $ref: 'point#' } }
  }, (conn) => {
    conn.onJson((msg: any) => conn.sendJson({ ...msg, secret: 1 }))
  })
  const client = await injectClient(app, '/ref')
  client.send({ x: 1, y: 2 })
  t.equal((await client.next()).data.toString(), '{"x":1,"y":2}', 'the shared schema serializes too')
  client.send({ x: 1 })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: "message must have required property 'y'" })
})

t.test('shared schemas of an encapsulated instance, on an instance without other schema routes', async (t) => {
  const app = await build(t)
  app.addSchema({ $id: 'root', type: 'object', properties: { id: { type: 'integer' } }, required: ['id'] })
  // The root compiles its Ajv for an HTTP route first: the child's compiler must still know the child's schemas.
  app.post('/http', { schema: { body: { $ref: 'root#' } } }, async () => 'ok')
  await app.register(async (child) => {
    child.addSchema({ $id: 'item', type: 'object', properties: { owner: { $ref: 'root#' }, name: { type: 'string' } }, required: ['owner', 'name'] })
    child.get('/item', { websocket: true, schema: { message: { $ref: 'item#' } } }, (conn) => {
      conn.onJson((msg: any) => conn.sendJson({ name: msg.name }))
    })
  })
  const client = await injectClient(app, '/item')
  client.send({ owner: { id: 1 }, name: 'x' })
  t.same(await client.json(), { name: 'x' })
  client.send({ owner: { id: 'one' }, name: 'x' })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', validation: [{ instancePath: '/owner/id' }] })
})

t.test("the app's ajv options apply", async (t) => {
  const app = await build(t, {}, {
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false },
      plugins: [(ajv: any) => ajv.addKeyword({ keyword: 'even', type: 'number', validate: (_: unknown, n: number) => n % 2 === 0, errors: false })]
    }
  })
  app.get('/strict', {
    websocket: true,
    schema: { message: { type: 'object', properties: { n: { type: 'number', even: true } }, additionalProperties: false } }
  }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  const client = await injectClient(app, '/strict')
  client.send({ n: 2 })
  t.same(await client.json(), { n: 2 })
  client.send({ n: '2' })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: 'message/n must be number' }, 'no coercion')
  client.send({ n: 2, more: 1 })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', validation: [{ keyword: 'additionalProperties' }] }, 'no removal')
  client.send({ n: 3 })
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION', validation: [{ keyword: 'even' }] }, 'custom keyword from an Ajv plugin')
})

t.test("with Fastify's default Ajv options, types are coerced as for bodies", async (t) => {
  const app = await build(t)
  app.get('/coerce', {
    websocket: true,
    schema: { message: { type: 'object', properties: { n: { type: 'integer' }, list: { type: 'array', items: { type: 'string' } } } } }
  }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  app.get('/root', { websocket: true, schema: { message: { type: 'array', items: { type: 'integer' } } } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  const client = await injectClient(app, '/coerce')
  client.send({ n: '12', list: 'one' })
  t.same(await client.json(), { n: 12, list: ['one'] })
  const root = await injectClient(app, '/root')
  root.send('"7"')
  t.same(await root.json(), [7], 'the message itself is coerced too')
})

function countingCompiler (calls: Array<{ schema: unknown, httpPart?: string, url: string }>): FastifySchemaCompiler<any> {
  return ({ schema, httpPart, url }) => {
    calls.push({ schema, httpPart, url })
    const required = (schema as { required?: string[] }).required ?? []
    return (data: any) => {
      const missing = required.find((key) => data === null || typeof data !== 'object' || !(key in data))
      if (missing === undefined) return { value: data }
      return { error: Object.assign(new Error(`missing ${missing}`), { validation: [{ instancePath: '', keyword: 'required', params: { missingProperty: missing } }] }) }
    }
  }
}

t.test('an instance-level validator compiler compiles each message schema once, at startup', async (t) => {
  const app = await build(t)
  const calls: Array<{ schema: unknown, httpPart?: string, url: string }> = []
  app.setValidatorCompiler(countingCompiler(calls))
  const message = { type: 'object', required: ['a'] }
  app.get('/one', { websocket: true, schema: { message, querystring: { type: 'object' } } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  app.get('/two', { websocket: true, schema: { message: { type: 'object', required: ['b'] } } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  await app.ready()
  const messageCalls = (): typeof calls => calls.filter((c) => c.httpPart === 'message')
  t.same(messageCalls().map((c) => c.url), ['/one', '/two'], 'compiled at startup, once per route')
  t.equal(messageCalls()[0].schema, message, 'with the route schema itself')

  for (let i = 0; i < 3; i++) {
    const client = await injectClient(app, i === 1 ? '/two' : '/one')
    for (let j = 0; j < 5; j++) {
      client.send(i === 1 ? { b: j } : { a: j })
      t.same(await client.json(), i === 1 ? { b: j } : { a: j })
    }
    client.send({})
    t.match(await client.json(), { code: 'FST_ERR_VALIDATION', message: i === 1 ? 'missing b' : 'missing a', validation: [{ keyword: 'required' }] })
  }
  t.equal(messageCalls().length, 2, 'never again, whatever the number of connections and messages')
})

t.test('a route-level validator compiler wins, and is called once', async (t) => {
  const app = await build(t)
  const instanceCalls: unknown[] = []
  app.setValidatorCompiler(() => {
    instanceCalls.push(1)
    return () => true
  })
  const calls: Array<{ schema: unknown, httpPart?: string, url: string }> = []
  app.get('/route', { websocket: true, schema: { message: { required: ['z'] } }, validatorCompiler: countingCompiler(calls) }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  const a = await injectClient(app, '/route')
  const b = await injectClient(app, '/route')
  a.send({ z: 1 })
  t.same(await a.json(), { z: 1 })
  b.send({ y: 1 })
  t.match(await b.json(), { message: 'missing z' })
  t.equal(calls.length, 1)
  t.equal(instanceCalls.length, 0)
})

t.test('a custom compiler: TypeBox', async (t) => {
  const app = await build(t)
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  app.get('/tb', { websocket: true, schema: { message: Type.Object({ n: Type.Integer({ minimum: 1 }) }) } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  const client = await injectClient(app, '/tb')
  client.send({ n: 3 })
  t.same(await client.json(), { n: 3 })
  client.send({ n: 0 })
  t.match(await client.json(), { statusCode: 400, code: 'FST_ERR_VALIDATION', validation: [{ instancePath: '/n' }] })
})

t.test('instance-level and route-level serializer compilers', async (t) => {
  const app = await build(t)
  const calls: string[] = []
  const upper = (tag: string): FastifySerializerCompiler<any> => ({ url }) => {
    calls.push(`${tag} ${url}`)
    return (data) => JSON.stringify(data).toUpperCase()
  }
  app.setSerializerCompiler(upper('instance'))
  const handler = (conn: any): void => {
    conn.onJson((msg: unknown) => conn.sendJson(msg))
  }
  app.get('/instance', { websocket: true, schema: { outgoing: { type: 'object' } } }, handler)
  app.get('/route', { websocket: true, schema: { outgoing: { type: 'object' } }, serializerCompiler: upper('route') }, handler)
  await app.ready()
  t.same(calls.slice().sort(), ['instance /instance', 'route /route'], 'compiled at startup, once per route')
  for (let i = 0; i < 2; i++) {
    const a = await injectClient(app, '/instance')
    const b = await injectClient(app, '/route')
    a.send({ a: 'x' + i })
    b.send({ b: 'y' + i })
    t.equal((await a.next()).data.toString(), `{"A":"X${i}"}`)
    t.equal((await b.next()).data.toString(), `{"B":"Y${i}"}`)
  }
  t.same(calls.sort(), ['instance /instance', 'route /route'], 'not again for later connections')
})

t.test('schemaErrorFormatter of the route, then of the instance', async (t) => {
  const app = await build(t)
  app.setSchemaErrorFormatter((errors, dataVar) => new Error(`${dataVar}: ${errors.length} problem(s)`))
  const message = { type: 'object', properties: { n: { type: 'integer' } } }
  const handler = (conn: any): void => {
    conn.onJson((msg: unknown) => conn.sendJson(msg))
  }
  app.get('/instance', { websocket: true, schema: { message } }, handler)
  app.get('/route', { websocket: true, schema: { message }, schemaErrorFormatter: (errors) => new Error(`route says ${errors[0].message}`) }, handler)
  const a = await injectClient(app, '/instance')
  const b = await injectClient(app, '/route')
  a.send({ n: 'x' })
  b.send({ n: 'x' })
  t.match(await a.json(), { message: 'message: 1 problem(s)', validation: [{ instancePath: '/n' }] })
  t.match(await b.json(), { message: 'route says must be integer' })
})

t.test('a schema that does not compile fails app.ready()', async (t) => {
  const app = await build(t)
  app.get('/bad', { websocket: true, schema: { message: { type: 'object', properties: { a: { $ref: 'missing#' } } } } }, () => {})
  await t.rejects(async () => { await app.ready() }, { message: /Failed building the message schema for GET: \/bad/ })
})

t.test('an outgoing schema that does not compile fails app.ready()', async (t) => {
  const app = await build(t)
  app.get('/bad', { websocket: true, schema: { outgoing: { $ref: 'missing#' } } }, () => {})
  await t.rejects(async () => { await app.ready() }, { message: /Failed building the outgoing schema for GET: \/bad/ })
})

t.test("without access to Fastify's schema controller, schemas compile on the route's first connection, once", async (t) => {
  setFastifyInternalsEnabled(false)
  t.teardown(() => setFastifyInternalsEnabled(true))
  const app = await build(t)
  app.addSchema({ $id: 'n', type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] })
  const compiled: string[] = []
  app.setValidatorCompiler(({ schema }) => {
    compiled.push('validator')
    return (data: any) => (schema as any).$ref === 'n#' && Number.isInteger(data?.n) ? { value: data } : { error: new Error('bad n') }
  })
  app.setSerializerCompiler(() => {
    compiled.push('serializer')
    return (data: any) => JSON.stringify({ n: data.n })
  })
  app.get('/lazy', { websocket: true, schema: { message: { $ref: 'n#' }, outgoing: { $ref: 'n#' } } }, (conn) => {
    conn.onJson((msg) => conn.sendJson(msg))
  })
  await app.ready()
  t.same(compiled, [], 'nothing compiled at startup')
  for (let i = 0; i < 3; i++) {
    const client = await injectClient(app, '/lazy')
    client.send({ n: i, x: 1 })
    t.same(await client.json(), { n: i })
    client.send({ n: 'x' })
    t.match(await client.json(), { message: 'bad n' })
  }
  t.same(compiled, ['validator', 'serializer'], 'compiled on the first connection only')
})

t.test('the default compilers need no internals when the route brings its own', async (t) => {
  setFastifyInternalsEnabled(false)
  t.teardown(() => setFastifyInternalsEnabled(true))
  const app = await build(t)
  const calls: Array<{ schema: unknown, httpPart?: string, url: string }> = []
  app.get('/own', { websocket: true, schema: { message: { required: ['k'] } }, validatorCompiler: countingCompiler(calls) }, () => {})
  await app.ready()
  t.equal(calls.length, 1, 'a route-level compiler still compiles at startup')
})

t.test('on the lazy path, a schema that does not compile refuses every upgrade with 500', async (t) => {
  setFastifyInternalsEnabled(false)
  t.teardown(() => setFastifyInternalsEnabled(true))
  const app = await build(t)
  let handled = 0
  app.get('/bad', { websocket: true, schema: { message: { $ref: 'missing#' } } }, () => { handled++ })
  app.get('/both', {
    websocket: true,
    schema: { message: { type: 'object', properties: { a: { $ref: 'missing#' } } }, outgoing: { $ref: 'missing#' } }
  }, (conn) => {
    handled++
    conn.onJson((msg) => conn.sendJson({ ...(msg as object), secret: 1 }))
  })
  await app.ready()
  // A failed compile must not leave the route open, unvalidated, to the next upgrades.
  for (let i = 0; i < 3; i++) {
    await t.rejects(app.injectWS('/bad'), { code: 'WS_ERR_UPGRADE_REFUSED', statusCode: 500 }, `/bad, upgrade ${i + 1}`)
    await t.rejects(app.injectWS('/both'), { code: 'WS_ERR_UPGRADE_REFUSED', statusCode: 500 }, `/both, upgrade ${i + 1}`)
  }
  t.equal(handled, 0, 'no handler ever ran')
})

t.test('on the lazy path, a failed outgoing schema is not retried into JSON.stringify', async (t) => {
  setFastifyInternalsEnabled(false)
  t.teardown(() => setFastifyInternalsEnabled(true))
  const app = await build(t)
  let serializerCalls = 0
  app.setSerializerCompiler(() => {
    serializerCalls++
    throw new Error('cannot serialize that')
  })
  app.get('/out', { websocket: true, schema: { outgoing: { type: 'object', properties: { a: { type: 'number' } } } } }, (conn) => {
    conn.sendJson({ a: 1, secret: 1 })
  })
  await app.ready()
  for (let i = 0; i < 3; i++) {
    await t.rejects(app.injectWS('/out'), { code: 'WS_ERR_UPGRADE_REFUSED', statusCode: 500 }, `upgrade ${i + 1}`)
  }
  t.equal(serializerCalls, 1, 'the failure is remembered, not recompiled per upgrade')
})
