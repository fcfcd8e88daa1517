import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { RawPeer, build, clientFrame, listen, rawRequest, rawUpgrade } from './helpers.js'

// Node hands any request with Upgrade + Connection: upgrade to the plugin with
// only its head parsed; one that a plain route answers must still get its body.

async function app (t: Test): Promise<FastifyInstance> {
  const instance = await build(t)
  instance.post('/echo', async (req) => ({ got: req.body }))
  instance.get('/ws', { websocket: true }, () => {})
  await listen(instance)
  return instance
}

const upgradeHeaders = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'

t.test('a Content-Length body on a plain route reached with Upgrade', async (t) => {
  const instance = await app(t)
  const body = JSON.stringify({ hello: 'world', n: 1 })
  const response = await rawRequest(instance, `POST /echo HTTP/1.1\r\nHost: localhost\r\n${upgradeHeaders}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  t.equal(response.status, 200)
  t.same(JSON.parse(response.body), { got: { hello: 'world', n: 1 } })
})

t.test('a body that arrives after the head, in pieces', async (t) => {
  const instance = await app(t)
  const body = JSON.stringify({ text: 'x'.repeat(100_000) })
  const peer = await RawPeer.open(instance)
  peer.write(`POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`)
  for (let i = 0; i < body.length; i += 7000) peer.write(body.slice(i, i + 7000))
  const response = await peer.response()
  t.equal(response.status, 200)
  t.equal(JSON.parse(response.body).got.text.length, 100_000)
})

t.test('a chunked body', async (t) => {
  const instance = await app(t)
  const chunked = '7\r\n{"a":12\r\n5;ext=1\r\n3,"b"\r\n4\r\n:[1]\r\n1\r\n}\r\n0\r\nX-Trailer: y\r\n\r\n'
  const response = await rawRequest(instance, `POST /echo HTTP/1.1\r\nHost: localhost\r\n${upgradeHeaders}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`)
  t.equal(response.status, 200)
  t.same(JSON.parse(response.body), { got: { a: 123, b: [1] } })
})

t.test('malformed chunked framing is a 400, and the server keeps serving', async (t) => {
  const instance = await app(t)
  const response = await rawRequest(instance, `POST /echo HTTP/1.1\r\nHost: localhost\r\n${upgradeHeaders}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`)
  t.equal(response.status, 400)
  t.match(JSON.parse(response.body), { message: /invalid chunk size/ })
  const again = await instance.inject({ method: 'POST', url: '/echo', payload: { ok: true } })
  t.same(again.json(), { got: { ok: true } })
})

t.test('a WebSocket upgrade still gets its early frames, not a body reader', async (t) => {
  const instance = await build(t)
  instance.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data: Buffer) => { conn.send(data) })
  })
  await listen(instance)
  const { peer } = await rawUpgrade(instance, '/echo', clientFrame(0x1, 'early'), { 'Content-Length': '5' })
  t.equal((await peer.frame()).payload.toString(), 'early')
})
