// The scenarios, with their full and smoke sizes, and how each one turns
// into load-generator jobs for one server. A metric's `goals` are issue 15's
// targets for the rfc6455 server (bench/lib/goals.mjs).

import { setTimeout as sleep } from 'node:timers/promises'
import { DEFLATE_BROADCAST_ROUTE, DEFLATE_ECHO_ROUTE } from './compression.mjs'
import { DASHBOARD_MESSAGES } from './dashboard-messages.mjs'
import { JSON_ROUTE } from './json-message.mjs'
import { PUBLISH_ROUTE, ROOM_BROADCAST_ROUTE, roomsHeld } from './rooms.mjs'
import { INSTANCES, measureCrossInstance } from './cross-instance.mjs'
import { HTTP2_ROWS, measureHttp2, TRANSPORTS } from './http2-compare.mjs'
import { renderHttp2Section } from './http2-report.mjs'
import { AGE_SETUP_MS, freshAndWarmed, onOwnProcess } from './process-age.mjs'

// Slack on top of a timed job's window for connecting, draining and closing.
const JOB_SLACK_MS = 30_000
const IDLE_TIMEOUT_MS = 180_000
// Lets the server finish per-connection work before its memory is read.
const IDLE_SETTLE_MS = { full: 500, smoke: 50 }

const SMALL = { kind: 'binary', size: 32 }

function timedJob (ctx, job) {
  const { server, timing, clockTicks } = ctx
  return ctx.load.run({
    ...job,
    port: server.port,
    serverPid: server.pid,
    clockTicks,
    checkAll: ctx.smoke,
    warmupMs: timing.warmupMs,
    durationMs: timing.durationMs
  }, timing.warmupMs + timing.durationMs + JOB_SLACK_MS)
}

const rate = (label, goals) => ({ key: 'rate', label, unit: 'rate', better: 'higher', goals })
// Where the generator saturates, the rate is its limit; what the server spent
// per operation still compares the servers.
const serverCpuPerOp = (label) => ({ key: 'cpuPerOp', label, unit: 'micros', better: 'lower' })
// Frame bytes (headers included) of each message the server sent, as the generator read them.
const wireBytes = (label) => ({ key: 'wireBytes', label, unit: 'bytes', better: 'lower' })

const sizes = DASHBOARD_MESSAGES.map((message) => message.length)
const JSON_SIZES = `JSON ${Math.min(...sizes)}–${Math.max(...sizes)} B`

/** Adds the server's CPU time per operation (µs) to a timed job's result. */
async function withCpuPerOp (pending) {
  const result = await pending
  if (result?.metrics?.rate > 0 && typeof result.serverCpu === 'number') {
    result.metrics.cpuPerOp = (result.serverCpu / 100) * 1e6 / result.metrics.rate
  }
  return result
}

// Rooms (bench/lib/rooms.mjs): the broadcast job on a route where every
// connection, the sender included, is in the measured room and ten of its own.
function roomScenario (id, title, path) {
  return {
    id,
    title,
    describe: (p) => `${p.receivers + 1} subscribers (sender included) of 1 of ${roomsHeld(p.receivers + 1)} rooms, ${p.inflight} in flight`,
    full: { receivers: 999, inflight: 32 },
    smoke: { receivers: 19, inflight: 2 },
    requires: 'topics',
    metrics: [rate('deliveries/s'), serverCpuPerOp('server CPU µs/delivery')],
    measure: (ctx) => withCpuPerOp(timedJob(ctx, { kind: 'broadcast', path, payload: SMALL, ...ctx.params }))
  }
}

function echoScenario (id, title, size, full, smoke, goals) {
  return {
    id,
    title,
    describe: (p) => `${p.conns} conn × ${p.inflight} in flight`,
    full,
    smoke,
    metrics: [rate('msg/s', goals), serverCpuPerOp('server CPU µs/msg')],
    measure: (ctx) => withCpuPerOp(timedJob(ctx, { kind: 'echo', path: '/echo', payload: { kind: 'binary', size }, ...ctx.params }))
  }
}

const IDLE_JOBS = { open: 'idle-open', close: 'idle-close', path: '/echo' }
const DEFLATE_IDLE_JOBS = { open: 'deflate-idle-open', close: 'deflate-idle-close', path: DEFLATE_ECHO_ROUTE }

// Run on a server process of its own (onOwnProcess): on the long-lived one,
// allocator pages freed by earlier scenarios would absorb the new connections
// and hide their cost, by an amount that depends on which scenarios ran.
async function measureIdle (ctx, jobs = IDLE_JOBS) {
  const { params, load, server } = ctx
  const before = await server.memory()
  const opened = await load.run({ kind: jobs.open, port: server.port, path: jobs.path, count: params.count }, IDLE_TIMEOUT_MS)
  if (opened.failure) return opened
  await sleep(ctx.smoke ? IDLE_SETTLE_MS.smoke : IDLE_SETTLE_MS.full)
  const after = await server.memory()
  const closed = await load.run({ kind: jobs.close, verify: true, payload: SMALL }, IDLE_TIMEOUT_MS)
  if (closed.failure) return closed
  const js = (memory) => memory.heapUsed + memory.external
  return {
    metrics: {
      rss: (after.rss - before.rss) / opened.opened,
      heap: (js(after) - js(before)) / opened.opened
    },
    compressedShare: opened.compressedShare
  }
}

// The broadcast job; `goals` on its deliveries/s.
function broadcastScenario (id, inflight, goals) {
  return {
    id,
    title: 'broadcast 32 B',
    describe: (p) => `${p.receivers} receivers + sender, ${p.inflight} broadcasts in flight`,
    full: { receivers: 1000, inflight },
    // Fewer in flight than in full runs where that is more than 2, so the two rows keep their names.
    smoke: { receivers: 20, inflight: Math.min(inflight, 4) },
    requires: 'broadcast',
    metrics: [rate('deliveries/s', goals), serverCpuPerOp('server CPU µs/delivery')],
    measure: (ctx) => withCpuPerOp(timedJob(ctx, { kind: 'broadcast', path: '/broadcast', payload: SMALL, ...ctx.params }))
  }
}

export const SCENARIOS = [
  // The raw server is the ceiling of the setup: at 32 B, within 0.8× of it.
  echoScenario('echo-32b', 'echo 32 B', 32, { conns: 100, inflight: 16 }, { conns: 4, inflight: 4 }, [{ reference: 'raw', atLeast: 0.8 }]),
  ...freshAndWarmed(echoScenario('echo-16k', 'echo 16 KiB', 16 * 1024, { conns: 10, inflight: 4 }, { conns: 2, inflight: 2 },
    [{ reference: 'ws', atLeast: 1.2 }])),
  ...freshAndWarmed(echoScenario('echo-1m', 'echo 1 MiB', 1024 * 1024, { conns: 1, inflight: 2 }, { conns: 1, inflight: 2 },
    [{ reference: 'ws', atLeast: 1.0 }])),
  {
    id: 'handshake',
    title: 'handshakes',
    describe: (p) => `connect, 1 msg, close; ${p.concurrency} concurrent`,
    full: { concurrency: 50 },
    smoke: { concurrency: 4 },
    metrics: [rate('conn/s', [{ reference: 'fastify-websocket', atLeast: 1.5 }]), serverCpuPerOp('server CPU µs/handshake')],
    measure: (ctx) => withCpuPerOp(timedJob(ctx, { kind: 'handshake', path: '/echo', payload: SMALL, ...ctx.params }))
  },
  ...freshAndWarmed({
    id: 'idle',
    title: 'idle connections',
    describe: (p) => `${p.count} open`,
    full: { count: 10_000 },
    smoke: { count: 100 },
    untimed: true,
    metrics: [
      { key: 'rss', label: 'server RSS per conn', unit: 'bytes', better: 'lower', goals: [{ reference: 'ws', atMost: 0.7 }] },
      { key: 'heap', label: 'server heap+external per conn', unit: 'bytes', better: 'lower' }
    ],
    measure: measureIdle
  }),
  // Enough broadcasts in flight that each receiver read carries several
  // frames: at one per read the generator, not the server, would be the limit.
  broadcastScenario('broadcast', 32),
  // Two in flight: each receiver read carries about one frame, so this is the
  // server's cost of reaching 1,000 sockets a message at a time, where
  // uWebSockets.js (C++) is the reference.
  broadcastScenario('broadcast-2', 2, [{ reference: 'uws', atLeast: 0.8 }]),
  // Ours: app.websocket.publish. ws and @fastify/websocket: a Map of rooms and a loop over the room's Set.
  roomScenario('publish', 'topic publish 32 B', PUBLISH_ROUTE),
  // Ours: the same room in the route's own Map, sent with broadcast({ clients }); ws as in `publish`.
  roomScenario('room-broadcast', 'room by broadcast({ clients }) 32 B', ROOM_BROADCAST_ROUTE),
  // Topics across processes: INSTANCES server processes on one Redis (bench/lib/cross-instance.mjs),
  // the generator's job in bench/load/fanout.mjs. Ratios are to socket.io with its Redis adapter.
  {
    id: 'cross-instance',
    title: 'publish across instances on Redis, 32 B text',
    describe: (p) => `${INSTANCES} instances × ${p.perInstance} subscribers, publisher on instance 1, ${p.inflight} in flight`,
    full: { perInstance: 500, inflight: 32 },
    smoke: { perInstance: 10, inflight: 2 },
    reference: 'socket.io',
    // Two windows (throughput, then latency) and a topology to start and stop.
    windows: 2,
    setupMs: { full: 4000, smoke: 1500 },
    metrics: [
      rate('deliveries/s'),
      serverCpuPerOp('CPU µs/delivery (instances + Redis)'),
      { key: 'p50', label: 'publish → delivery p50 µs, 1 in flight', unit: 'micros', better: 'lower' },
      { key: 'p99', label: 'publish → delivery p99 µs, 1 in flight', unit: 'micros', better: 'lower' }
    ],
    measure: (ctx) => withCpuPerOp(measureCrossInstance(ctx))
  },
  {
    id: 'latency',
    title: 'latency 32 B',
    describe: () => '1 conn × 1 in flight',
    full: { conns: 1, inflight: 1 },
    smoke: { conns: 1, inflight: 1 },
    metrics: [
      { key: 'p50', label: 'p50 µs', unit: 'micros', better: 'lower' },
      { key: 'p99', label: 'p99 µs', unit: 'micros', better: 'lower' }
    ],
    measure: (ctx) => timedJob(ctx, { kind: 'echo', path: '/echo', payload: SMALL, latency: true, ...ctx.params })
  },
  {
    id: 'json',
    title: 'validated JSON echo',
    describe: (p) => `${p.conns} conn × ${p.inflight} in flight`,
    full: { conns: 100, inflight: 16 },
    smoke: { conns: 2, inflight: 2 },
    requires: 'json',
    metrics: [rate('msg/s')],
    measure: (ctx) => timedJob(ctx, { kind: 'echo', path: JSON_ROUTE, payload: { kind: 'json' }, ...ctx.params })
  },
  // permessage-deflate (RFC 7692): the generator offers it as browsers do,
  // sends each message deflated on its own (RSV1), and inflates replies to
  // check them. The messages: bench/lib/dashboard-messages.mjs.
  {
    id: 'deflate-json',
    title: 'deflate echo',
    describe: (p) => `${JSON_SIZES}, ${p.conns} conn × ${p.inflight} in flight`,
    full: { conns: 100, inflight: 4 },
    smoke: { conns: 2, inflight: 2 },
    requires: 'deflate',
    metrics: [rate('msg/s'), serverCpuPerOp('server CPU µs/msg'), wireBytes('bytes/msg on the wire')],
    measure: (ctx) => withCpuPerOp(timedJob(ctx, { kind: 'deflate-echo', path: DEFLATE_ECHO_ROUTE, ...ctx.params }))
  },
  {
    id: 'deflate-broadcast',
    title: 'deflate broadcast',
    describe: (p) => `${JSON_SIZES}, ${p.receivers} receivers + sender, ${p.inflight} in flight`,
    full: { receivers: 1000, inflight: 32 },
    smoke: { receivers: 20, inflight: 2 },
    requires: 'deflate',
    metrics: [rate('deliveries/s'), serverCpuPerOp('server CPU µs/delivery'), wireBytes('bytes/delivery on the wire')],
    measure: (ctx) => withCpuPerOp(timedJob(ctx, { kind: 'deflate-broadcast', path: DEFLATE_BROADCAST_ROUTE, ...ctx.params }))
  },
  {
    id: 'deflate-idle',
    title: 'idle deflate connections',
    describe: (p) => `${p.count} open, each after one ${JSON_SIZES} echo`,
    full: { count: 2000 },
    smoke: { count: 50 },
    untimed: true,
    requires: 'deflate',
    metrics: [
      { key: 'rss', label: 'server RSS per conn', unit: 'bytes', better: 'lower' },
      { key: 'heap', label: 'server heap+external per conn', unit: 'bytes', better: 'lower' }
    ],
    age: 'fresh',
    measure: onOwnProcess('fresh', (ctx) => measureIdle(ctx, DEFLATE_IDLE_JOBS))
  },
  // WebSocket over HTTP/2 (RFC 8441) against HTTP/1.1, both over TLS, on one
  // server of ours (bench/lib/http2-compare.mjs); a table of its own in the report.
  {
    id: 'http2',
    title: 'WebSocket over HTTP/2 (RFC 8441) vs HTTP/1.1, both over TLS: rfc6455',
    describe: (p) => `${p.count} idle, ${p.concurrency} opening at a time, ${p.conns} × ${p.inflight} echoing`,
    full: { count: 10_000, concurrency: 50, conns: 100, inflight: 16 },
    smoke: { count: 50, concurrency: 4, conns: 4, inflight: 4 },
    // Nobody else serves RFC 8441: no cells for the other servers.
    servers: ['rfc6455'],
    // Set-up and echo, each for both transports.
    windows: 4,
    setupMs: { full: 45_000, smoke: 2000 },
    metrics: HTTP2_ROWS.flatMap((row) => TRANSPORTS.map((transport) => ({ ...row, key: row.key + transport.suffix }))),
    section ({ byServer, params }) {
      return renderHttp2Section({ rounds: byServer.get('rfc6455'), params, title: this.title })
    },
    measure: measureHttp2
  }
]

/** Rough wall time of one round, for the estimate printed at the start. */
export function estimateRoundMs (scenarios, serverIds, timing, smoke) {
  const mode = smoke ? 'smoke' : 'full'
  let total = 0
  for (const scenario of scenarios) {
    const serverCount = scenario.servers === undefined ? serverIds.length : serverIds.filter((id) => scenario.servers.includes(id)).length
    // A fresh process's window starts at once (bench/lib/process-age.mjs).
    const warmupMs = scenario.age === 'fresh' ? 0 : timing.warmupMs
    let perCell = scenario.untimed
      ? (smoke ? 150 : 5000)
      : warmupMs + timing.durationMs * (scenario.windows ?? 1) + (smoke ? 100 : 400)
    perCell += scenario.setupMs?.[mode] ?? 0
    if (scenario.age !== undefined) perCell += AGE_SETUP_MS.start[mode]
    if (scenario.age === 'warmed') perCell += AGE_SETUP_MS.warmUp[mode]
    total += perCell * serverCount
  }
  return total
}
