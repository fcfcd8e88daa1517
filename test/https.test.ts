import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import websocket from '../lib/index.js'

// A self-signed certificate for localhost/127.0.0.1, made for these tests only.
const tls = {
  key: readFileSync(join(__dirname, 'fixtures/tls/key.pem')),
  cert: readFileSync(join(__dirname, 'fixtures/tls/cert.pem'))
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
