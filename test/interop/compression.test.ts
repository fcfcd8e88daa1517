// permessage-deflate (RFC 7692) with real peers that compress: headless
// Chromium, the `ws` client with perMessageDeflate (and its own window and
// context-takeover choices), Python's `websockets` (compresses by default;
// and with compression=None, declined cleanly), and Node.js's own WebSocket
// (undici: it offers permessage-deflate and inflates, but never compresses
// what it sends).
//
// Each peer performs runs (compression-checks.ts): one connection each, to a
// route of the server (compression-server.ts) with its own `compression`
// setting; text and binary, under the threshold and 16 MiB, both ways,
// broadcasts, and the same message several times in a row. The server counts
// the bytes on each TCP socket, so the checks see what went compressed and
// what did not, and whether a kept context made repeated messages cheaper —
// not just that the header was sent. The peers run at the same time, each
// against its own connections.
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { runPeer } from './fixtures/child.js'
import { launchChromium } from './fixtures/chromium.js'
import {
  broadcast, checkRun, contextSteps, echo, fullSteps, KiB, LARGE, MiB, shortSteps, times, upload,
  type Expect, type PeerOutput, type Run, type RunResult, type Step
} from './fixtures/compression-checks.js'
import { startCompressionServer, type CompressionServer } from './fixtures/compression-server.js'

// Debian's interpreter: the python3 on PATH may be another one without the module.
const PYTHON = '/usr/bin/python3'
const FIXTURES = join(__dirname, 'fixtures')

interface Planned { run: Run, expect: Expect }

// What the server agrees to with the defaults (no context takeover either way).
const FRESH = { server_no_context_takeover: true, client_no_context_takeover: true } as const
// '/window' asks for small windows; clients that offer client_max_window_bits get 9.
const WINDOW = { ...FRESH, server_max_window_bits: '10', client_max_window_bits: '9' } as const
// Browsers, ws and websockets all offer this by default.
const BROWSER_OFFER = { client_max_window_bits: true } as const

/** A child-process peer's output (runPeer kills it at teardown if it is still running). */
async function runChild (t: Test, command: string, args: string[]): Promise<PeerOutput> {
  return (await runPeer<PeerOutput>(t, command, args)).result
}

/** Chromium's WebSocket in a page of the server, running compression_scenarios.mjs. */
async function runChromium (t: Test, server: CompressionServer, runs: Run[]): Promise<PeerOutput> {
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))
  await page.goto(server.page)
  // A string, not a function: it runs in the page, untouched by the TypeScript/CJS transform.
  const results = await page.evaluate(
    `import('/compression_scenarios.mjs').then((m) => m.runAll(${JSON.stringify(server.origin)}, ${JSON.stringify(runs)}))`
  ) as RunResult[]
  if (pageErrors.length > 0) throw new Error(`uncaught errors in the page: ${pageErrors.join('; ')}`)
  return { peer: `Chromium ${browser.version()} WebSocket`, runs: results }
}

function chromiumPlan (): Planned[] {
  const peer = { offer: BROWSER_OFFER, peerCompresses: true, peerThreshold: 0 }
  return [
    { run: { case: 'chromium/fresh', path: '/fresh', steps: fullSteps() }, expect: { ...peer, params: FRESH, serverContext: 'fresh', peerContext: 'fresh' } },
    { run: { case: 'chromium/ctx', path: '/ctx', steps: contextSteps() }, expect: { ...peer, params: {}, serverContext: 'kept', peerContext: 'kept' } },
    { run: { case: 'chromium/window', path: '/window', steps: shortSteps() }, expect: { ...peer, params: WINDOW, serverContext: 'fresh', peerContext: 'fresh' } },
    { run: { case: 'chromium/plain', path: '/plain', steps: shortSteps() }, expect: { ...peer, params: null } }
  ]
}

/**
 * ws compresses only messages of 1 KiB or more (its `threshold`) when it
 * does not keep its context; keeping it, it compresses every message.
 */
function wsPlan (): Planned[] {
  const plan = (name: string, path: Run['path'], steps: Step[], expect: Partial<Expect> & Pick<Expect, 'params'>, perMessageDeflate?: Record<string, unknown>): Planned => ({
    run: { case: `ws/${name}`, path, steps, client: perMessageDeflate === undefined ? undefined : { perMessageDeflate } },
    expect: { offer: BROWSER_OFFER, peerCompresses: true, ...expect }
  })
  // Many messages in a row through a window of 8 bits (zlib uses 9 and never refers back more than 250 bytes).
  const smallWindowSteps = [...shortSteps(), echo('text', LARGE, 31), ...times(3, echo('binary', 16 * KiB, 32)), broadcast('binary', MiB, 33)]
  return [
    plan('fresh', '/fresh', fullSteps(), { params: FRESH, peerThreshold: 1024, serverContext: 'fresh', peerContext: 'fresh' }),
    plan('ctx', '/ctx', contextSteps(), { params: {}, peerThreshold: 0, serverContext: 'kept', peerContext: 'kept' }),
    plan('window', '/window', shortSteps(), { params: WINDOW, peerThreshold: 1024, serverContext: 'fresh', peerContext: 'fresh' }),
    plan('plain', '/plain', shortSteps(), { params: null }),
    // ws's own context-takeover preferences, against a route that would keep both contexts.
    plan('ctx-server_no_context_takeover', '/ctx', shortSteps(), {
      offer: { server_no_context_takeover: true, ...BROWSER_OFFER },
      params: { server_no_context_takeover: true },
      peerThreshold: 0,
      serverContext: 'fresh',
      peerContext: 'kept'
    }, { serverNoContextTakeover: true }),
    plan('ctx-client_no_context_takeover', '/ctx', shortSteps(), {
      offer: { client_no_context_takeover: true, ...BROWSER_OFFER },
      params: { client_no_context_takeover: true },
      peerThreshold: 1024,
      serverContext: 'kept',
      peerContext: 'fresh'
    }, { clientNoContextTakeover: true }),
    // ws's window choices: server_max_window_bits=10 and =8, client_max_window_bits=8.
    plan('fresh-server_max_window_bits=10', '/fresh', shortSteps(), {
      offer: { server_max_window_bits: '10', ...BROWSER_OFFER },
      params: { ...FRESH, server_max_window_bits: '10' },
      peerThreshold: 1024,
      serverContext: 'fresh',
      peerContext: 'fresh'
    }, { serverMaxWindowBits: 10 }),
    // The server keeps its context, compressing with 9 bits for a peer that inflates with 8; the 8 KiB repeats are out of reach.
    plan('ctx-server_max_window_bits=8', '/ctx', smallWindowSteps, {
      offer: { server_max_window_bits: '8', ...BROWSER_OFFER },
      params: { server_max_window_bits: '8' },
      peerThreshold: 0,
      peerContext: 'kept',
      ratio: 0.75
    }, { serverMaxWindowBits: 8 }),
    plan('ctx-client_max_window_bits=8', '/ctx', smallWindowSteps, {
      offer: { client_max_window_bits: '8' },
      params: { client_max_window_bits: '8' },
      peerThreshold: 0,
      serverContext: 'kept',
      ratio: 0.75
    }, { clientMaxWindowBits: 8 })
  ]
}

/**
 * websockets compresses every message (no threshold) and keeps its context
 * unless told not to. It also sends a message in fragments when given them
 * (one deflate stream across the frames, RSV1 on the first).
 */
function pythonPlan (): Planned[] {
  const peer = { offer: BROWSER_OFFER, peerCompresses: true, peerThreshold: 0 }
  const fragmented = [{ ...echo('text', MiB, 43), pieces: 64 }, { ...echo('binary', 64 * KiB, 44), pieces: 7 }, { ...echo('text', 5000, 45), pieces: 3 }]
  return [
    { run: { case: 'python/fresh', path: '/fresh', steps: [...fullSteps(), ...fragmented] }, expect: { ...peer, params: FRESH, serverContext: 'fresh', peerContext: 'fresh' } },
    { run: { case: 'python/ctx', path: '/ctx', steps: [...contextSteps(), ...fragmented] }, expect: { ...peer, params: {}, serverContext: 'kept', peerContext: 'kept' } },
    { run: { case: 'python/window', path: '/window', steps: shortSteps() }, expect: { ...peer, params: WINDOW, serverContext: 'fresh', peerContext: 'fresh' } },
    // compression=None: no offer, so nothing agreed, and everything plain both ways.
    { run: { case: 'python/compression=None', path: '/fresh', steps: [...shortSteps(), echo('binary', LARGE, 41)], client: { compression: null } }, expect: { ...peer, offer: null, params: null } },
    // Its own preferences: the server's window of 8 bits (it inflates with 8), its own of 10, no context kept by the server.
    {
      run: { case: 'python/ctx-server_max_window_bits=8', path: '/ctx', steps: [...shortSteps(), ...times(3, echo('binary', 16 * KiB, 42))], client: { deflate: { server_no_context_takeover: true, server_max_window_bits: 8, client_max_window_bits: 10 } } },
      expect: { ...peer, offer: { server_no_context_takeover: true, server_max_window_bits: '8', client_max_window_bits: '10' }, params: { server_no_context_takeover: true, server_max_window_bits: '8', client_max_window_bits: '10' }, serverContext: 'fresh', ratio: 0.75 }
    }
  ]
}

/**
 * Node.js's WebSocket offers permessage-deflate and inflates what it gets,
 * but has no compressor: what it sends is always plain. undici 6 (Node.js
 * 20 and 22) fails any compressed message that inflates to more than 4 MiB
 * (its fixed kDefaultMaxDecompressedSize), so there the 16 MiB go to the
 * server only (upload) and 4 MiB both ways; undici 7 (Node.js 24) takes 16 MiB.
 */
function nodePlan (): Planned[] {
  const undiciMajor = Number((process.versions.undici ?? '0').split('.')[0])
  const capped = undiciMajor < 7
  const UNDICI_6_LIMIT = 4 * MiB
  // Over undici 6's limit: an echo becomes an upload of the size and an echo of 4 MiB; a broadcast, one of 4 MiB.
  const cap = (steps: Step[]): Step[] => !capped
    ? steps
    : steps.flatMap((step) => step.size <= UNDICI_6_LIMIT
      ? [step]
      : step.op === 'echo' ? [upload(step.type, step.size, step.seed), echo(step.type, UNDICI_6_LIMIT, step.seed)] : [{ ...step, size: UNDICI_6_LIMIT }])
  const peer = { offer: BROWSER_OFFER, peerCompresses: false }
  return [
    { run: { case: 'node/fresh', path: '/fresh', steps: cap(fullSteps()) }, expect: { ...peer, params: FRESH, serverContext: 'fresh' } },
    { run: { case: 'node/ctx', path: '/ctx', steps: cap(contextSteps()) }, expect: { ...peer, params: {}, serverContext: 'kept' } },
    { run: { case: 'node/window', path: '/window', steps: shortSteps() }, expect: { ...peer, params: WINDOW, serverContext: 'fresh' } },
    { run: { case: 'node/plain', path: '/plain', steps: shortSteps() }, expect: { ...peer, params: null } }
  ]
}

/**
 * A Node.js whose WebSocket makes no offer (older undici) connects
 * uncompressed: then every run of the plan is checked as declined.
 */
async function nodeOffers (t: Test, server: CompressionServer, plan: Planned[]): Promise<Planned[]> {
  if (!server.opened(plan[0].run.case)) return plan
  const record = await server.closed(plan[0].run.case)
  if (record.offer !== '') return plan
  t.comment(`Node.js ${process.version}'s WebSocket does not offer permessage-deflate: it connects uncompressed`)
  return plan.map(({ run, expect }) => ({ run, expect: { ...expect, offer: null, params: null } }))
}

async function checkPeer (t: Test, server: CompressionServer, name: string, planned: Planned[], output: Promise<PeerOutput>, peerPattern: RegExp, adapt?: (t: Test, plan: Planned[]) => Promise<Planned[]>): Promise<void> {
  await t.test(name, async (t) => {
    const { peer, runs } = await output
    t.match(peer, peerPattern, `the peer ran: ${peer}`)
    const plan = adapt === undefined ? planned : await adapt(t, planned)
    for (const { run, expect } of plan) {
      await checkRun(t, server, run, runs.find((r) => r.case === run.case), expect)
    }
  })
}

async function main (): Promise<void> {
  t.setTimeout(240_000)
  const server = await startCompressionServer()
  t.teardown(() => server.app.close())

  const chromium = chromiumPlan()
  const ws = wsPlan()
  const python = pythonPlan()
  const node = nodePlan()
  const runsOf = (plan: Planned[]): string => JSON.stringify(plan.map((p) => p.run))
  // Node.js 20 has its WebSocket behind a flag (from 20.10); 22 and later have it as a global.
  const hasWebSocket = typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function'
  const nodeFlags = hasWebSocket ? [] : ['--experimental-websocket']
  const nodeCanRun = hasWebSocket || process.allowedNodeEnvironmentFlags.has('--experimental-websocket')

  // All peers at once, each on its own connections; their outputs are checked one peer after the other.
  const outputs = {
    chromium: runChromium(t, server, chromium.map((p) => p.run)),
    ws: runChild(t, process.execPath, [join(FIXTURES, 'compression_peer.mjs'), 'ws', server.origin, runsOf(ws)]),
    python: runChild(t, PYTHON, [join(FIXTURES, 'compression_peer.py'), server.origin, runsOf(python)]),
    node: nodeCanRun
      ? runChild(t, process.execPath, [...nodeFlags, join(FIXTURES, 'compression_peer.mjs'), 'whatwg', server.origin, runsOf(node)])
      : Promise.reject(new Error(`Node.js ${process.version} has no WebSocket`))
  }
  // Rejections are awaited in checkPeer; until then they must not count as unhandled.
  for (const output of Object.values(outputs)) output.catch(() => {})

  await checkPeer(t, server, 'Chromium', chromium, outputs.chromium, /^Chromium \d+\.[\d.]+ WebSocket$/)
  await checkPeer(t, server, 'ws client with perMessageDeflate', ws, outputs.ws, /^ws \d+\.\d+\.\d+$/)
  await checkPeer(t, server, 'Python websockets', python, outputs.python, /^websockets \d+\.\d+/)
  const nodePeer = new RegExp(`^Node\\.js ${process.version.replace(/\./g, '\\.')} WebSocket \\(undici \\d+\\.\\d+\\.\\d+\\)$`)
  if (nodeCanRun) await checkPeer(t, server, `Node.js ${process.version} WebSocket`, node, outputs.node, nodePeer, (t, plan) => nodeOffers(t, server, plan))
  else await t.test(`Node.js ${process.version} WebSocket`, { skip: 'none in this Node.js (20.10 and later have one)' }, () => {})
}

main().catch((err) => t.threw(err))
