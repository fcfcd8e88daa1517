import { execFile } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import http from 'node:http'
import type net from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { installUpgradeFilter, type UpgradeCandidate } from '../../lib/fastify/upgrade-filter.js'
import { build, listen } from '../helpers/app.js'
import { RawPeer, handshake, outcome, rawRequest, rawUpgrade } from '../helpers/raw-peer.js'
import { encodeFrame } from '../helpers/wire.cjs'

// Node hands any request with Upgrade + Connection: upgrade to the plugin with
// only its head parsed. Where Node has shouldUpgradeCallback (22.21, 24.9) the
// plugin sends all but WebSocket handshakes back to Node's parser; elsewhere
// (Node 20, where CI runs this suite) it reads their bodies itself. These tests
// hold on both paths; the fixture test at the end checks the callback path on
// Node 24 even when the suite runs on Node 20.

const NODE_PARSES_THEM = typeof (new http.Server() as { shouldUpgradeCallback?: unknown }).shouldUpgradeCallback === 'function'

/** The app the tests share, listening, with the routes `extra` adds. */
async function app (t: Test, extra?: (instance: FastifyInstance) => void): Promise<FastifyInstance> {
  const instance = await build(t)
  instance.post('/echo', async (req) => ({ got: req.body }))
  instance.post('/plain', async (req) => ({ got: req.body }))
  instance.get('/ws', { websocket: true }, () => {})
  extra?.(instance)
  await listen(instance)
  return instance
}

const upgradeHeaders = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'

// The head of the case 1, byte for byte.
const CHUNKED_H2C_HEAD = 'POST /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n' +
  'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'

/** The server side of every connection, by the client's port, to see it close. */
function serverSockets (instance: FastifyInstance): Map<number, net.Socket> {
  const sockets = new Map<number, net.Socket>()
  instance.server.on('connection', (socket: net.Socket) => { sockets.set(socket.remotePort!, socket) })
  return sockets
}

/**
 * Closes our side, waits until the server's side of the connection has closed
 * too (the moment the old body reader failed with no listener, ending the
 * process), then checks that another client is served.
 */
async function survives (t: Test, instance: FastifyInstance, sockets: Map<number, net.Socket>, peer: RawPeer): Promise<void> {
  const server = sockets.get(peer.socket.localPort!)
  t.ok(server, 'the server side of the connection is known')
  peer.destroy()
  if (server !== undefined && !server.closed) await once(server, 'close')
  const next = await rawRequest(instance, `POST /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"n":42}`)
  t.equal(next.status, 200, 'the next client is served')
  t.same(JSON.parse(next.body), { got: { n: 42 } })
  next.peer.destroy()
}


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

t.test('malformed chunked framing is refused, and the server keeps serving', async (t) => {
  const instance = await app(t)
  const request = `POST /echo HTTP/1.1\r\nHost: localhost\r\n${upgradeHeaders}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`
  if (NODE_PARSES_THEM) {
    // Node's parser: no 400 for a message it flags as an upgrade (see case 2 below).
    t.not(await outcome(instance, request), 200)
  } else {
    const response = await rawRequest(instance, request)
    t.equal(response.status, 400)
    t.match(JSON.parse(response.body), { message: /invalid character in chunk size/ })
  }
  const again = await instance.inject({ method: 'POST', url: '/echo', payload: { ok: true } })
  t.same(again.json(), { got: { ok: true } })
})

t.test('a WebSocket upgrade still gets its early frames, not a body reader', async (t) => {
  const instance = await build(t)
  instance.get('/echo', { websocket: true }, (conn) => {
    conn.on('message', (data: Buffer) => { conn.send(data) })
  })
  await listen(instance)
  const { peer } = await rawUpgrade(instance, '/echo', encodeFrame(0x1, 'early'))
  t.equal((await peer.frame()).payload.toString(), 'early')
})

t.test('a WebSocket handshake with a body is refused with 400, whichever parser saw it', async (t) => {
  const instance = await app(t)
  for (const [headers, body] of [
    [{ 'Content-Length': '5' }, 'hello'],
    [{ 'Transfer-Encoding': 'chunked' }, '5\r\nhello\r\n0\r\n\r\n']
  ] as const) {
    const response = await rawRequest(instance, handshake('/ws', headers) + body)
    t.equal(response.status, 400, `${Object.keys(headers)[0]}: 400, not 426 or 101`)
    t.match(JSON.parse(response.body), { message: /must not have a body/ })
    response.peer.destroy()
  }
  const { peer, response } = await rawUpgrade(instance, '/ws', undefined, { 'Content-Length': '0' })
  t.equal(response.status, 101, 'Content-Length: 0 is no body: 101')
  peer.destroy()
})

// Issue 8, case 1: Fastify stops reading at bodyLimit (1 MiB) and answers 413
// while the socket still brings body bytes. The reader used to fail later with
// no listener left ("the connection ended before the request body was complete").
t.test('case 1: a chunk larger than bodyLimit, never finished: 413, and the process lives', async (t) => {
  const instance = await app(t)
  const sockets = serverSockets(instance)
  const peer = await RawPeer.open(instance)
  peer.write(CHUNKED_H2C_HEAD + '100001\r\n')
  peer.write(Buffer.alloc(1_048_577, 0x61))
  const response = await peer.response()
  t.equal(response.status, 413)
  await survives(t, instance, sockets, peer)
})

t.test('case 1: a chunk size of 2^48-1, then 2 MB: 413, and the process lives', async (t) => {
  const instance = await app(t)
  const sockets = serverSockets(instance)
  const peer = await RawPeer.open(instance)
  peer.write(CHUNKED_H2C_HEAD + (2 ** 48 - 1).toString(16) + '\r\n')
  peer.write(Buffer.alloc(2_000_000, 0x61))
  const response = await peer.response()
  t.equal(response.status, 413)
  await survives(t, instance, sockets, peer)
})

t.test('case 1: a complete valid body of 32 chunks of 64 KiB: 413, and the process lives', async (t) => {
  const instance = await app(t)
  const sockets = serverSockets(instance)
  const peer = await RawPeer.open(instance)
  const chunk = Buffer.concat([Buffer.from('10000\r\n'), Buffer.alloc(65_536, 0x61), Buffer.from('\r\n')])
  // The same bytes as in one go; the rest follows the 413, so the server is
  // sure to stop reading before the body is complete.
  peer.write(CHUNKED_H2C_HEAD)
  for (let i = 0; i < 17; i++) peer.write(chunk)
  const response = await peer.response()
  t.equal(response.status, 413)
  for (let i = 17; i < 32; i++) peer.write(chunk)
  peer.write('0\r\n\r\n')
  await survives(t, instance, sockets, peer)
})

t.test('a body parser that stops reading early: the reader lets go, the process lives', async (t) => {
  const instance = await app(t, (instance) => {
    instance.addContentTypeParser('application/x-first-piece', (_req, payload, done) => {
      payload.once('data', () => { done(Object.assign(new Error('only the first piece was wanted'), { statusCode: 422 }), undefined) })
    })
    instance.post('/first-piece', async () => ({}))
  })
  const sockets = serverSockets(instance)
  const peer = await RawPeer.open(instance)
  peer.write(CHUNKED_H2C_HEAD.replace('/plain', '/first-piece').replace('application/json', 'application/x-first-piece') + '5\r\nhello\r\n')
  const response = await peer.response()
  t.equal(response.status, 422)
  await survives(t, instance, sockets, peer)
})

// Issue 8, case 2: each of these gets 400 from Node's parser without Upgrade.
// With Upgrade, on Node 20 the plugin's decoder must refuse them just the same
// (test/chunked-decoder.test.ts compares a whole corpus). Where Node parses them
// itself (shouldUpgradeCallback), Node treats them exactly as it does for an app
// without the plugin: llhttp still flags such a message as an upgrade, and Node
// drops parse errors of upgrade messages, so there is no 400, no handler call,
// and nothing after the error is parsed (no smuggling); the connection closes
// once the client ends its side.
t.test('case 2: chunked framing Node refuses is refused through the plugin', async (t) => {
  let handled = 0
  const count = (instance: FastifyInstance): void => {
    instance.addHook('preHandler', async () => { handled++ })
  }
  const instance = await app(t, count)
  const bare = Fastify()
  t.teardown(() => bare.close())
  bare.post('/plain', async (req) => ({ got: req.body }))
  count(bare)
  await listen(bare)
  const sockets = serverSockets(instance)
  const inputs: Array<[string, string]> = [
    ['space after the size', '7 \r\n{"a":1}\r\n0\r\n\r\n'],
    ['space before the size', ' 7\r\n{"a":1}\r\n0\r\n\r\n'],
    ['NBSP after the size', '7\xa0\r\n{"a":1}\r\n0\r\n\r\n'],
    ['bare LF after the size', '7\n{"a":1}\r\n0\r\n\r\n'],
    ['bare LF after the data', '7\r\n{"a":1}\n0\r\n\r\n'],
    ['bare LF ending the body', '7\r\n{"a":1}\r\n0\n\n'],
    ['bare CR inside a chunk extension', '7;a\rb\r\n{"a":1}\r\n0\r\n\r\n']
  ]
  for (const [name, body] of inputs) {
    const withPlugin = await outcome(instance, CHUNKED_H2C_HEAD + body)
    if (NODE_PARSES_THEM) t.equal(withPlugin, await outcome(bare, CHUNKED_H2C_HEAD + body), `${name}: as Node answers without the plugin`)
    else t.equal(withPlugin, 400, `${name}: 400`)
  }
  t.equal(handled, 0, 'no handler saw any of them')
  const peer = await RawPeer.open(instance)
  peer.write(CHUNKED_H2C_HEAD + '7 \r\n')
  if (!NODE_PARSES_THEM) t.match(JSON.parse((await peer.response()).body), { message: 'chunked body: invalid character in chunk size' }, 'the rule is named')
  await survives(t, instance, sockets, peer)
})

t.test('installUpgradeFilter, on any Node: what it answers, and what it leaves behind', async (t) => {
  const server = new EventEmitter() as EventEmitter & { shouldUpgradeCallback?: (req: UpgradeCandidate) => boolean }
  t.equal(installUpgradeFilter(server, () => {})(), undefined, 'without shouldUpgradeCallback (Node 20) it does nothing')
  t.equal(server.shouldUpgradeCallback, undefined)

  const previous = function (this: EventEmitter): boolean { return this.listenerCount('upgrade') > 0 }
  server.shouldUpgradeCallback = previous
  const ours = (): void => {}
  server.on('upgrade', ours)
  const remove = installUpgradeFilter(server, ours)
  const ask = (method: string, headers: UpgradeCandidate['headers']): boolean => server.shouldUpgradeCallback!.call(server, { method, headers })
  const ws = { connection: 'Upgrade', upgrade: 'websocket' }
  t.ok(ask('GET', ws), 'a WebSocket handshake upgrades')
  t.ok(ask('GET', { ...ws, 'content-length': '0' }), 'Content-Length: 0 is no body')
  t.notOk(ask('GET', { ...ws, 'content-length': '1' }), 'with a body, Node parses it')
  t.notOk(ask('GET', { ...ws, 'transfer-encoding': 'chunked' }), 'with chunked framing, Node parses it')
  t.ok(ask('POST', ws), 'another method without a body: the handshake answers it (405)')
  t.notOk(ask('GET', { connection: 'Upgrade', upgrade: 'h2c' }), 'another protocol, Node parses it')
  const other = (): void => {}
  server.on('upgrade', other)
  t.ok(ask('POST', { connection: 'Upgrade', upgrade: 'h2c', 'content-length': '3' }), 'with an app listener, the previous callback decides')
  server.removeListener('upgrade', other)

  const wrapped = server.shouldUpgradeCallback!
  server.shouldUpgradeCallback = (req) => wrapped.call(server, req)
  remove()
  t.not(server.shouldUpgradeCallback, previous, 'wrapped by someone since: their callback stays')
  t.ok(ask('POST', { connection: 'Upgrade', upgrade: 'h2c' }), 'and ours only passes through to the previous one')
  server.shouldUpgradeCallback = wrapped
  const removeAgain = installUpgradeFilter(server, ours)
  removeAgain()
  t.equal(server.shouldUpgradeCallback, wrapped, 'not wrapped: the previous callback is put back')
})

// The callback path, on a Node that has it: Node 24 through npx when this suite
// runs on an older Node (CI's Node 20), else the running Node.
t.test('Node 24: non-WebSocket upgrades are parsed by Node, WebSocket handshakes still upgrade', async (t) => {
  const root = join(__dirname, '../..')
  const fixture = join(root, 'test/fixtures/upgrade-filter-check.ts')
  const [command, args] = NODE_PARSES_THEM
    ? [process.execPath, ['--import=tsx', fixture]]
    : ['npx', ['-y', 'node@24', '--import=tsx', fixture]]
  const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
    execFile(command, args, { cwd: root, timeout: 110_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error !== null) reject(Object.assign(error, { stderr }))
      else resolve({ stdout })
    })
  })
  const result = JSON.parse(stdout.trim().split('\n').pop()!)
  t.ok(result.hasCallback, `${result.node} has shouldUpgradeCallback`)
  if (!NODE_PARSES_THEM) t.match(result.node, /^v24\./, 'ran on Node 24')
  t.same(result.keepAlive, [200, 200], 'an h2c POST with a body, then another on the same connection: both parsed by Node')
  t.same(result.bodies, [{ got: { a: 1 } }, { got: { b: 2 } }], 'the bodies were received')
  t.equal(result.chunked, 200, 'a chunked h2c POST is parsed by Node')
  t.same(result.case1, [413, 413, 413], 'case 1 requests get Fastify\'s 413 through Node\'s parser')
  t.same(result.case2.plugin, result.case2.bare, 'case 2 framing: the same outcome as without the plugin')
  t.notOk(result.case2.plugin.includes(200), 'case 2 framing is never accepted')
  t.equal(result.served, 200, 'another client is served afterwards')
  t.equal(result.websocket, 'echo: hi', 'a real WebSocket handshake still upgrades')
  t.same(result.handshakeWithBody, { status: 400, message: 'the opening handshake must not have a body (Content-Length above 0 or Transfer-Encoding)' })
  t.same(result.withOtherListener, { h2c: true, websocket: true }, 'with an app upgrade listener, its requests still reach upgrade')
  t.ok(result.restored, 'app.close() puts the previous callback back')
})
