// WebSocket over HTTP/2 (RFC 8441) against an independent peer: Python's `h2`
// (Debian's python3-h2) with an RFC 6455 codec of its own
// (fixtures/h2_websocket.py), over TLS with ALPN h2, run as a child process.
// fixtures/h2_websocket_peer.py performs the scenarios, each on an HTTP/2
// connection of its own, and prints what it sent and saw as JSON; the server
// (fixtures/h2-server.ts) records what it saw of every WebSocket. Both sides
// are asserted here.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runPeer } from './fixtures/child.js'
import { startH2Server, type H2Record, type H2Server, type MessageRecord } from './fixtures/h2-server.js'

// Debian's interpreter: the python3 on PATH may be another one without the module.
const PYTHON = '/usr/bin/python3'
const PEER = join(__dirname, 'fixtures', 'h2_websocket_peer.py')
const SCENARIOS = ['settings', 'multiplex', 'negotiation', 'closing', 'reset', 'ping'] as const
const MiB = 1024 * 1024
const CANCEL = 0x8

/** What the peer reports of one stream it opened a WebSocket on. */
interface WsReport {
  streamId: number
  status: number
  headers: Record<string, string>
  /** What the server did on the stream, in order: headers, close (its close frame), end (END_STREAM), reset:N. */
  log: string[]
  reset: number | null
  resetByPeer: boolean
  /** RST_STREAM codes seen on the wire for the stream, even after h2 considered it closed. */
  wireResets: number[]
  endSent: boolean
  close: { code: number, reason: string } | null
  pings: string[]
  pongs: string[]
  lengthForms: string[]
  maskedFrames: number
  rsvFrames: number
  windowUpdates: number
  body?: string
  sent?: MessageRecord[]
  received?: MessageRecord[]
  [more: string]: unknown
}

interface GetReport { streamId: number, status: number, contentType: string, body: { n: string, query: Record<string, string>, httpVersion: string, streamId: number, session: number } }

type Results = Record<string, any>

interface PeerOutput { peer: string, results: Record<(typeof SCENARIOS)[number], Results & { error?: string }> }

/** The server's record of `name`, once its WebSocket and stream closed (bounded: the peer already saw them end). */
async function recordOf (server: H2Server, name: string): Promise<H2Record> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the server's WebSocket "${name}" did not close within 10 s`)), 10_000)
  })
  try {
    return await Promise.race([server.closed(name), late])
  } finally {
    clearTimeout(timer)
  }
}

/** A closing handshake both ways, then END_STREAM both ways: no reset on either side. */
function cleanEnd (t: Test, report: WsReport, record: H2Record, code: number, reason: string, what: string): void {
  t.same(report.log, ['headers', 'close', 'end'], `${what}: the peer saw the 200, the server's close frame, then its END_STREAM`)
  t.same(report.wireResets, [], `${what}: no RST_STREAM from the server`)
  t.ok(report.endSent, `${what}: the peer ended its side after the close frames`)
  t.same(record.close, { code, reason }, `${what}: the server's close event has the peer's code and reason`)
  t.ok(record.wasClean, `${what}: clean on the server`)
  t.equal(record.rstCode, 0, `${what}: the server's stream closed with NO_ERROR`)
}

function checkSettings (t: Test, r: Results): void {
  t.equal(r.alpn, 'h2', 'TLS negotiated h2 by ALPN')
  t.equal(r.firstSettings['8'], 1, "the server's first SETTINGS frame carries SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8) = 1")
  t.equal(r.enableConnectProtocol, 1, "h2's view of the server's settings allows extended CONNECT")
}

async function checkMultiplex (t: Test, server: H2Server, r: Results): Promise<void> {
  const rooms = { 'mux-1': 'alpha', 'mux-2': 'beta', 'mux-3': 'gamma' } as const
  const sessions = new Set<number>()
  for (const [name, room] of Object.entries(rooms)) {
    const report = r[name] as WsReport
    const record = await recordOf(server, name)
    sessions.add(record.session)
    t.equal(report.status, 200, `${name}: :status 200`)
    t.equal(record.streamId, report.streamId, `${name}: the server ran it on the peer's stream ${report.streamId}`)
    t.same(record.params, { room }, `${name}: the route param`)
    t.same(report.received, report.sent, `${name}: every message echoed intact, in order`)
    t.same(record.messages, report.sent, `${name}: the server received each message whole`)
    t.equal(report.maskedFrames, 0, `${name}: the server masks nothing`)
    t.equal(report.rsvFrames, 0, `${name}: no RSV bits`)
    cleanEnd(t, report, record, 1000, 'done', name)
  }
  t.same((await recordOf(server, 'mux-1')).query, { case: 'mux-1', tag: ['one', 'two'] }, 'mux-1: a repeated query parameter')
  t.same((await recordOf(server, 'mux-2')).query, { case: 'mux-2', name: 'été' }, 'mux-2: a percent-encoded query parameter')

  // The megabytes: more than the 65,535-byte initial windows, each way.
  for (const name of ['mux-1', 'mux-2']) {
    const report = r[name] as WsReport
    t.ok(report.sent!.some((m) => m.length === MiB), `${name} sent 1 MiB in one frame`)
    t.ok(report.windowUpdates > 0, `${name}: the server granted stream window (WINDOW_UPDATE) to take it: ${report.windowUpdates}`)
    t.same(report.lengthForms, ['7', '16', '64'], `${name}: the server's frames used 7-, 16- and 64-bit lengths`)
  }
  t.ok(r.connectionWindowUpdates > 0, `the server granted connection window: ${r.connectionWindowUpdates} WINDOW_UPDATEs`)
  t.ok(r.windowUpdatesSent > 0, `the peer granted window for the echoes: ${r.windowUpdatesSent} WINDOW_UPDATEs`)

  // mux-3: a text message in three frames, split inside a character, a ping between them.
  const fragmented = r['mux-3'] as WsReport
  const record3 = await recordOf(server, 'mux-3')
  t.same(record3.messages[0], fragmented.sent![0], 'mux-3: three fragments (UTF-8 split across them) became one text message')
  t.same(record3.pings, ['between fragments'], 'mux-3: the ping between the fragments reached the server')
  t.same(fragmented.pongs, ['between fragments'], 'mux-3: and its pong came back')
  t.same(r['mux-control'].fragmented, { text: 'server fragmented ✓', type: 'text', pieces: 3 }, "the peer reassembled the server's three fragments")
  const control = await recordOf(server, 'mux-control')
  sessions.add(control.session)
  cleanEnd(t, r['mux-control'] as WsReport, control, 1000, 'done', 'mux-control')

  // The GETs, on the same connection: one opened between the CONNECTs, one during the transfers.
  const gets = r.gets as GetReport[]
  for (const [i, get] of gets.entries()) {
    t.equal(get.status, 200, `GET ${i + 1}: 200`)
    t.match(get.contentType, /^application\/json/, `GET ${i + 1}: JSON`)
    t.same(get.body.query, { q: i === 0 ? 'between' : 'during' }, `GET ${i + 1}: its querystring`)
    t.equal(get.body.httpVersion, '2.0', `GET ${i + 1}: over HTTP/2`)
    t.equal(get.body.streamId, get.streamId, `GET ${i + 1}: on the peer's stream ${get.streamId}`)
    sessions.add(get.body.session)
  }
  t.ok(gets[0].streamId > r['mux-1'].streamId && gets[0].streamId < r['mux-2'].streamId, 'GET 1 was opened between two CONNECTs')
  t.equal(sessions.size, 1, 'the four WebSockets and both GETs ran on one HTTP/2 session')
  t.equal(r.terminated, null, 'no GOAWAY')
}

async function checkNegotiation (t: Test, server: H2Server, r: Results): Promise<void> {
  const both = r['proto-both'] as WsReport
  t.equal(both.status, 200, 'offering chat.v1, chat.v2: 200')
  t.equal(both.headers['sec-websocket-protocol'], 'chat.v2', "the server's preference among the offered")
  t.same(both.first, { type: 'text', json: { protocol: 'chat.v2' } }, 'conn.protocol in the handler')
  t.equal((await recordOf(server, 'proto-both')).protocol, 'chat.v2', "and on the server's record")

  const unknown = r['proto-unknown'] as WsReport
  t.equal(unknown.status, 200, 'offering only an unknown subprotocol: still accepted (RFC 6455 §4.2.2)')
  t.notOk('sec-websocket-protocol' in unknown.headers, 'with no sec-websocket-protocol')
  t.equal((await recordOf(server, 'proto-unknown')).protocol, '', 'conn.protocol is empty')

  const denied = r['secret-denied'] as WsReport
  t.equal(denied.status, 401, "the hook's 401 reaches the peer as :status 401")
  t.equal(denied.headers['www-authenticate'], 'Bearer realm="h2"', "with the hook's header")
  t.same(JSON.parse(denied.body!), { error: 'Unauthorized', message: 'a token is required' }, "and the hook's body")
  t.same(denied.log.slice(0, 2), ['headers', 'end'], 'a whole response, ended with END_STREAM')
  // RFC 9113 §8.1: having answered in full, the server may ask the client to stop sending, without error.
  t.ok(denied.wireResets.every((code) => code === 0), `then at most RST_STREAM(NO_ERROR): [${denied.wireResets.join(', ')}]`)
  t.notOk(server.opened('secret-denied'), 'the handler never ran')

  const version = r['bad-version'] as WsReport
  t.equal(version.status, 400, 'sec-websocket-version: 8 is refused with 400')
  t.equal(version.headers['sec-websocket-version'], '13', 'naming version 13')
  t.match(JSON.parse(version.body!), { statusCode: 400, message: /Sec-WebSocket-Version/ }, 'with a body saying why')
  t.notOk(server.opened('bad-version'), 'the handler never ran')

  const allowed = r['secret-ok'] as WsReport
  t.equal(allowed.status, 200, 'with the token the hook lets it through')
  t.same(allowed.first, { type: 'text', json: { user: 'ok' } }, 'and the handler ran')
  for (const name of ['proto-both', 'proto-unknown', 'secret-ok']) {
    const report = r[name] as WsReport
    t.equal(report.echoed, `echo ${report.streamId}`, `${name}: echo`)
    cleanEnd(t, report, await recordOf(server, name), 1000, '', name)
  }
}

async function checkClosing (t: Test, server: H2Server, r: Results): Promise<void> {
  const byClient = r['close-by-client'] as WsReport
  t.equal(byClient.before, 'before the close', 'an echo first')
  t.equal(byClient.close!.code, 4002, "the server's close frame echoes the peer's code")
  cleanEnd(t, byClient, await recordOf(server, 'close-by-client'), 4002, 'client says bye ✓', 'closed by the peer')

  const byServer = r['close-by-server'] as WsReport
  t.same(byServer.close, { code: 4001, reason: 'server says bye ✓' }, "the peer got the server's code and reason")
  cleanEnd(t, byServer, await recordOf(server, 'close-by-server'), 4001, '', 'closed by the server')

  // END_STREAM with no close frame: the peer went away, as a TCP FIN without a close frame.
  const finOnly = r['fin-only'] as WsReport
  const record = await recordOf(server, 'fin-only')
  t.same(finOnly.log, ['headers', 'end'], 'END_STREAM alone: the server ends its side too, with no close frame')
  t.same(finOnly.wireResets, [], 'and no RST_STREAM')
  t.equal(record.close!.code, 1006, 'the server closes with 1006')
  t.notOk(record.wasClean, 'not clean')
  t.equal(record.rstCode, 0, 'the stream itself closed with NO_ERROR')
  t.equal(r.terminated, null, 'no GOAWAY')
}

async function checkReset (t: Test, server: H2Server, r: Results): Promise<void> {
  const victim = r['rst-victim'] as WsReport
  const record = await recordOf(server, 'rst-victim')
  t.equal(victim.first, 'first', 'the victim worked before the reset')
  t.equal(victim.reset, CANCEL, 'the peer reset it with CANCEL in the middle of a 200,000-byte frame')
  t.same(victim.wireResets, [], 'the server sent no RST_STREAM of its own back')
  t.equal(record.close!.code, 1006, 'the server closes it with 1006')
  t.notOk(record.wasClean, 'not clean')
  t.equal(record.rstCode, CANCEL, "the server's stream carries the peer's CANCEL")
  t.equal(record.messages.length, 1, 'the cut message was never delivered')
  t.match(victim.server, { event: 'closed', close: { code: 1006 } }, 'the server had closed it before the survivor went on')

  const survivor = r['rst-survivor'] as WsReport
  const survivorRecord = await recordOf(server, 'rst-survivor')
  t.equal(survivor.before, 'before the reset', 'the survivor worked before the reset')
  t.same(survivor.received, survivor.sent, 'the survivor on the same connection echoes after the reset (100 KiB too)')
  cleanEnd(t, survivor, survivorRecord, 1000, '', 'the survivor')
  const late = r['rst-late'] as WsReport
  const lateRecord = await recordOf(server, 'rst-late')
  t.equal(late.echoed, 'opened after the reset', 'a WebSocket opened after the reset works')
  cleanEnd(t, late, lateRecord, 1000, '', 'the late one')
  t.equal(r.get.status, 200, 'a GET after the reset works')
  t.equal(new Set([record.session, survivorRecord.session, lateRecord.session, r.get.body.session]).size, 1, 'all on one HTTP/2 session')
  t.equal(r.terminated, null, 'the reset cost no GOAWAY')
}

async function checkPing (t: Test, server: H2Server, r: Results): Promise<void> {
  const report = r.ping as WsReport
  const record = await recordOf(server, 'ping')
  t.same(report.pings, ['server ping ✓'], "the server's conn.ping() reached the peer")
  t.same(record.pongs, ['server ping ✓'], "the peer's pong fired the server's 'pong' event")
  t.same(report.answer, { type: 'text', json: { event: 'pong', data: 'server ping ✓' } }, 'and the peer heard that it did')
  t.same(record.pings, ['client ping ✓'], "the peer's ping reached the server")
  t.same(report.pongs, ['client ping ✓'], "the server's automatic pong reached the peer")
  cleanEnd(t, report, record, 1000, '', 'ping')
}

async function main (): Promise<void> {
  t.setTimeout(120_000)
  const server = await startH2Server()
  t.teardown(() => server.app.close())

  const started = Date.now()
  const { result } = await runPeer<PeerOutput>(t, PYTHON, [PEER, JSON.stringify({ port: server.port, scenarios: SCENARIOS })])
  t.comment(`the peer's scenarios took ${Date.now() - started} ms`)
  t.match(result.peer, /^h2 \d+\.\d+/, `the peer ran: ${result.peer}`)

  const checks: Record<(typeof SCENARIOS)[number], (t: Test, r: Results) => void | Promise<void>> = {
    settings: checkSettings,
    multiplex: (t, r) => checkMultiplex(t, server, r),
    negotiation: (t, r) => checkNegotiation(t, server, r),
    closing: (t, r) => checkClosing(t, server, r),
    reset: (t, r) => checkReset(t, server, r),
    ping: (t, r) => checkPing(t, server, r)
  }
  for (const name of SCENARIOS) {
    await t.test(name, async (t) => {
      const r = result.results[name]
      if (r.error !== undefined) t.fail(`the peer failed:\n${r.error}`)
      else await checks[name](t, r)
    })
  }
  t.equal(server.app.websocket.clients.size, 0, 'no WebSocket left open on the server')
}

main().catch((err) => t.threw(err))
