// WebSocket over HTTP/2 (RFC 8441) with Chromium's own WebSocket: Debian's
// /usr/bin/chromium through playwright-core (nothing downloaded), a page
// served over HTTPS HTTP/2 by the Fastify app, and `new WebSocket('wss://…')`
// from it. The server records, for every WebSocket, how it came: an extended
// CONNECT on an HTTP/2 stream (`request.raw.httpVersion` '2.0', and which
// session) or an HTTP/1.1 upgrade.
//
// What Chromium does (checked with 156, with no flag: the binary has no
// feature switch for WebSockets over HTTP/2, only kEnableWebsocketsOverHttp3):
// it sends an extended CONNECT only on an HTTP/2 session it already has to
// that host and port (in the page's network partition, credentialed), whose
// server advertised SETTINGS_ENABLE_CONNECT_PROTOCOL. It never opens a
// connection for a WebSocket with h2 in its ALPN: with no such session it
// connects offering http/1.1 alone, so an `allowHTTP1: true` server gets an
// HTTP/1.1 upgrade and a server without HTTP/1.1 fails the handshake. A page
// of the same origin has its session from loading; a page of another origin
// has one once it made a credentialed request there (a fetch with
// `credentials: 'include'`; after a no-cors fetch without credentials, which
// also went over HTTP/2, the WebSocket still came as HTTP/1.1).
import type { Http2SecureServer, Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import t, { type Test } from 'tap'
import websocket from '../../lib/index.js'
import { selfSignedCert } from '../../scripts/self-signed-cert.cjs'
import { CHROMIUM_PATH } from './fixtures/chromium.js'

const MiB = 1024 * 1024
// Every call into the page is bounded: a stuck handshake fails its step, not the run.
const STEP_TIMEOUT = 20_000

/** What the server saw of one WebSocket. */
interface WsRecord {
  path: string
  name: string
  httpVersion: string
  /** The HTTP/2 session of its stream; undefined for an HTTP/1.1 upgrade. */
  session: object | undefined
  messages: Array<{ bytes: number, isBinary: boolean }>
  closed: Promise<{ code: number, reason: string }>
}

interface RequestRecord { httpVersion: string, session: object | undefined }

interface H2App {
  app: FastifyInstance<Http2SecureServer, Http2ServerRequest, Http2ServerResponse>
  port: number
  /** https://127.0.0.1:PORT */
  origin: string
  websockets: WsRecord[]
  /** Requests for the page, in order. */
  pages: RequestRecord[]
  /** Requests the 401 hook refused. */
  refused: RequestRecord[]
}

interface RawLike { httpVersion: string, stream?: { session?: object } }

// What the recorder uses of a connection (structural, like fixtures/server.ts's).
interface Recorded {
  on (event: string, listener: (...args: any[]) => void): unknown
}

function describeRaw (raw: unknown): RequestRecord {
  const r = raw as RawLike
  return { httpVersion: r.httpVersion, session: r.stream?.session }
}

// The page's helpers, as a string: it runs in the page, untouched by the
// TypeScript/CJS transform. window.h2 drives WebSockets by id.
const PAGE_SCRIPT = `
(() => {
  const sockets = new Map()
  let nextId = 0
  const payload = (kind, size, seed) => {
    if (kind === 'text') {
      const unit = 'héllo ✓ ' + seed + ' '
      return unit.repeat(Math.ceil(size / unit.length)).slice(0, size)
    }
    const bytes = new Uint8Array(size)
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff
    return bytes
  }
  const same = (a, b) => {
    if (typeof a === 'string' || typeof b === 'string') return a === b
    const x = new Uint8Array(a); const y = new Uint8Array(b)
    if (x.length !== y.length) return false
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
    return true
  }
  const next = (s) => s.inbox.length > 0 ? Promise.resolve(s.inbox.shift()) : new Promise((resolve, reject) => s.waiters.push({ resolve, reject }))
  window.h2 = {
    // Resolves once the WebSocket opened, or closed without opening.
    open (url) {
      const id = nextId++
      const ws = new WebSocket(url)
      ws.binaryType = 'arraybuffer'
      const s = { ws, events: [], inbox: [], waiters: [], close: null }
      sockets.set(id, s)
      s.closed = new Promise((resolve) => {
        ws.onclose = (e) => {
          s.events.push('close')
          s.close = { code: e.code, reason: e.reason, wasClean: e.wasClean }
          for (const w of s.waiters.splice(0)) w.reject(new Error('closed before a message: ' + e.code))
          resolve({ ...s.close, events: s.events })
        }
      })
      ws.onerror = () => s.events.push('error')
      ws.onmessage = (e) => {
        const w = s.waiters.shift()
        if (w !== undefined) w.resolve(e.data)
        else s.inbox.push(e.data)
      }
      return new Promise((resolve) => {
        ws.onopen = () => { s.events.push('open'); resolve({ id, opened: true, events: s.events.slice(), extensions: ws.extensions }) }
        s.closed.then((c) => resolve({ id, opened: false, events: c.events, close: { code: c.code, reason: c.reason, wasClean: c.wasClean } }))
      })
    },
    async next (id) {
      const data = await next(sockets.get(id))
      return typeof data === 'string' ? { type: 'text', text: data } : { type: 'binary', bytes: data.byteLength }
    },
    // Sends a message and compares the next one with it.
    async echo (id, kind, size, seed) {
      const s = sockets.get(id)
      const sent = payload(kind, size, seed)
      s.ws.send(sent)
      const got = await next(s)
      return { type: typeof got === 'string' ? 'text' : 'binary', length: typeof got === 'string' ? got.length : got.byteLength, same: same(sent, got) }
    },
    send (id, text) { sockets.get(id).ws.send(text) },
    close (id, code, reason) { sockets.get(id).ws.close(code, reason) },
    closed (id) { return sockets.get(id).closed }
  }
})()
`
const PAGE = `<!doctype html><meta charset="utf-8"><title>h2</title><script>${PAGE_SCRIPT}</script>`

async function startH2App (allowHTTP1: boolean): Promise<H2App> {
  const app = Fastify({ http2: true, https: { ...selfSignedCert(), allowHTTP1 }, logger: false })
  await app.register(websocket)
  const websockets: WsRecord[] = []
  const pages: RequestRecord[] = []
  const refused: RequestRecord[] = []

  const record = (path: string, conn: Recorded, request: { raw: unknown, query: unknown }): WsRecord => {
    const { httpVersion, session } = describeRaw(request.raw)
    const name = String((request.query as { name?: string }).name ?? '')
    let resolve!: (close: { code: number, reason: string }) => void
    const rec: WsRecord = { path, name, httpVersion, session, messages: [], closed: new Promise((res) => { resolve = res }) }
    conn.on('message', (data: Buffer, isBinary: boolean) => rec.messages.push({ bytes: data.length, isBinary }))
    conn.on('error', () => {})
    conn.on('close', (code: number, reason: string) => resolve({ code, reason }))
    websockets.push(rec)
    return rec
  }

  app.get('/', async (request, reply) => {
    pages.push(describeRaw(request.raw))
    return reply.type('text/html; charset=utf-8').send(PAGE)
  })
  // Greets with how it came, then echoes.
  app.get('/echo', { websocket: { maxMessageSize: 4 * MiB } }, (conn, request) => {
    const rec = record('/echo', conn, request)
    conn.send(JSON.stringify({ hello: rec.name, httpVersion: rec.httpVersion }))
    conn.on('message', (data: Buffer, isBinary: boolean) => conn.send(data, { binary: isBinary }))
  })
  // Closes when asked, with a code and a reason of its own.
  app.get('/closer', { websocket: true }, (conn, request) => {
    record('/closer', conn, request)
    conn.on('message', (data: Buffer) => {
      if (data.toString() === 'close please') conn.close(4001, 'closed by the server ✓')
    })
  })
  // permessage-deflate, negotiated in the extended CONNECT's headers and the 200's.
  app.get('/deflate', { websocket: { compression: true, maxMessageSize: 4 * MiB } }, (conn, request) => {
    record('/deflate', conn, request)
    conn.on('message', (data: Buffer, isBinary: boolean) => conn.send(data, { binary: isBinary }))
  })
  app.get('/guarded', {
    websocket: true,
    onRequest: async (request, reply) => {
      refused.push(describeRaw(request.raw))
      return reply.code(401).send({ error: 'unauthorized' })
    }
  }, (conn, request) => {
    record('/guarded', conn, request)
  })

  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = (app.server.address() as AddressInfo).port
  return { app, port, origin: `https://127.0.0.1:${port}`, websockets, pages, refused }
}

/** A plain HTTP app on another port: a page of another origin. */
async function startOtherOrigin (): Promise<{ app: FastifyInstance, page: string }> {
  const app = Fastify({ logger: false })
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, page: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/` }
}

function within<T> (promise: Promise<T>, what: string, ms = STEP_TIMEOUT): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

interface Opened { id: number, opened: boolean, events: string[], extensions?: string, close?: { code: number, reason: string, wasClean: boolean } }
interface PageMessage { type: 'text' | 'binary', text?: string, bytes?: number }
interface Echoed { type: 'text' | 'binary', length: number, same: boolean }
interface Closed { code: number, reason: string, wasClean: boolean, events: string[] }

/** Calls window.h2 in the page. */
class PageDriver {
  constructor (readonly page: Page) {}
  private call<T> (expression: string): Promise<T> {
    return within(this.page.evaluate(expression) as Promise<T>, expression.slice(0, 80))
  }

  open (url: string): Promise<Opened> { return this.call(`h2.open(${JSON.stringify(url)})`) }
  next (id: number): Promise<PageMessage> { return this.call(`h2.next(${id})`) }
  echo (id: number, kind: 'text' | 'binary', size: number, seed: number): Promise<Echoed> {
    return this.call(`h2.echo(${id}, ${JSON.stringify(kind)}, ${size}, ${seed})`)
  }

  send (id: number, text: string): Promise<void> { return this.call(`h2.send(${id}, ${JSON.stringify(text)})`) }
  close (id: number, code: number, reason: string): Promise<void> {
    return this.call(`h2.close(${id}, ${code}, ${JSON.stringify(reason)})`)
  }

  closed (id: number): Promise<Closed> { return this.call(`h2.closed(${id})`) }
  /** The greeting /echo sends first: which name and HTTP version the server saw. */
  async greeting (id: number): Promise<{ hello: string, httpVersion: string }> {
    const message = await this.next(id)
    if (message.type !== 'text') throw new Error('the greeting is text')
    return JSON.parse(message.text!)
  }

  /** A credentialed request to `origin`: Chromium opens (or reuses) its HTTP/2 session there. */
  fetchWithCredentials (origin: string): Promise<void> {
    return this.call(`fetch(${JSON.stringify(origin + '/')}, { mode: 'no-cors', credentials: 'include' }).then(() => undefined)`)
  }
}

async function newPage (t: Test, browser: Browser, url: string): Promise<{ context: BrowserContext, page: PageDriver, pageErrors: string[] }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  const response = await page.goto(url)
  t.equal(response?.status(), 200, `the page loaded: ${url}`)
  return { context, page: new PageDriver(page), pageErrors }
}

/**
 * The page is the server's own, loaded over HTTP/2: every WebSocket goes on
 * its session as an extended CONNECT.
 */
async function sameOrigin (t: Test, browser: Browser, allowHTTP1: boolean): Promise<void> {
  const server = await startH2App(allowHTTP1)
  let context: BrowserContext | undefined
  t.teardown(async () => {
    await context?.close()
    await server.app.close()
  })
  const opened = await newPage(t, browser, `${server.origin}/`)
  context = opened.context
  const { page, pageErrors } = opened
  const protocol = await page.page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol')
  t.equal(protocol, 'h2', 'the page came over HTTP/2')
  t.equal(server.pages.length, 1)
  const pageSession = server.pages[0]!.session
  t.equal(server.pages[0]!.httpVersion, '2.0', 'the server served the page over HTTP/2')
  t.ok(pageSession !== undefined, 'the page request has a session')
  const wss = `wss://127.0.0.1:${server.port}`

  // Messages both ways.
  const main = await page.open(`${wss}/echo?name=main`)
  t.same(main, { id: main.id, opened: true, events: ['open'], extensions: '' }, 'the WebSocket opened (no compression on this route)')
  t.same(await page.greeting(main.id), { hello: 'main', httpVersion: '2.0' }, 'the server greets first: it saw an extended CONNECT')
  t.same(await page.echo(main.id, 'text', 19, 1), { type: 'text', length: 19, same: true }, 'text, non-ASCII included')
  t.same(await page.echo(main.id, 'binary', 300, 2), { type: 'binary', length: 300, same: true }, 'binary')
  t.same(await page.echo(main.id, 'binary', MiB, 3), { type: 'binary', length: MiB, same: true }, '1 MiB binary, both ways')
  t.same(await page.echo(main.id, 'text', MiB, 4), { type: 'text', length: MiB, same: true }, '1 MiB of text, both ways')
  t.same(await page.echo(main.id, 'binary', 0, 5), { type: 'binary', length: 0, same: true }, 'an empty binary message')

  // Several at once, on the page's session.
  const names = ['a', 'b', 'c', 'd', 'e']
  const several = await Promise.all(names.map((name) => page.open(`${wss}/echo?name=${name}`)))
  t.ok(several.every((s) => s.opened), `${names.length} WebSockets opened at once`)
  const greetings = await Promise.all(several.map((s) => page.greeting(s.id)))
  t.same(greetings, names.map((name) => ({ hello: name, httpVersion: '2.0' })), 'each on its own stream')
  const echoes = await Promise.all(several.map((s, i) => page.echo(s.id, i % 2 === 0 ? 'text' : 'binary', 64 * 1024 + i, 10 + i)))
  t.ok(echoes.every((e) => e.same), 'interleaved echoes stay on their own stream')

  // A hook refuses: the WebSocket fails, the session goes on.
  const refused = await page.open(`${wss}/guarded`)
  t.equal(refused.opened, false, 'refused with 401: the WebSocket does not open')
  t.same(refused.events, ['error', 'close'], 'the page sees error, then close')
  t.same(refused.close, { code: 1006, reason: '', wasClean: false }, 'close code 1006, not clean')
  t.same(server.refused.map((r) => r.httpVersion), ['2.0'], 'the hook refused one extended CONNECT, and Chromium did not retry over HTTP/1.1')
  t.ok(server.refused[0]!.session === pageSession, 'on the page\'s session')
  t.notOk(server.websockets.some((w) => w.path === '/guarded'), 'the handler never ran')
  const after = await page.open(`${wss}/echo?name=after`)
  t.equal(after.opened, true, 'a WebSocket after the refusal opens')
  t.same(await page.greeting(after.id), { hello: 'after', httpVersion: '2.0' }, 'on HTTP/2 again')

  // The server closes with a code and a reason.
  const closer = await page.open(`${wss}/closer?name=closer`)
  t.equal(closer.opened, true)
  await page.send(closer.id, 'close please')
  t.same(await page.closed(closer.id), { code: 4001, reason: 'closed by the server ✓', wasClean: true, events: ['open', 'close'] },
    'the page sees the server\'s code and reason, a clean close')
  const closerRecord = server.websockets.find((w) => w.path === '/closer')!
  t.same(await within(closerRecord.closed, 'the server-side close'), { code: 4001, reason: 'closed by the server ✓' }, 'the server\'s side of it')

  // The page closes with a code and a reason.
  await page.close(main.id, 4000, 'the page is done ✓')
  // The page's close event reports the server's answering Close: the code echoed, no reason (RFC 6455 §5.5.1).
  t.same(await page.closed(main.id), { code: 4000, reason: '', wasClean: true, events: ['open', 'close'] }, 'the page sees the echoed code, a clean close')
  const mainRecord = server.websockets.find((w) => w.name === 'main')!
  t.same(await within(mainRecord.closed, 'the server-side close'), { code: 4000, reason: 'the page is done ✓' }, 'the server sees the page\'s code and reason')
  t.same(mainRecord.messages, [
    { bytes: Buffer.byteLength(textPayload(19, 1)), isBinary: false },
    { bytes: 300, isBinary: true },
    { bytes: MiB, isBinary: true },
    { bytes: Buffer.byteLength(textPayload(MiB, 4)), isBinary: false },
    { bytes: 0, isBinary: true }
  ], 'the server received each message whole, text as text and binary as binary')

  // Compressed.
  const deflate = await page.open(`${wss}/deflate?name=deflate`)
  t.equal(deflate.opened, true)
  t.match(deflate.extensions, /^permessage-deflate/, `permessage-deflate agreed: ${deflate.extensions}`)
  t.same(await page.echo(deflate.id, 'text', MiB, 20), { type: 'text', length: MiB, same: true }, 'compressed, 1 MiB of text both ways')
  t.same(await page.echo(deflate.id, 'binary', 1000, 21), { type: 'binary', length: 1000, same: true }, 'compressed, binary')
  await page.close(deflate.id, 1000, '')
  t.equal((await page.closed(deflate.id)).code, 1000)

  // Every WebSocket: an extended CONNECT, on the session that loaded the page.
  t.equal(server.websockets.length, 1 + names.length + 3)
  t.same([...new Set(server.websockets.map((w) => w.httpVersion))], ['2.0'], 'every WebSocket came as an HTTP/2 extended CONNECT')
  t.ok(server.websockets.every((w) => w.session === pageSession), 'all on one HTTP/2 session: the page\'s')
  t.same(pageErrors, [], 'no uncaught errors in the page')
}

/** The page's text payload, as the page builds it (its byte length for the server's record). */
function textPayload (size: number, seed: number): string {
  const unit = `héllo ✓ ${seed} `
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size)
}

/**
 * A page of another origin (plain HTTP, another port): Chromium has no
 * HTTP/2 session to the server, and opens a connection offering HTTP/1.1
 * only. After a credentialed request there, it has one, and uses it.
 */
async function otherOrigin (t: Test, browser: Browser, allowHTTP1: boolean): Promise<void> {
  const server = await startH2App(allowHTTP1)
  const other = await startOtherOrigin()
  let context: BrowserContext | undefined
  t.teardown(async () => {
    await context?.close()
    await server.app.close()
    await other.app.close()
  })
  const opened = await newPage(t, browser, other.page)
  context = opened.context
  const { page, pageErrors } = opened
  const wss = `wss://127.0.0.1:${server.port}`

  const first = await page.open(`${wss}/echo?name=first`)
  if (allowHTTP1) {
    t.equal(first.opened, true, 'without a session, the WebSocket opens')
    t.same(await page.greeting(first.id), { hello: 'first', httpVersion: '1.1' }, 'as an HTTP/1.1 upgrade')
    t.same(await page.echo(first.id, 'binary', MiB, 7), { type: 'binary', length: MiB, same: true }, 'and works: 1 MiB both ways')
    t.same(server.websockets.map((w) => [w.httpVersion, w.session]), [['1.1', undefined]])
    await page.close(first.id, 1000, '')
    t.equal((await page.closed(first.id)).code, 1000)
  } else {
    t.equal(first.opened, false, 'without a session, the WebSocket fails: Chromium offers only http/1.1 in ALPN, which this server refuses')
    t.same(first.events, ['error', 'close'])
    t.same(first.close, { code: 1006, reason: '', wasClean: false })
    t.same(server.websockets, [], 'no WebSocket reached the server')
  }

  // A credentialed request opens an HTTP/2 session in the page's partition; the next WebSocket goes on it.
  await page.fetchWithCredentials(server.origin)
  t.equal(server.pages.length, 1, 'the fetch reached the server')
  t.equal(server.pages[0]!.httpVersion, '2.0', 'over HTTP/2')
  const second = await page.open(`${wss}/echo?name=second`)
  t.equal(second.opened, true, 'after it, the WebSocket opens')
  t.same(await page.greeting(second.id), { hello: 'second', httpVersion: '2.0' }, 'as an extended CONNECT')
  t.same(await page.echo(second.id, 'text', 1000, 8), { type: 'text', length: 1000, same: true })
  const record = server.websockets.find((w) => w.name === 'second')!
  t.ok(record.session !== undefined && record.session === server.pages[0]!.session, 'on the session the fetch opened')
  t.same(pageErrors, [], 'no uncaught errors in the page')
}

/**
 * app.close() while the page holds WebSockets on its session: the shutdown
 * round closes each with 1001, then the session gets its GOAWAY, so close()
 * does not wait for Chromium to drop the connection (or http2SessionTimeout).
 */
async function shutdown (t: Test, browser: Browser, allowHTTP1: boolean): Promise<void> {
  const server = await startH2App(allowHTTP1)
  let context: BrowserContext | undefined
  let closed = false
  t.teardown(async () => {
    await context?.close()
    if (!closed) await server.app.close()
  })
  const opened = await newPage(t, browser, `${server.origin}/`)
  context = opened.context
  const { page, pageErrors } = opened
  const sockets = await Promise.all(['x', 'y', 'z'].map((name) => page.open(`wss://127.0.0.1:${server.port}/echo?name=${name}`)))
  t.ok(sockets.every((s) => s.opened), 'three WebSockets open')
  await Promise.all(sockets.map((s) => page.greeting(s.id)))
  t.same(server.websockets.map((w) => w.httpVersion), ['2.0', '2.0', '2.0'])
  await within(server.app.close(), 'app.close()', 10_000)
  closed = true
  t.pass('app.close() returned while the browser still had the session')
  const closes = await Promise.all(sockets.map((s) => page.closed(s.id)))
  t.same(closes, sockets.map(() => ({ code: 1001, reason: 'server shutting down', wasClean: true, events: ['open', 'close'] })),
    'each WebSocket in the page closed cleanly with 1001')
  t.same(pageErrors, [], 'no uncaught errors in the page')
}

async function main (): Promise<void> {
  t.setTimeout(120_000)
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // The certificate is self-signed; the contexts also set ignoreHTTPSErrors (either alone is enough).
      '--ignore-certificate-errors'
    ]
  })
  t.teardown(() => browser.close())
  t.comment(`Chromium ${browser.version()}`)

  await t.test('allowHTTP1 server, page of the same origin: every WebSocket is an extended CONNECT on the page\'s session', (t) => sameOrigin(t, browser, true))
  await t.test('HTTP/2-only server, page of the same origin: the same', (t) => sameOrigin(t, browser, false))
  await t.test('allowHTTP1 server, page of another origin: HTTP/1.1 until Chromium has an HTTP/2 session there', (t) => otherOrigin(t, browser, true))
  await t.test('HTTP/2-only server, page of another origin: fails until Chromium has an HTTP/2 session there', (t) => otherOrigin(t, browser, false))
  await t.test('allowHTTP1 server: app.close() with WebSockets open on the page\'s session', (t) => shutdown(t, browser, true))
  await t.test('HTTP/2-only server: app.close() with WebSockets open on the page\'s session', (t) => shutdown(t, browser, false))
}

main().catch((err) => t.threw(err))
