import t from 'tap'
import type { FastifyReply, FastifyRequest } from 'fastify'
import WebSocket from 'ws'
import { build, clientClosed, connect, inboxOf, listen } from '../helpers/app.js'
import { handshake, rawRequest, rawUpgrade } from '../helpers/raw-peer.js'

t.test('instance and route hooks all run, in order, before the upgrade', async (t) => {
  const app = await build(t)
  const calls: string[] = []
  app.addHook('onRequest', async (req) => { calls.push(`onRequest:${req.ws}`) })
  app.addHook('preParsing', async () => { calls.push('preParsing') })
  app.addHook('preValidation', async () => { calls.push('preValidation') })
  app.addHook('preHandler', async () => { calls.push('preHandler') })
  app.get('/hooked', {
    websocket: true,
    onRequest: async () => { calls.push('route onRequest') },
    preParsing: async () => { calls.push('route preParsing') },
    preValidation: async () => { calls.push('route preValidation') },
    preHandler: async () => { calls.push('route preHandler') }
  }, (conn) => {
    calls.push('handler')
    conn.send(calls.join(','))
  })
  await listen(app)
  const ws = await connect(app, '/hooked')
  const expected = [
    'onRequest:true', 'route onRequest', 'preParsing', 'route preParsing', 'preValidation', 'route preValidation',
    'preHandler', 'route preHandler', 'handler'
  ]
  t.same((await inboxOf(ws).nextText()).split(','), expected, 'the handler ran after every hook; request.ws was set for the first one')
  ws.terminate()
})

t.test('callback-style hooks that call done() let the upgrade through', async (t) => {
  const app = await build(t)
  app.addHook('onRequest', (_req, _reply, done) => { done() })
  app.get('/cb', { websocket: true, preHandler: (_req, _reply, done) => { setImmediate(done) } }, (conn) => { conn.send('ok') })
  await listen(app)
  const ws = await connect(app, '/cb')
  t.equal(await inboxOf(ws).nextText(), 'ok')
  ws.terminate()
})

t.test('a hook that replies refuses the upgrade with exactly that response', async (t) => {
  for (const stage of ['onRequest', 'preParsing', 'preValidation', 'preHandler'] as const) {
    t.test(`${stage}, route level`, async (t) => {
      const app = await build(t)
      let handled = 0
      const refuse = async (_req: FastifyRequest, reply: FastifyReply): Promise<void> => {
        await reply.code(401).header('x-refused-by', stage).send({ error: 'unauthorized', stage })
      }
      app.get('/private', { websocket: true, [stage]: refuse }, () => { handled++ })
      await listen(app)
      const res = await rawRequest(app, handshake('/private'))
      t.equal(res.head.split('\r\n')[0], 'HTTP/1.1 401 Unauthorized', 'status line')
      t.equal(res.headers['x-refused-by'], stage, 'custom header')
      t.match(res.headers['content-type'], /^application\/json/)
      t.same(JSON.parse(res.body), { error: 'unauthorized', stage }, 'JSON body')
      t.notOk('upgrade' in res.headers, 'no Upgrade header')
      await res.peer.end()
      t.ok(res.peer.ended, 'the server ends the connection')
      t.equal(handled, 0, 'the handler did not run')
      t.equal(app.websocket.clients.size, 0)
    })
  }

  t.test('instance-level hook checking a token', async (t) => {
    const app = await build(t)
    app.addHook('onRequest', async (req, reply) => {
      if (req.headers.authorization !== 'Bearer good') {
        return await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'no token' })
      }
    })
    app.get('/private', { websocket: true }, (conn) => { conn.send('welcome') })
    await listen(app)

    const refused = await rawRequest(app, handshake('/private'))
    t.equal(refused.status, 401)
    t.equal(refused.headers['www-authenticate'], 'Bearer')
    t.same(JSON.parse(refused.body), { error: 'no token' })

    const ws = await connect(app, '/private', undefined, { headers: { authorization: 'Bearer good' } })
    t.equal(await inboxOf(ws).nextText(), 'welcome', 'accepted with the token')
    ws.terminate()

    const port = (app.server.address() as { port: number }).port
    const rejected = new WebSocket(`ws://127.0.0.1:${port}/private`)
    const [, response] = await new Promise<[unknown, { statusCode?: number }]>((resolve) => {
      rejected.once('unexpected-response', (req, res) => { resolve([req, res]) })
    })
    t.equal(response.statusCode, 401, 'a ws client sees 401 as an unexpected response')
    rejected.once('error', () => {}) // terminating a handshake in progress reports an abort
    rejected.terminate()
  })
})

t.test('a hook that throws goes through the error handler', async (t) => {
  t.test('the default error handler', async (t) => {
    const app = await build(t)
    app.get('/boom', {
      websocket: true,
      onRequest: async () => { throw new Error('hook failed') }
    }, () => { t.fail('the handler must not run') })
    app.get('/forbidden', {
      websocket: true,
      preHandler: async () => { throw Object.assign(new Error('not for you'), { statusCode: 403 }) }
    }, () => { t.fail('the handler must not run') })
    await listen(app)

    const boom = await rawRequest(app, handshake('/boom'))
    t.equal(boom.status, 500)
    t.match(JSON.parse(boom.body), { statusCode: 500, message: 'hook failed' })
    await boom.peer.end()

    const forbidden = await rawRequest(app, handshake('/forbidden'))
    t.equal(forbidden.status, 403, 'the error\'s statusCode is used')
    t.match(JSON.parse(forbidden.body), { statusCode: 403, message: 'not for you' })
  })

  t.test('a custom error handler', async (t) => {
    const app = await build(t)
    const seen: string[] = []
    app.setErrorHandler(async (error: Error, req, reply) => {
      seen.push(`${req.url}: ${error.message}`)
      return await reply.code(418).header('x-handled', 'yes').send({ handled: error.message })
    })
    app.get('/boom', {
      websocket: true,
      preValidation: async () => { throw new Error('validation hook failed') }
    }, () => { t.fail('the handler must not run') })
    await listen(app)
    const res = await rawRequest(app, handshake('/boom'))
    t.equal(res.status, 418)
    t.equal(res.headers['x-handled'], 'yes')
    t.same(JSON.parse(res.body), { handled: 'validation hook failed' })
    t.same(seen, ['/boom: validation hook failed'])
  })

  t.test('a route-level errorHandler', async (t) => {
    const app = await build(t)
    app.get('/boom', {
      websocket: true,
      errorHandler: async (error, _req, reply) => await reply.code(409).send({ route: error.message }),
      onRequest: async () => { throw new Error('nope') }
    }, () => { t.fail('the handler must not run') })
    await listen(app)
    const res = await rawRequest(app, handshake('/boom'))
    t.equal(res.status, 409)
    t.same(JSON.parse(res.body), { route: 'nope' })
  })
})

t.test('the handshake is validated before user hooks', async (t) => {
  const app = await build(t)
  let onRequest = 0
  let preHandler = 0
  app.addHook('onRequest', async () => { onRequest++ })
  app.addHook('preHandler', async () => { preHandler++ })
  app.get('/ws', { websocket: true }, (conn) => { conn.close() })
  app.get('/plain', async () => 'plain')
  await listen(app)

  const malformed: Array<[string, Record<string, string | null>, number]> = [
    ['bad key', { 'Sec-WebSocket-Key': 'short' }, 400],
    ['no Connection: Upgrade', { Connection: 'keep-alive' }, 400],
    ['bad version', { 'Sec-WebSocket-Version': '12' }, 426],
    ['bad subprotocol list', { 'Sec-WebSocket-Protocol': 'a b' }, 400]
  ]
  for (const [name, headers, status] of malformed) {
    const res = await rawRequest(app, handshake('/ws', headers))
    t.equal(res.status, status, `${name}: ${status}`)
    res.peer.destroy()
  }
  t.equal(onRequest, 0, 'no user onRequest hook ran for a malformed handshake')
  t.equal(preHandler, 0, 'no user preHandler ran either')

  const ws = await connect(app, '/ws')
  await clientClosed(ws)
  t.equal(onRequest, 1, 'a valid handshake runs the hooks')
  t.equal(preHandler, 1)

  const plain = await app.inject('/plain')
  t.equal(plain.body, 'plain')
  t.equal(onRequest, 2, 'plain routes are unaffected')
})

t.test('headers set by hooks appear on the 101 response', async (t) => {
  const app = await build(t)
  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-instance', 'one')
  })
  app.get('/ws', {
    websocket: true,
    preHandler: async (_req, reply) => {
      reply.header('x-route', 'two')
      reply.header('set-cookie', ['a=1', 'b=2'])
      // The handshake's own headers are not the hooks' to change.
      reply.header('sec-websocket-accept', 'forged')
      reply.header('upgrade', 'h2c')
    }
  }, (conn) => { conn.send('hi') })
  await listen(app)
  const { peer, response } = await rawUpgrade(app, '/ws')
  t.equal(response.headers['x-instance'], 'one')
  t.equal(response.headers['x-route'], 'two')
  t.equal(response.head.match(/^set-cookie: /gim)?.length, 2, 'both cookies are sent')
  t.equal(response.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'the real accept value')
  t.equal(response.headers.upgrade, 'websocket')
  t.equal(response.head.match(/^upgrade: /gim)?.length, 1, 'a single Upgrade header')
  t.equal((await peer.frame()).payload.toString(), 'hi')
  peer.destroy()
})

t.test('hooks of an encapsulated context only apply to its routes', async (t) => {
  const app = await build(t)
  await app.register(async (child) => {
    child.addHook('onRequest', async (_req, reply) => {
      await reply.code(403).send({ inside: true })
    })
    child.get('/inside', { websocket: true }, (conn) => { conn.send('never') })
  })
  app.get('/outside', { websocket: true }, (conn) => { conn.send('outside') })
  await listen(app)
  const inside = await rawRequest(app, handshake('/inside'))
  t.equal(inside.status, 403)
  const ws = await connect(app, '/outside')
  t.equal(await inboxOf(ws).nextText(), 'outside')
  ws.terminate()
})
