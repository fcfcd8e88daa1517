// The http2 scenario (issue 13): N WebSockets on ONE HTTP/2 session (RFC
// 8441) against N HTTP/1.1 connections, both over TLS, on one process of our
// plugin serving both (bench/servers/rfc6455-h2.mjs: HTTP/2 with
// allowHTTP1). Nobody else serves RFC 8441, so it runs in the rfc6455 column
// only and compares the two transports with each other, in the same round:
//
// 1. memory: server RSS and heap + external per idle WebSocket, as the idle
//    scenario reads them (full GC, fresh server per transport in full runs);
// 2. set-up: WebSockets opened per second (open, one echo, closing
//    handshake, as the handshake scenario), on a TLS connection each or as
//    streams of one session;
// 3. echo: 32 B msg/s with N connections × k in flight.
//
// The two transports run back to back, in alternating order from round to
// round, so neither always gets the warmer server or the quieter machine.

import { setTimeout as sleep } from 'node:timers/promises'
import { startServer } from './servers.mjs'
import { selfSignedCert } from '../../scripts/self-signed-cert.cjs'

export const HTTP2_SERVER = { id: 'rfc6455 on HTTP/2 + allowHTTP1', script: 'bench/servers/rfc6455-h2.mjs', nodeArgs: [] }
// `id` is the generator's transport (bench/load/transports.mjs); `suffix` ends the metric keys.
export const TRANSPORTS = [
  { id: 'tls', suffix: 'H1' },
  { id: 'h2', suffix: 'H2' }
]
// What each row reports, per transport (key + suffix) and as the ratio HTTP/2 ÷ HTTP/1.1.
// `window`: the timed window whose CPU use (and generator saturation) goes with the row.
export const HTTP2_ROWS = [
  { key: 'rss', label: 'server RSS per WebSocket', unit: 'bytes', better: 'lower', about: (p) => `${p.count} open` },
  { key: 'heap', label: 'server heap + external per WebSocket', unit: 'bytes', better: 'lower', about: (p) => `${p.count} open` },
  { key: 'opens', label: 'WebSockets opened/s', unit: 'rate', better: 'higher', window: 'open', about: (p) => `open, 1 echo, close; ${p.concurrency} at a time` },
  { key: 'openCpu', label: 'server CPU µs per WebSocket opened', unit: 'micros', better: 'lower', window: 'open' },
  { key: 'openGen', label: 'load generator CPU µs per WebSocket opened', unit: 'micros', window: 'open' },
  { key: 'msgs', label: 'echo 32 B msg/s', unit: 'rate', better: 'higher', window: 'echo', about: (p) => `${p.conns} WebSockets × ${p.inflight} in flight` },
  { key: 'msgCpu', label: 'server CPU µs/msg', unit: 'micros', better: 'lower', window: 'echo' },
  { key: 'msgGen', label: 'load generator CPU µs/msg', unit: 'micros', window: 'echo' }
]

const SMALL = { kind: 'binary', size: 32 }
const IDLE_TIMEOUT_MS = 180_000
// Slack on top of a timed job's window for the session, connecting, draining and closing.
const JOB_SLACK_MS = 30_000
// As the idle scenario: lets the server finish per-connection work before its memory is read.
const SETTLE_MS = { full: 500, smoke: 50 }

let cellsRun = 0

/** One cell (one round) of the scenario; `ctx` as scenarios' `measure` gets it. */
export async function measureHttp2 (ctx) {
  let cert
  try {
    cert = selfSignedCert()
  } catch (error) {
    return { failure: `no self-signed certificate (the openssl CLI is needed): ${error.message.split('\n')[0]}` }
  }
  const start = () => startServer(HTTP2_SERVER, { pin: ctx.pin, env: { BENCH_TLS_KEY: cert.key, BENCH_TLS_CERT: cert.cert } })
  const order = cellsRun++ % 2 === 0 ? TRANSPORTS : [...TRANSPORTS].reverse()
  const base = { path: '/echo', tls: { ca: cert.cert }, payload: SMALL }
  const metrics = {}
  const windows = {}
  const transportStats = {}
  let shared = null
  try {
    // A smoke run only checks that everything works: one server for all of it.
    if (ctx.smoke) shared = await start()
    for (const transport of order) {
      // Fresh in full runs, as in the idle scenario: pages freed by the other
      // transport's connections would absorb these and hide their cost.
      const server = shared ?? await start()
      let memory
      try {
        memory = await idleMemory(ctx, server, { ...base, transport: transport.id })
      } finally {
        if (server !== shared) await server.stop()
      }
      if (memory.failure) return { failure: `${transport.id} idle: ${memory.failure}` }
      metrics[`rss${transport.suffix}`] = memory.rss
      metrics[`heap${transport.suffix}`] = memory.heap
    }
    shared ??= await start()
    const phases = [
      { window: 'open', rate: 'opens', cpu: 'openCpu', gen: 'openGen', job: { kind: 'handshake', concurrency: ctx.params.concurrency } },
      { window: 'echo', rate: 'msgs', cpu: 'msgCpu', gen: 'msgGen', job: { kind: 'echo', conns: ctx.params.conns, inflight: ctx.params.inflight } }
    ]
    for (const phase of phases) {
      for (const transport of order) {
        const result = await timed(ctx, shared, { ...base, ...phase.job, transport: transport.id })
        if (result.failure) return { failure: `${transport.id} ${phase.window}: ${result.failure}` }
        const rate = result.metrics.rate
        metrics[`${phase.rate}${transport.suffix}`] = rate
        metrics[`${phase.cpu}${transport.suffix}`] = perOp(result.serverCpu, rate)
        metrics[`${phase.gen}${transport.suffix}`] = perOp(result.generatorCpu, rate)
        windows[`${phase.window}${transport.suffix}`] = { generatorCpu: result.generatorCpu, serverCpu: result.serverCpu, otherCpu: result.otherCpu }
        if (result.transport !== undefined) transportStats[`${phase.window}${transport.suffix}`] = result.transport
      }
    }
    if (!shared.alive) return { failure: 'the server exited during the cell' }
    return { metrics, windows, transportStats }
  } finally {
    await shared?.stop()
  }
}

/** CPU µs per operation from a window's CPU use (percent of one core) and rate; null if unknown. */
function perOp (cpuPercent, rate) {
  return typeof cpuPercent === 'number' && rate > 0 ? (cpuPercent / 100) * 1e6 / rate : null
}

function timed (ctx, server, job) {
  const { timing } = ctx
  return ctx.load.run({
    ...job,
    port: server.port,
    serverPid: server.pid,
    clockTicks: ctx.clockTicks,
    checkAll: ctx.smoke,
    warmupMs: timing.warmupMs,
    durationMs: timing.durationMs
  }, timing.warmupMs + timing.durationMs + JOB_SLACK_MS)
}

/** The idle scenario's reading (bench/lib/scenarios.mjs) on `server`, over `job.transport`. */
async function idleMemory (ctx, server, job) {
  const before = await server.memory()
  const opened = await ctx.load.run({ ...job, kind: 'idle-open', port: server.port, count: ctx.params.count }, IDLE_TIMEOUT_MS)
  if (opened.failure) return opened
  await sleep(ctx.smoke ? SETTLE_MS.smoke : SETTLE_MS.full)
  const after = await server.memory()
  // The first connection must still echo: the memory read is of working WebSockets.
  const closed = await ctx.load.run({ kind: 'idle-close', verify: true, payload: SMALL }, IDLE_TIMEOUT_MS)
  if (closed.failure) return closed
  const js = (memory) => memory.heapUsed + memory.external
  return {
    rss: (after.rss - before.rss) / opened.opened,
    heap: (js(after) - js(before)) / opened.opened
  }
}
