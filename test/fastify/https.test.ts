import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import websocket, { WebSocketUpgradeError } from '../../lib/index.js'
import { Inbox, closeEvent } from '../helpers/app.js'

// A self-signed certificate for localhost/127.0.0.1, made for these tests only.
const tls = {
  key: readFileSync(join(__dirname, '../fixtures/tls/key.pem')),
  cert: readFileSync(join(__dirname, '../fixtures/tls/cert.pem'))
}

t.test('WebSocket routes work on an HTTPS server: upgrade, hooks, echo', async (t) => {
  const app = Fastify({ https: tls })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.authorization !== 'Bearer ok') return reply.code(401).send({ error: 'unauthorized' })
  })
  app.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `wss://127.0.0.1:${(app.server.address() as { port: number }).port}/echo`

  const refused = new WebSocket(url, { rejectUnauthorized: false })
  const [, response] = await once(refused, 'unexpected-response')
  t.equal(response.statusCode, 401, 'a hook refuses over TLS with its own status')
  // Aborting a refused handshake makes the client report it as an error: expected here.
  refused.on('error', () => {})
  refused.terminate()

  const client = new WebSocket(url, { rejectUnauthorized: false, headers: { authorization: 'Bearer ok' } })
  await once(client, 'open')
  client.send('over tls')
  const [data, isBinary] = await once(client, 'message')
  t.equal(data.toString(), 'over tls')
  t.equal(isBinary, false)
  client.close(1000)
  const [code] = await once(client, 'close')
  t.equal(code, 1000)
})

t.test('injectWS works on an HTTPS app without listening', async (t) => {
  const app = Fastify({ https: tls })
  t.teardown(() => app.close())
  await app.register(websocket)
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.authorization !== 'Bearer ok') return reply.code(401).send({ error: 'unauthorized' })
  })
  app.get('/echo', { websocket: true }, (conn, req) => {
    conn.send(JSON.stringify({ protocol: req.protocol }))
    conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
  })

  const refused = await app.injectWS('/echo').then(
    (conn) => { conn.terminate(); return null },
    (err: unknown) => err
  )
  t.ok(refused instanceof WebSocketUpgradeError, 'a hook refusal rejects with WebSocketUpgradeError')
  t.match(refused, { statusCode: 401, json: { error: 'unauthorized' } })

  const client = await app.injectWS('/echo', { headers: { authorization: 'Bearer ok' } })
  const inbox = new Inbox(client)
  t.same(JSON.parse((await inbox.next()).data.toString()), { protocol: 'https' }, 'the request reports https')
  client.send('over a pipe')
  t.same(await inbox.next(), { data: Buffer.from('over a pipe'), isBinary: false })
  client.send(Buffer.from([7, 8]))
  t.same(await inbox.next(), { data: Buffer.from([7, 8]), isBinary: true })
  client.close(1000)
  t.same(await closeEvent(client), [1000, ''])
  t.equal(app.server.listening, false, 'the app never listened')
})
