// Once an HTTP/1.1 upgrade is accepted, request.raw is an UpgradedRequest
// (lib/fastify/upgraded-request.ts): what handlers read through the request
// still works, and the IncomingMessage is not kept by the connection.

import { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'
import t from 'tap'
import { kSocket } from '../../lib/fastify/upgrade-request.js'
import { sharedStringCount } from '../../lib/fastify/shared-strings.js'
import { UpgradedRequest } from '../../lib/fastify/upgraded-request.js'
import { build, connect, gate, inboxOf, listen } from '../helpers/app.js'
import { collect } from '../helpers/gc.js'

/** What a handler reads from its request, read in the handler and again from conn.request later. */
function readRequest (req: FastifyRequest): Record<string, unknown> {
  return {
    url: req.url,
    method: req.method,
    params: req.params,
    query: req.query,
    id: req.id,
    ip: req.ip,
    hostname: req.hostname,
    protocol: req.protocol,
    header: req.headers['x-test'],
    rawHeader: req.raw.rawHeaders.includes('X-Test'),
    config: (req.routeOptions.config as { name?: string }).name,
    routeUrl: req.routeOptions.url,
    logs: typeof req.log.info === 'function',
    extra: (req.raw as unknown as { extra?: string }).extra,
    httpVersion: [req.raw.httpVersion, req.raw.httpVersionMajor, req.raw.httpVersionMinor],
    complete: req.raw.complete,
    upgrade: (req.raw as unknown as { upgrade: boolean }).upgrade
  }
}

t.test('the handler and conn.request read the same request through the UpgradedRequest; the IncomingMessage is collected', async (t) => {
  const app = await build(t)
  let incoming: WeakRef<IncomingMessage> | undefined
  app.addHook('onRequest', async (req) => {
    incoming = new WeakRef(req.raw)
    // A field a hook puts on the raw request is carried over.
    ;(req.raw as unknown as { extra: string }).extra = 'from a hook'
  })
  const seen = gate<{ inHandler: Record<string, unknown>, raw: unknown, conn: { request: FastifyRequest } }>()
  app.get('/rooms/:room', { websocket: true, config: { name: 'rooms' } }, (conn, req) => {
    conn.on('message', (data) => conn.send(data))
    seen.resolve({ inHandler: readRequest(req), raw: req.raw, conn })
  })
  await listen(app)
  const ws = await connect(app, '/rooms/blue?since=5', undefined, { headers: { 'X-Test': 'yes' } })
  const { inHandler, raw, conn } = await seen.promise

  t.ok(raw instanceof UpgradedRequest, 'request.raw is the UpgradedRequest in the handler')
  t.notOk(raw instanceof IncomingMessage)
  t.equal((raw as Record<symbol, unknown>)[kSocket], undefined, "the plugin's bookkeeping is not carried")
  t.match(inHandler, {
    url: '/rooms/blue?since=5',
    method: 'GET',
    params: { room: 'blue' },
    query: { since: '5' },
    ip: '127.0.0.1',
    hostname: '127.0.0.1',
    protocol: 'http',
    header: 'yes',
    rawHeader: true,
    config: 'rooms',
    routeUrl: '/rooms/:room',
    logs: true,
    extra: 'from a hook',
    httpVersion: ['1.1', 1, 1],
    complete: true,
    upgrade: true
  })
  t.type(inHandler.id, 'string')

  ws.send('still works')
  t.equal((await inboxOf(ws).next()).data.toString(), 'still works')
  await collect()
  t.equal(incoming!.deref(), undefined, 'the IncomingMessage was collected while the connection is open')
  t.same(readRequest(conn.request), inHandler, 'conn.request, with the default retainRequest, reads the same later')
})

t.test("Fastify's request.signal works on conn.request and aborts when the connection closes", async (t) => {
  const app = await build(t)
  const seen = gate<AbortSignal>()
  app.get('/signal', { websocket: true }, (conn, req) => {
    seen.resolve(req.signal)
  })
  await listen(app)
  const ws = await connect(app, '/signal')
  const signal = await seen.promise
  t.equal(signal.aborted, false, 'not aborted while the connection is open')
  const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
  ws.close()
  await aborted
  t.equal(signal.aborted, true, 'aborted once the connection closed')
})

t.test('a second upgrade like the first adds nothing to the shared strings; a URL with a query is not held', async (t) => {
  const app = await build(t)
  const urls: string[] = []
  app.get('/same', { websocket: true }, (conn, req) => { urls.push(req.url) })
  await listen(app)
  const headers = { 'User-Agent': 'shared-strings test', Origin: 'http://127.0.0.1' }
  const before = sharedStringCount()
  await connect(app, '/same', undefined, { headers })
  const afterFirst = sharedStringCount()
  t.ok(afterFirst > before, "the first upgrade's strings were held")
  // A new Sec-WebSocket-Key (the client makes one per connection), the rest alike.
  await connect(app, '/same', undefined, { headers })
  t.equal(sharedStringCount(), afterFirst, 'names, repeated values, URL and version were held by the first')
  await connect(app, '/same?token=abc', undefined, { headers })
  t.equal(sharedStringCount(), afterFirst, 'the URL with a query is not held')
  t.same(urls, ['/same', '/same', '/same?token=abc'])
})
