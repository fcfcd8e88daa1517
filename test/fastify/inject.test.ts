import { Readable } from 'node:stream'
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { WebSocketConnection, WebSocketUpgradeError } from '../../lib/index.js'
import { Inbox, Queue, build, closeEvent } from '../helpers/app.js'
import { activeTimers } from '../helpers/time.js'

type ServerConn = WebSocketConnection<FastifyRequest>

/** The error an injectWS call that must be refused rejects with. */
async function refusal (attempt: Promise<unknown>): Promise<WebSocketUpgradeError> {
  const outcome = await attempt.then((conn) => conn, (err: unknown) => err)
  if (outcome instanceof WebSocketUpgradeError) return outcome
  if (outcome instanceof WebSocketConnection) outcome.terminate()
  throw new Error(`expected a WebSocketUpgradeError, got ${String(outcome)}`)
}

t.test('injectWS connects without listening and messages flow both ways', async (t) => {
  const app = await build(t)
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data: Buffer, isBinary: boolean) => { conn.send(data, { binary: isBinary }) })
  })
  const client = await app.injectWS('/echo')
  t.ok(client instanceof WebSocketConnection)
  t.equal(client.readyState, WebSocketConnection.OPEN)
  t.equal(app.server.listening, false, 'the app never listened')
  const inbox = new Inbox(client)
  client.send('hello')
  t.same(await inbox.next(), { data: Buffer.from('hello'), isBinary: false })
  client.send(Buffer.from([1, 2, 3]))
  t.same(await inbox.next(), { data: Buffer.from([1, 2, 3]), isBinary: true })
  const big = Buffer.alloc(200_000, 9)
  client.send(big)
  t.ok((await inbox.next()).data.equals(big), 'a large message')
  client.terminate()
})

t.test('a message sent by the handler right away is not lost', async (t) => {
  const app = await build(t)
  app.get('/hello', { websocket: true }, (conn) => { conn.send('welcome') })
  const client = await app.injectWS('/hello')
  t.equal((await new Inbox(client).next()).data.toString(), 'welcome')
  client.terminate()
})

t.test('the handler sees the request; hooks see the headers passed in options', async (t) => {
  const app = await build(t)
  const seen: Array<string | undefined> = []
  app.addHook('onRequest', async (req) => {
    seen.push(req.headers['x-user'] as string | undefined)
  })
  app.get<{ Querystring: { room: string } }>('/who', { websocket: true }, (conn, req) => {
    conn.send(JSON.stringify({ user: req.headers['x-user'], room: req.query.room, ws: req.ws, host: req.headers.host }))
  })
  const client = await app.injectWS('/who?room=blue', { headers: { 'x-user': 'ann' } })
  t.same(JSON.parse((await new Inbox(client).next()).data.toString()), { user: 'ann', room: 'blue', ws: true, host: 'localhost' })
  t.same(seen, ['ann'], 'the onRequest hook saw the header')
  client.terminate()

  const hosted = await app.injectWS('/who?room=red', { host: 'chat.example' })
  t.match(JSON.parse((await new Inbox(hosted).next()).data.toString()), { host: 'chat.example' }, 'host option')
  hosted.terminate()
})

t.test('on a plain HTTP app the injected request is not taken for TLS', async (t) => {
  // test/https.test.ts checks the other side: 'https' on an HTTPS app.
  const app = await build(t)
  app.get('/proto', { websocket: true }, (conn, req) => {
    conn.send(JSON.stringify({ protocol: req.protocol, encrypted: (req.socket as { encrypted?: boolean }).encrypted ?? false }))
  })
  const client = await app.injectWS('/proto')
  t.same(JSON.parse((await new Inbox(client).next()).data.toString()), { protocol: 'http', encrypted: false })
  client.terminate()
})

t.test('a refused upgrade rejects with WebSocketUpgradeError', async (t) => {
  const app = await build(t)
  app.get('/private', {
    websocket: true,
    onRequest: async (req, reply) => {
      if (req.headers.authorization !== 'secret') {
        await reply.code(401).header('x-reason', 'no secret').send({ error: 'unauthorized' })
      }
    }
  }, (conn) => { conn.send('in') })

  t.test('401 from a hook', async (t) => {
    const err = await app.injectWS('/private').then(() => null, (e: unknown) => e)
    t.ok(err instanceof WebSocketUpgradeError, 'a WebSocketUpgradeError')
    const e = err as WebSocketUpgradeError
    t.equal(e.code, 'WS_ERR_UPGRADE_REFUSED')
    t.equal(e.message, 'Unexpected server response: 401', 'the message ws and @fastify/websocket reject with')
    t.equal(e.name, 'Error', 'and the name, so `rejects(p, new Error(message))` written for them holds')
    t.equal(e.statusCode, 401)
    t.same(e.json, { error: 'unauthorized' }, 'the body, parsed')
    t.equal(e.body, '{"error":"unauthorized"}')
    t.equal(e.headers['x-reason'], 'no secret')
  })

  t.test('the same route accepts with the header', async (t) => {
    const client = await app.injectWS('/private', { headers: { authorization: 'secret' } })
    t.equal((await new Inbox(client).next()).data.toString(), 'in')
    client.terminate()
  })

  t.test('404 for an unknown path', async (t) => {
    t.match(await refusal(app.injectWS('/nowhere')), { code: 'WS_ERR_UPGRADE_REFUSED', statusCode: 404, json: { statusCode: 404 } })
  })

  t.test('404 from a custom not-found handler', async (t) => {
    const other = await build(t)
    other.setNotFoundHandler((_req, reply) => { reply.code(404).send({ missing: true }) })
    t.match(await refusal(other.injectWS('/nowhere')), { statusCode: 404, json: { missing: true } })
  })

  t.test('500 from a hook that throws', async (t) => {
    const other = await build(t)
    other.get('/boom', { websocket: true, preHandler: async () => { throw new Error('kaput') } }, () => {})
    t.match(await refusal(other.injectWS('/boom')), { statusCode: 500, json: { message: 'kaput' } })
  })

  t.test('400 from schema validation', async (t) => {
    const other = await build(t)
    other.get('/q', {
      websocket: true,
      schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } }
    }, () => {})
    t.match(await refusal(other.injectWS('/q?n=x')), { statusCode: 400 })
    const ok = await other.injectWS('/q?n=1')
    ok.terminate()
  })

  t.test('a plain route answers 200, which refuses the upgrade too', async (t) => {
    const other = await build(t)
    other.get('/plain', async () => ({ plain: true }))
    t.match(await refusal(other.injectWS('/plain')), { statusCode: 200, json: { plain: true } })
  })
})

t.test('subprotocols', async (t) => {
  const app = await build(t)
  app.get('/proto', { websocket: { protocols: ['v2', 'v1'] } }, (conn) => { conn.send(conn.protocol) })
  const client = await app.injectWS('/proto', { protocols: ['v1', 'v2'] })
  t.equal(client.protocol, 'v2', 'the client sees the selected protocol')
  t.equal((await new Inbox(client).next()).data.toString(), 'v2', 'and so does the server')
  client.terminate()

  const none = await app.injectWS('/proto', { protocols: ['v3'] })
  t.equal(none.protocol, '', 'none matched')
  none.terminate()

  const unoffered = await app.injectWS('/proto')
  t.equal(unoffered.protocol, '')
  unoffered.terminate()
})

t.test('close from the client', async (t) => {
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/c', { websocket: true }, (conn) => { conns.push(conn) })
  const client = await app.injectWS('/c')
  const server = await conns.next()
  const serverClosed = closeEvent(server)
  const clientClosed = closeEvent(client)
  client.close(4000, 'client done')
  t.equal(client.readyState, WebSocketConnection.CLOSING)
  t.same(await serverClosed, [4000, 'client done'], 'the server got code and reason')
  t.same(await clientClosed, [4000, ''], 'the client got the echo')
  t.equal(client.wasClean, true)
  t.equal(server.wasClean, true)
  t.equal(client.readyState, WebSocketConnection.CLOSED)
  t.equal(app.websocket.clients.size, 0)
})

t.test('close from the server', async (t) => {
  const before = activeTimers()
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/c', { websocket: true }, (conn) => { conns.push(conn) })
  const client = await app.injectWS('/c')
  const server = await conns.next()
  const serverClosed = closeEvent(server)
  const clientClosed = closeEvent(client)
  server.close(4001, 'server done')
  t.same(await clientClosed, [4001, 'server done'], 'the client got code and reason')
  t.same(await serverClosed, [4001, ''], 'the server got the echo: the code, without a reason')
  t.equal(activeTimers(), before, 'no close timer left on either side')
})

t.test('terminate on either side', async (t) => {
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/c', { websocket: true }, (conn) => { conns.push(conn) })

  const a = await app.injectWS('/c')
  const serverA = await conns.next()
  const serverAClosed = closeEvent(serverA)
  const aClosed = closeEvent(a)
  a.terminate()
  t.equal((await serverAClosed)[0], 1006, 'the server sees 1006 when the client terminates')
  t.equal((await aClosed)[0], 1006)

  const b = await app.injectWS('/c')
  const serverB = await conns.next()
  const bClosed = closeEvent(b)
  serverB.terminate()
  t.equal((await bClosed)[0], 1006, 'the client sees 1006 when the server terminates')
})

t.test('app.close() closes injected connections with 1001', async (t) => {
  const app = await build(t)
  app.get('/c', { websocket: true }, () => {})
  const clients = [await app.injectWS('/c'), await app.injectWS('/c')]
  const closed = clients.map((c) => closeEvent(c))
  await app.close()
  t.same(await Promise.all(closed), [[1001, 'server shutting down'], [1001, 'server shutting down']])
})

t.test('ping and pong through injectWS', async (t) => {
  const app = await build(t)
  const conns = new Queue<ServerConn>()
  app.get('/p', { websocket: true }, (conn) => { conns.push(conn) })
  const client = await app.injectWS('/p')
  const server = await conns.next()
  const pong = new Promise<Buffer>((resolve) => client.once('pong', resolve))
  const ping = new Promise<Buffer>((resolve) => server.once('ping', resolve))
  client.ping('beat')
  t.equal((await ping).toString(), 'beat')
  t.equal((await pong).toString(), 'beat')
  client.terminate()
})

t.test('a refusal sent with chunked transfer coding arrives decoded', async (t) => {
  const app = await build(t)
  app.get('/streamed', {
    websocket: true,
    onRequest: async (_req, reply) => {
      // A stream has no length: Node sends it chunked, one chunk per push.
      const body = Readable.from(['{"error":', '"go away",', '"n":', '1}'])
      return reply.code(403).type('application/json').send(body)
    }
  }, () => {})
  const e = await refusal(app.injectWS('/streamed'))
  t.equal(e.statusCode, 403)
  t.match(e.headers['transfer-encoding'], /chunked/)
  t.equal(e.body, '{"error":"go away","n":1}')
  t.same(e.json, { error: 'go away', n: 1 })
})

t.test('injectWS(path, context, { onInit, onOpen }): both run in order on the connection it resolves with', async (t) => {
  const app = await build(t)
  app.get('/hello', { websocket: true }, (conn) => { conn.send('welcome') })
  const calls: Array<[string, unknown, number]> = []
  let inbox: Inbox | undefined
  const client = await app.injectWS('/hello', {}, {
    onInit (conn) {
      calls.push(['init', conn, conn.readyState])
      // Listening from onInit, as code written for @fastify/websocket does: nothing is missed.
      inbox = new Inbox(conn)
    },
    onOpen (conn) { calls.push(['open', conn, conn.readyState]) }
  })
  t.same(calls.map(([name]) => name), ['init', 'open'], 'onInit, then onOpen, before the promise resolved')
  t.equal(calls[0][1], client, 'onInit got the connection injectWS resolves with')
  t.equal(calls[1][1], client, 'so did onOpen')
  t.equal(calls[1][2], WebSocketConnection.OPEN, 'open by onOpen')
  t.equal(await inbox!.nextText(), 'welcome', 'the message sent on open reached the listener added in onInit')
  client.terminate()
})

t.test('injectWS passes the context\'s headers, as @fastify/websocket\'s upgradeContext does', async (t) => {
  const app = await build(t)
  app.get('/key', { websocket: true }, (conn, req) => { conn.send(String(req.headers['api-key'])) })
  const client = await app.injectWS('/key', { headers: { 'api-key': 'some-random-key' } }, {})
  t.equal(await new Inbox(client).nextText(), 'some-random-key')
  client.terminate()
})

t.test('a throwing onInit rejects injectWS and drops the connection', async (t) => {
  const app = await build(t)
  const closed = new Queue<number>()
  app.get('/hello', { websocket: true }, (conn) => { conn.on('close', (code: number) => closed.push(code)) })
  const boom = new Error('boom')
  await t.rejects(app.injectWS('/hello', {}, { onInit () { throw boom } }), boom)
  t.equal(await closed.next(), 1006, 'the server saw the connection go')
})
