// The compression conformance behaviours of the standard WebSocket test
// suite (Autobahn|Testsuite, RFC 7692 cases 12.x and 13.x), as a bounded
// loop of the `ws` client against our server: many messages of the suite's
// sizes (16 B to 128 KiB), from real-world payloads, echoed and compared byte
// for byte, under every combination of the offer's parameters.
//
//   12.x  different payloads with the default offer: 12.1 a large JSON file,
//         12.2 an uncompressed bitmap, 12.3 human-readable text, 12.4 a large
//         HTML file, 12.5 a PDF (already compressed). Here: package-lock.json,
//         1 MiB of the node executable, lib.dom.d.ts, typescript.js, and
//         seeded random bytes; each whole and, as the suite's "auto-fragment"
//         variants do, in fragments (ws's fin: false, 256 bytes each, one
//         deflate stream across them, RSV1 on the first frame only).
//   13.x  different parameters: the suite's offers (requestNoContextTakeover,
//         requestMaxWindowBits) 13.1 (false, 0), 13.2 (true, 0), 13.3
//         (false, 8), 13.4 (false, 15), 13.5 (true, 8), 13.6 (true, 15) with
//         every size; 13.7 (several offers in one header) is beyond the ws
//         client and is covered by the negotiation tests. Then every
//         combination of server_no_context_takeover (absent, present),
//         server_max_window_bits (absent, 8, 9, 12, 15),
//         client_no_context_takeover (absent, present) and
//         client_max_window_bits (valueless, absent, 8, 15), against a route
//         with the defaults and one that keeps both contexts.
//
// Each connection pipelines its messages (at most WINDOW outstanding), so
// small ones (compressed on the calling thread) and large ones (on the thread
// pool) overlap and must still come back in order. Besides the echo, the
// server's socket counters show what went compressed: compressible payloads
// cost less than half on the wire both ways; random bytes come back plain.

import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import type { AddressInfo, Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import type { WebSocketConnection } from '../../lib/index.js'
import { build, clientClosed, Inbox, listen, track } from '../helpers/app.js'

const ROOT = join(__dirname, '..', '..')
const SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
const WINDOW = 16
const FRAGMENT = 256

interface Corpus {
  name: string
  data: Buffer
  /** Sent as text (sliced on UTF-8 boundaries) or binary. */
  text: boolean
  /** Most wire bytes per payload byte, both ways, over a connection of it; null: incompressible (comes back plain). */
  ratio: number | null
}

/** Seeded xorshift32 bytes: incompressible, and the same on every run. */
function noise (size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

function fileSlice (path: string, offset: number, length: number): Buffer {
  const all = readFileSync(path)
  return all.subarray(Math.min(offset, Math.max(0, all.length - length)), Math.min(all.length, offset + length))
}

const CORPORA: Record<string, Corpus> = {
  json: { name: '12.1 JSON (package-lock.json)', data: readFileSync(join(ROOT, 'package-lock.json')), text: true, ratio: 0.5 },
  bitmap: { name: '12.2 binary (1 MiB of the node executable)', data: fileSlice(process.execPath, 4 * 1024 * 1024, 1024 * 1024), text: false, ratio: 0.9 },
  prose: { name: '12.3 text (lib.dom.d.ts)', data: readFileSync(join(ROOT, 'node_modules', 'typescript', 'lib', 'lib.dom.d.ts')), text: true, ratio: 0.5 },
  html: { name: '12.4 markup/code (typescript.js)', data: fileSlice(join(ROOT, 'node_modules', 'typescript', 'lib', 'typescript.js'), 0, 2 * 1024 * 1024), text: true, ratio: 0.5 },
  pdf: { name: '12.5 incompressible (seeded random bytes)', data: noise(512 * 1024, 0x6455), text: false, ratio: null }
}

/** `length` bytes of `corpus` from `offset` (wrapping); for text, moved to whole UTF-8 characters. */
function slice (corpus: Corpus, offset: number, length: number): Buffer {
  const data = corpus.data
  let start = offset % data.length
  if (start + length > data.length) start = 0
  let end = Math.min(data.length, start + length)
  if (corpus.text) {
    while (start < end && (data[start] & 0xc0) === 0x80) start++
    while (end < data.length && end > start && (data[end] & 0xc0) === 0x80) end--
  }
  return data.subarray(start, end)
}

interface Message { data: Buffer, binary: boolean }

/** `count(size)` messages of each size, consecutive slices of the corpus. */
function messagesOf (corpus: Corpus, sizes: number[], count: (size: number) => number): Message[] {
  const out: Message[] = []
  let offset = 0
  for (const size of sizes) {
    for (let i = 0; i < count(size); i++) {
      out.push({ data: slice(corpus, offset, size), binary: !corpus.text })
      offset += size * 7 + 13
    }
  }
  return out
}

/** Bytes of one unmasked frame (server → client) carrying `length` bytes. */
const frameSize = (length: number): number => length + (length < 126 ? 2 : length < 65536 ? 4 : 10)

interface WireCount { socket: Socket, read: number, written: number }

async function echoServer (t: Test): Promise<{ app: FastifyInstance, wire: Map<string, WireCount> }> {
  const app = await build(t, { compression: true })
  const wire = new Map<string, WireCount>()
  // The counters start after the 101, which is written before the handler runs.
  const echo = (conn: WebSocketConnection<unknown>, id: string, socket: Socket): void => {
    wire.set(id, { socket, read: socket.bytesRead, written: socket.bytesWritten })
    conn.on('message', (data: Buffer, isBinary: boolean) => { conn.send(data, { binary: isBinary }) })
  }
  const id = (query: unknown): string => String((query as { id?: unknown }).id)
  app.get('/default', { websocket: true }, (conn, request) => echo(conn, id(request.query), request.raw.socket))
  app.get('/ctx', { websocket: { compression: { serverContextTakeover: true, clientContextTakeover: true } } }, (conn, request) => echo(conn, id(request.query), request.raw.socket))
  await listen(app)
  return { app, wire }
}

interface Outcome {
  extensions: string
  mismatches: string[]
  payload: number
  /** Bytes the server read and wrote on the connection's socket after the 101. */
  wireIn: number
  wireOut: number
  /** What the server's echo would cost uncompressed. */
  plainOut: number
}

let nextId = 0

/**
 * One connection: sends `messages` (whole, or in fragments of `fragment`
 * bytes), at most WINDOW ahead of the echoes, and compares every echo with
 * what was sent, in order.
 */
async function exchange (app: FastifyInstance, wire: Map<string, WireCount>, path: string, offer: Offer, messages: Message[], fragment?: number): Promise<Outcome> {
  const id = String(nextId++)
  const port = (app.server.address() as AddressInfo).port
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?id=${id}`, { perMessageDeflate: { threshold: 0, ...offer } as WebSocket.PerMessageDeflateOptions, maxPayload: 4 * 1024 * 1024 })
  track(app, { destroy: () => ws.terminate() })
  // ws's `extensions` names the extensions only; the response header has their parameters.
  let extensions = ''
  ws.once('upgrade', (response) => { extensions = response.headers['sec-websocket-extensions'] ?? '' })
  const inbox = new Inbox(ws)
  await once(ws, 'open')
  const mismatches: string[] = []
  const send = (m: Message): void => {
    if (fragment === undefined || m.data.length <= fragment) {
      ws.send(m.data, { binary: m.binary, compress: true })
      return
    }
    for (let at = 0; at < m.data.length; at += fragment) {
      ws.send(m.data.subarray(at, at + fragment), { binary: m.binary, compress: true, fin: at + fragment >= m.data.length })
    }
  }
  let received = 0
  const receive = async (): Promise<void> => {
    const got = await inbox.next()
    const want = messages[received]
    if (got.isBinary !== want.binary || !got.data.equals(want.data)) {
      mismatches.push(`message ${received} (${want.data.length} bytes, ${want.binary ? 'binary' : 'text'}): got ${got.data.length} bytes, ${got.isBinary ? 'binary' : 'text'}`)
    }
    received++
  }
  for (let i = 0; i < messages.length; i++) {
    send(messages[i])
    if (i - received >= WINDOW) await receive()
  }
  while (received < messages.length) await receive()
  // Every message has been read and every echo written: the counters before the closing handshake adds to them.
  const count = wire.get(id)
  const wireIn = count === undefined ? -1 : count.socket.bytesRead - count.read
  const wireOut = count === undefined ? -1 : count.socket.bytesWritten - count.written
  const closed = clientClosed(ws)
  ws.close(1000)
  await closed
  return {
    extensions,
    mismatches,
    payload: messages.reduce((sum, m) => sum + m.data.length, 0),
    wireIn,
    wireOut,
    plainOut: messages.reduce((sum, m) => sum + frameSize(m.data.length), 0)
  }
}

/** What our server answers an offer with, on a route with the defaults or one that keeps both contexts. */
function expectedAnswer (offer: Offer, keeps: boolean): Record<string, string | true> {
  const out: Record<string, string | true> = {}
  if (offer.serverNoContextTakeover === true || !keeps) out.server_no_context_takeover = true
  if (offer.clientNoContextTakeover === true || !keeps) out.client_no_context_takeover = true
  if (typeof offer.serverMaxWindowBits === 'number') out.server_max_window_bits = String(offer.serverMaxWindowBits)
  if (typeof offer.clientMaxWindowBits === 'number') out.client_max_window_bits = String(offer.clientMaxWindowBits)
  return out
}

const sameParams = (a: Record<string, string | true>, b: Record<string, string | true>): boolean =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort())

function parseAgreed (header: string): Record<string, string | true> {
  const [, ...params] = header.split(';').map((s) => s.trim()).filter((s) => s !== '')
  return Object.fromEntries(params.map((p) => {
    const [k, v] = p.split('=')
    return [k, v === undefined ? true : v]
  }))
}

/**
 * ws's perMessageDeflate offer options. Left out, a parameter is not
 * offered, except clientMaxWindowBits: left out it is offered without a
 * value, and `false` leaves it out (ws's own convention, beyond its types).
 */
interface Offer {
  serverNoContextTakeover?: true
  serverMaxWindowBits?: number
  clientNoContextTakeover?: true
  clientMaxWindowBits?: number | false
}

function checkOutcome (t: Test, name: string, outcome: Outcome, messages: number, ratio: number | null): void {
  t.same(outcome.mismatches, [], `${name}: ${messages} messages echoed intact and in order`)
  t.ok(outcome.wireIn > 0 && outcome.wireOut > 0, `${name}: the server counted the bytes on its socket`)
  if (ratio === null) {
    t.equal(outcome.wireOut, outcome.plainOut, `${name}: incompressible, so every echo went plain (${outcome.wireOut} bytes for ${outcome.payload})`)
  } else {
    t.ok(outcome.wireOut < outcome.payload * ratio, `${name}: echoes compressed (${outcome.wireOut} bytes on the wire for ${outcome.payload})`)
    t.ok(outcome.wireIn < outcome.payload * ratio, `${name}: the client's messages compressed (${outcome.wireIn} bytes on the wire for ${outcome.payload})`)
  }
}

async function main (): Promise<void> {
  const started = Date.now()
  const { app, wire } = await echoServer(t)

  await t.test('12.x: payloads of every size, default offer, whole and fragmented', async (t) => {
    // Autobahn sends 1000 of each; a bounded share here, more of the small ones.
    const count = (size: number): number => size <= 1024 ? 16 : size <= 16384 ? 6 : 2
    for (const corpus of Object.values(CORPORA)) {
      const messages = messagesOf(corpus, SIZES, count)
      for (const fragment of [undefined, FRAGMENT]) {
        const name = `${corpus.name}${fragment === undefined ? '' : `, in ${fragment}-byte fragments`}`
        const outcome = await exchange(app, wire, '/default', {}, messages, fragment)
        t.same(parseAgreed(outcome.extensions), { server_no_context_takeover: true, client_no_context_takeover: true }, `${name}: agreed ${outcome.extensions}`)
        checkOutcome(t, name, outcome, messages.length, corpus.ratio)
      }
    }
  })

  await t.test('13.1-13.6: the suite\'s offers, every size, on a route with the defaults and one that keeps both contexts', async (t) => {
    const offers: Array<[string, Offer]> = [
      ['13.1 (false, 0)', {}],
      ['13.2 (true, 0)', { serverNoContextTakeover: true }],
      ['13.3 (false, 8)', { serverMaxWindowBits: 8 }],
      ['13.4 (false, 15)', { serverMaxWindowBits: 15 }],
      ['13.5 (true, 8)', { serverNoContextTakeover: true, serverMaxWindowBits: 8 }],
      ['13.6 (true, 15)', { serverNoContextTakeover: true, serverMaxWindowBits: 15 }]
    ]
    const messages = [
      ...messagesOf(CORPORA.json, SIZES, (size) => size <= 1024 ? 4 : 1),
      ...messagesOf(CORPORA.prose, SIZES, (size) => size <= 1024 ? 4 : 1)
    ]
    for (const [label, offer] of offers) {
      for (const path of ['/default', '/ctx']) {
        const name = `${label} on ${path}`
        const outcome = await exchange(app, wire, path, offer, messages)
        t.same(parseAgreed(outcome.extensions), expectedAnswer(offer, path === '/ctx'), `${name}: agreed ${outcome.extensions}`)
        // 8-bit windows find few matches in JSON beyond 250 bytes back.
        checkOutcome(t, name, outcome, messages.length, offer.serverMaxWindowBits === 8 ? 0.7 : 0.5)
      }
    }
  })

  await t.test('every combination of the four parameters, on both routes', async (t) => {
    // The same messages twice over: with context takeover the second round refers back to the first.
    const round = [...messagesOf(CORPORA.json, [64, 1500, 20000, 70000], () => 1), ...messagesOf(CORPORA.bitmap, [3000], () => 1)]
    const messages = [...round, ...round]
    let connections = 0
    for (const serverNoContextTakeover of [undefined, true] as const) {
      for (const serverMaxWindowBits of [undefined, 8, 9, 12, 15]) {
        for (const clientNoContextTakeover of [undefined, true] as const) {
          for (const clientMaxWindowBits of [undefined, false, 8, 15] as const) {
            for (const path of ['/default', '/ctx']) {
              const offer: Offer = { serverNoContextTakeover, serverMaxWindowBits, clientNoContextTakeover, clientMaxWindowBits }
              const name = `${JSON.stringify(offer)} on ${path}`
              const outcome = await exchange(app, wire, path, offer, messages)
              const agreed = parseAgreed(outcome.extensions)
              const expected = expectedAnswer(offer, path === '/ctx')
              if (!sameParams(agreed, expected)) t.same(agreed, expected, `${name}: agreed ${outcome.extensions}`)
              if (outcome.mismatches.length > 0) t.same(outcome.mismatches, [], `${name}: every message echoed intact and in order`)
              if (!(outcome.wireOut < outcome.payload * 0.7 && outcome.wireIn < outcome.payload * 0.7)) {
                t.fail(`${name}: compressed both ways (in ${outcome.wireIn}, out ${outcome.wireOut} for ${outcome.payload})`)
              }
              connections++
            }
          }
        }
      }
    }
    t.equal(connections, 160, `160 connections, ${messages.length} messages each, agreed as offered and echoed intact`)
  })

  await t.test('ws with clientNoContextTakeover: false refuses a server that asks for client_no_context_takeover', async (t) => {
    // RFC 7692 §7.1.1.2 lets a server include client_no_context_takeover in
    // any response, and the defaults do; ws, told explicitly that its client
    // keeps its context, fails the handshake on it (its acceptAsClient). A
    // route that lets clients keep their context serves it.
    const port = (app.server.address() as AddressInfo).port
    const refused = new WebSocket(`ws://127.0.0.1:${port}/default?id=refused`, { perMessageDeflate: { clientNoContextTakeover: false } })
    track(app, { destroy: () => refused.terminate() })
    const [err] = await once(refused, 'error') as [Error]
    t.match(err.message, /Sec-WebSocket-Extensions/, `ws fails the handshake: ${err.message}`)
    const messages = messagesOf(CORPORA.json, [64, 1500, 20000, 70000], () => 2)
    const outcome = await exchange(app, wire, '/ctx', { clientNoContextTakeover: false } as unknown as Offer, messages)
    t.same(parseAgreed(outcome.extensions), {}, `on /ctx: agreed ${outcome.extensions}`)
    checkOutcome(t, 'on /ctx', outcome, messages.length, 0.5)
  })

  t.comment(`conformance loop: ${nextId} connections in ${Date.now() - started} ms`)
}

main().catch((err) => t.threw(err))
