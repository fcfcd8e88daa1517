import t from 'tap'
import Fastify from 'fastify'
import websocket, { CloseCode, InvalidMessageError, type InvalidMessagePolicy, type BinaryMessagePolicy } from '../../lib/index.js'
import { LogCapture, build, injectClient, type InjectedClient } from '../helpers/app.js'

const Message = {
  type: 'object',
  properties: { n: { type: 'integer' } },
  required: ['n'],
  additionalProperties: false
} as const

async function echoApp (t: Tap, settings: { onInvalidMessage?: InvalidMessagePolicy, onBinaryMessage?: BinaryMessagePolicy }, plugin: object = {}) {
  const logs = new LogCapture()
  const app = await build(t, plugin, { logger: { level: 'debug', stream: logs } })
  app.get('/ws', { websocket: settings, schema: { message: Message } }, (conn) => {
    conn.onJson((msg: any) => conn.sendJson({ echo: msg.n }))
  })
  return { app, logs, client: await injectClient(app, '/ws') }
}
type Tap = Parameters<typeof build>[0]

/** Proves nothing else was sent: the next message is the echo of a valid one. */
async function nothingElse (t: { same (...args: any[]): boolean }, client: InjectedClient): Promise<void> {
  client.send({ n: 7 })
  t.same(await client.json(), { echo: 7 }, 'the connection is open and nothing else was sent')
}

t.test("default policy 'reply': an error message in Fastify's shape, the connection stays open", async (t) => {
  const { client, logs } = await echoApp(t, {})

  client.send('{"n": 1,')
  const unparsable = await client.json()
  t.match(unparsable, { statusCode: 400, code: 'FST_ERR_WS_INVALID_JSON', error: 'Bad Request', message: String })
  t.notOk('validation' in unparsable)

  client.send({ n: 'one' })
  t.same(await client.json(), {
    statusCode: 400,
    code: 'FST_ERR_VALIDATION',
    error: 'Bad Request',
    message: 'message/n must be integer',
    validation: [{ instancePath: '/n', keyword: 'type', message: 'must be integer', params: { type: 'integer' } }]
  })

  client.send({})
  t.match(await client.json(), {
    code: 'FST_ERR_VALIDATION',
    message: "message must have required property 'n'",
    validation: [{ instancePath: '', keyword: 'required', params: { missingProperty: 'n' } }]
  })
  await nothingElse(t, client)

  const rejected = logs.lines.filter((e) => e.msg === 'websocket message rejected')
  t.equal(rejected.length, 3, 'each rejection is logged')
  t.ok(rejected.every((e) => e.level === 20), 'at debug level')
  t.ok(rejected.every((e) => typeof e.reqId === 'string'), "with the request's logger")
  t.same(rejected.map((e) => e.err.code), ['FST_ERR_WS_INVALID_JSON', 'FST_ERR_VALIDATION', 'FST_ERR_VALIDATION'])
})

t.test("'close': 1007 for unparsable JSON", async (t) => {
  const { client, logs } = await echoApp(t, { onInvalidMessage: 'close' })
  client.send({ n: 1 })
  t.same(await client.json(), { echo: 1 })
  client.send('nope')
  client.send({ n: 2 }) // sent after the invalid one: never handled
  t.same(await client.closed, { code: CloseCode.InvalidPayload, reason: 'invalid JSON' })
  t.equal(client.unread, 0, 'no reply to the message after the invalid one')
  const entry = logs.lines.find((e) => e.msg === 'websocket message rejected; closing the connection')
  t.equal(entry?.level, 30, 'logged at info level')
  t.equal(entry?.closeCode, 1007)
})

t.test("'close': 1008 for a schema violation", async (t) => {
  const { client } = await echoApp(t, { onInvalidMessage: 'close' })
  client.send({ n: 1, extra: true })
  t.same(await client.json(), { echo: 1 }, "Fastify's default Ajv options apply: additional properties are removed")
  client.send({ n: 1.5 })
  t.same(await client.closed, { code: CloseCode.PolicyViolation, reason: 'invalid message' })
})

t.test("'ignore': invalid messages are dropped silently", async (t) => {
  const { client, logs } = await echoApp(t, { onInvalidMessage: 'ignore' })
  client.send('{{')
  client.send({ n: 0.5 })
  await nothingElse(t, client)
  t.equal(logs.lines.filter((e) => e.msg === 'websocket message rejected').length, 2, 'still logged at debug')
})

t.test('a function decides', async (t) => {
  const seen: Array<{ code: string, closeCode: number, statusCode: number }> = []
  const { client } = await echoApp(t, {
    onInvalidMessage (error, conn) {
      t.ok(error instanceof InvalidMessageError)
      seen.push({ code: error.code, closeCode: error.closeCode, statusCode: error.statusCode })
      conn.sendJson({ oops: error.message })
      if (seen.length === 2) conn.close(4001, 'enough')
    }
  })
  client.send('[1,')
  t.match(await client.json(), { oops: String })
  client.send({ n: [] })
  t.same(await client.json(), { oops: 'message/n must be integer' })
  t.same(await client.closed, { code: 4001, reason: 'enough' })
  t.same(seen, [
    { code: 'FST_ERR_WS_INVALID_JSON', closeCode: 1007, statusCode: 400 },
    { code: 'FST_ERR_VALIDATION', closeCode: 1008, statusCode: 400 }
  ])
})

t.test('a policy function that throws fails the connection like a handler (1011)', async (t) => {
  const { client } = await echoApp(t, {
    onInvalidMessage () {
      throw new Error('policy broke')
    }
  })
  client.send('x')
  t.equal((await client.closed).code, CloseCode.InternalError)
})

t.test("binary messages: default 'close' with 1003", async (t) => {
  const { client, logs } = await echoApp(t, {})
  client.send({ n: 1 })
  t.same(await client.json(), { echo: 1 })
  client.conn.send(Buffer.from('{"n":2}'))
  t.same(await client.closed, { code: CloseCode.UnsupportedData, reason: 'binary messages are not accepted' })
  t.equal(logs.lines.find((e) => e.msg.startsWith('websocket binary message'))?.level, 30, 'logged at info level')
})

t.test("binary messages: 'ignore'", async (t) => {
  const { client } = await echoApp(t, { onBinaryMessage: 'ignore' })
  client.conn.send(Buffer.from('{"n":2}'))
  await nothingElse(t, client)
})

t.test("binary messages: 'json' decodes them as UTF-8 JSON", async (t) => {
  const { client } = await echoApp(t, { onBinaryMessage: 'json' })
  client.conn.send(Buffer.from('{"n":2}'))
  t.same(await client.json(), { echo: 2 })
  client.conn.send(Buffer.from([0x7b, 0xff, 0x7d]))
  t.match(await client.json(), { code: 'FST_ERR_WS_INVALID_JSON', message: 'the binary message is not valid UTF-8' })
  client.conn.send(Buffer.from('{"n":"x"}'))
  t.match(await client.json(), { code: 'FST_ERR_VALIDATION' })
})

t.test("binary messages: 'error' goes through the invalid-message policy", async (t) => {
  const { client } = await echoApp(t, { onBinaryMessage: 'error' })
  client.conn.send(Buffer.from('{"n":2}'))
  t.same(await client.json(), {
    statusCode: 415,
    code: 'FST_ERR_WS_BINARY_MESSAGE',
    error: 'Unsupported Media Type',
    message: 'binary messages are not accepted on this route'
  })
  await nothingElse(t, client)
})

t.test("binary messages: 'error' with 'close' closes with 1003", async (t) => {
  const { client } = await echoApp(t, { onBinaryMessage: 'error', onInvalidMessage: 'close' })
  client.conn.send(Buffer.from('{"n":2}'))
  t.same(await client.closed, { code: CloseCode.UnsupportedData, reason: 'binary messages are not accepted' })
})

t.test('plugin-level policies apply to every route; route settings override them', async (t) => {
  const app = await build(t, { onInvalidMessage: 'close', onBinaryMessage: 'json' })
  t.equal(app.websocket.settings.onInvalidMessage, 'close')
  t.equal(app.websocket.settings.onBinaryMessage, 'json')
  const handler = (conn: any): void => {
    conn.onJson((msg: any) => conn.sendJson(msg))
  }
  app.get('/inherits', { websocket: true, schema: { message: Message } }, handler)
  app.get('/overrides', { websocket: { onInvalidMessage: 'reply' }, schema: { message: Message } }, handler)

  const a = await injectClient(app, '/inherits')
  a.conn.send(Buffer.from('{"n":1}'))
  t.same(await a.json(), { n: 1 }, "binary 'json' inherited")
  a.send({ n: 'x' })
  t.equal((await a.closed).code, 1008)

  const b = await injectClient(app, '/overrides')
  b.send({ n: 'x' })
  t.match(await b.json(), { code: 'FST_ERR_VALIDATION' })
  b.conn.send(Buffer.from('{"n":3}'))
  t.same(await b.json(), { n: 3 }, "binary 'json' still inherited")
})

t.test('unknown policies fail at registration', async (t) => {
  const app = await build(t)
  t.throws(() => app.get('/a', { websocket: { onInvalidMessage: 'explode' as any } }, () => {}),
    { code: 'WS_ERR_INVALID_OPTION', message: /^WebSocket route GET \/a: onInvalidMessage must be 'reply', 'close', 'ignore' or a function/ })
  t.throws(() => app.get('/b', { websocket: { onBinaryMessage: 'base64' as any } }, () => {}),
    { code: 'WS_ERR_INVALID_OPTION', message: /^WebSocket route GET \/b: onBinaryMessage must be 'close', 'error', 'ignore' or 'json'/ })
})

t.test('unknown plugin-level policies fail at register, with no route declared', async (t) => {
  await t.rejects(async () => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(websocket, { onInvalidMessage: 'x' as any })
  }, { code: 'WS_ERR_INVALID_OPTION', message: /^fastify-rfc6455: onInvalidMessage must be 'reply', 'close', 'ignore' or a function, got "x"$/ })
  await t.rejects(async () => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(websocket, { onBinaryMessage: 'text' as any })
  }, { code: 'WS_ERR_INVALID_OPTION', message: /^fastify-rfc6455: onBinaryMessage must be 'close', 'error', 'ignore' or 'json', got "text"$/ })
})

t.test('the policies apply to messages() too', async (t) => {
  const app = await build(t)
  app.get('/iter', { websocket: { onInvalidMessage: 'close' }, schema: { message: Message } }, async (conn) => {
    for await (const msg of conn.messages()) conn.sendJson(msg)
  })
  const client = await injectClient(app, '/iter')
  client.send({ n: 1 })
  t.same(await client.json(), { n: 1 })
  client.send({ n: '1x' })
  t.equal((await client.closed).code, 1008)
})

t.test("messages(): a binary message closes with 1003 under the default 'close', and ends the loop", async (t) => {
  const app = await build(t)
  let ended!: () => void
  const loopEnded = new Promise<void>((resolve) => { ended = resolve })
  const seen: unknown[] = []
  app.get('/iter', { websocket: true, schema: { message: Message } }, async (conn) => {
    for await (const msg of conn.messages()) {
      seen.push(msg)
      conn.sendJson(msg)
    }
    ended()
  })
  const client = await injectClient(app, '/iter')
  client.send({ n: 1 })
  t.same(await client.json(), { n: 1 })
  client.conn.send(Buffer.from('{"n":2}'))
  client.send({ n: 3 }) // after the binary one: never yielded
  t.same(await client.closed, { code: CloseCode.UnsupportedData, reason: 'binary messages are not accepted' })
  await loopEnded
  t.same(seen, [{ n: 1 }], 'neither the binary message nor the one after it reached the loop')
})
