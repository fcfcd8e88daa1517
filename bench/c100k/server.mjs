// The c100k server: one Fastify app with this plugin (dist/esm) in
// C100K_WORKERS worker processes behind node:cluster, as a user would run it
// on one machine and one port.
//
// Why cluster rather than N processes on N ports: it is one address for the
// clients, with no load balancer to add, and it is what Node 20 offers (a
// `reusePort` listen option only arrived in Node 22.12/23.1). On Linux the
// primary accepts every connection and hands it round-robin to the workers,
// so the shares are equal, and the primary's cost (accepting and passing the
// handles) is part of what is measured.
//
// The run talks to the primary over IPC (bench/lib/processes.mjs): its first
// message says ready (port, PIDs) or failed; `{ id, request: 'stats' }` is
// answered with every worker's counts. A worker that dies takes the primary
// down, so the run sees it at once instead of as a quiet shortfall.

import cluster from 'node:cluster'
import { monitorEventLoopDelay } from 'node:perf_hooks'

const WORKER_START_TIMEOUT_MS = 60_000
const STATS_TIMEOUT_MS = 10_000

// A worker's counts. Close codes seen, code → count: any before the run's
// closing phase is a dropped connection.
let accepted = 0
const closes = {}
function countClose (code) {
  closes[code] = (closes[code] ?? 0) + 1
}

if (cluster.isPrimary) await primary()
else await worker()

async function primary () {
  process.on('disconnect', () => process.exit(0))
  const count = Number(process.env.C100K_WORKERS)
  const workers = Array.from({ length: count }, () => cluster.fork(process.env))
  cluster.on('exit', (dead, code, signal) => {
    console.error(`c100k: worker ${dead.process.pid} exited (${signal ?? `code ${code}`}); stopping`)
    process.exit(1)
  })
  let ports
  try {
    ports = await withTimeout(Promise.all(workers.map((w) => firstMessage(w))), WORKER_START_TIMEOUT_MS, 'workers did not start')
  } catch (error) {
    process.send({ failed: String(error?.stack ?? error) }, () => process.exit(1))
    return
  }
  const failed = ports.find((message) => message.failed !== undefined)
  if (failed !== undefined) {
    process.send({ failed: failed.failed }, () => process.exit(1))
    return
  }
  const port = ports[0].port
  if (ports.some((message) => message.port !== port)) {
    process.send({ failed: `workers listen on different ports: ${ports.map((message) => message.port)}` }, () => process.exit(1))
    return
  }

  let nextId = 1
  process.on('message', async ({ id, request }) => {
    if (request !== 'stats') return
    try {
      const answers = await withTimeout(Promise.all(workers.map((w) => ask(w, nextId++))), STATS_TIMEOUT_MS, 'workers did not answer')
      process.send({ id, workers: answers })
    } catch (error) {
      process.send({ id, failed: String(error) })
    }
  })
  process.send({ ready: true, port, primaryPid: process.pid, workerPids: workers.map((w) => w.process.pid) })
}

function firstMessage (w) {
  return new Promise((resolve) => w.once('message', resolve))
}

function ask (w, id) {
  return new Promise((resolve) => {
    const onMessage = (message) => {
      if (message?.id !== id) return
      w.off('message', onMessage)
      resolve(message.stats)
    }
    w.on('message', onMessage)
    w.send({ id, request: 'stats' })
  })
}

function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms) })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

async function worker () {
  let app
  try {
    // Loaded here, not at the top: the primary only passes sockets on, and
    // does not need Fastify's memory in its RSS.
    const { default: Fastify } = await import('fastify')
    const { default: plugin } = await import('../../dist/esm/index.js')
    // The plugin's defaults, but for heartbeats, which the scenario is about.
    app = Fastify({ logger: false })
    await app.register(plugin, { heartbeatInterval: Number(process.env.C100K_HEARTBEAT_MS) })
    // The same no-op hook as bench/servers/rfc6455.mjs: a hook on the request path.
    app.addHook('onRequest', async () => {})
    app.get('/echo', { websocket: true }, (conn) => {
      accepted++
      conn.on('message', (data, isBinary) => conn.send(data, { binary: isBinary }))
      conn.on('close', countClose)
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
  } catch (error) {
    process.send({ failed: String(error?.stack ?? error) })
    return
  }
  // How late the event loop ran since the previous stats request (ms): a
  // heartbeat tick walks every connection in one go.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  process.on('message', ({ id, request }) => {
    if (request !== 'stats') return
    const { heapUsed, external } = process.memoryUsage()
    const delay = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
    loopDelay.reset()
    process.send({
      id,
      stats: { pid: process.pid, accepted, open: app.websocket.clients.size, closes, heapUsed, external, delay }
    })
  })
  process.send({ port: app.server.address().port })
}
