// The 100,000-connection scenario (issue 15): `npm run bench:100k`, not part
// of `npm test`. Loopback only, fixed counts, a timeout on every phase.
//
//   1. start   the plugin (dist/esm, rebuilt if stale) with its defaults and
//              heartbeats on, in N cluster workers (bench/c100k/server.mjs),
//              pinned to CPU 0; M generators (bench/c100k/generator.mjs),
//              each on its own 127.0.0.x source address, pinned to CPU 1;
//              the servers' RSS before any connection is the baseline
//   2. open    every connection, a bounded number of handshakes at a time
//   3. idle    held for --idle-seconds: the server's heartbeats answered,
//              every connection pinged once to time ping → pong round trips
//   4. close   a closing handshake on every connection
//
// Why several processes: one process holds at most the file descriptor limit
// in sockets (20,000 on the machine this was written on, and not raisable
// there), so the servers and generators are sized from the hard limit, read
// at run time. Exits 1 if any connection failed to open, was dropped by
// either side, missed a pong or a heartbeat, or did not close cleanly.

import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import { ensureBuilt } from './lib/build.mjs'
import { describeEnvironment } from './lib/environment.mjs'
import { killOnExit, NodeChild } from './lib/processes.mjs'
import { ephemeralPorts, sampleAll } from './c100k/proc.mjs'
import { checksOf, formatReport } from './c100k/report.mjs'

const USAGE = `Usage: node bench/c100k.mjs [options]   (npm run bench:100k -- [options])
  --connections N     connections held at once (default 100000)
  --idle-seconds S    how long they are held idle (default 60)
  --heartbeat-ms MS   the plugin's heartbeatInterval (default 15000)
  --help`

// File descriptors each process keeps for itself beyond its sockets: Node's
// own (stdio, epoll, the IPC channel, libuv's thread pool) are about 30;
// the rest covers handshakes in flight and handles being passed by cluster.
const FD_HEADROOM = 1000
// Of the ephemeral port range, the share a generator plans to bind on its
// source address: the rest is slack for ports found in use and skipped.
const PORT_SHARE = 0.9
// Handshakes in flight across all generators: half of Node's default listen
// backlog (511), so the accept queue cannot overflow even when the cluster
// primary falls behind (an overflow drops the SYN and costs a 1 s retransmit).
const IN_FLIGHT = 256
// A handshake that waits behind 255 others on a busy server still answers
// within seconds; 30 s only cuts off one that is lost.
const HANDSHAKE_TIMEOUT_MS = 30_000
// Phase bounds: opening and closing at no less than 500 a second, plus a
// minute for start-up; idle: its length, the generators' pong grace, 30 s.
const START_TIMEOUT_MS = 60_000
const perConnectionMs = (connections) => 60_000 + 2 * connections
const SETTLE_TIMEOUT_MS = 10_000
const SETTLE_POLL_MS = 200
const RESULTS = new URL('./results/c100k.md', import.meta.url)

function positiveInteger (value, name, fallback) {
  if (value === undefined) return fallback
  const number = Number(value)
  if (!Number.isInteger(number) || number < 1) throw new Error(`--${name} must be a positive integer`)
  return number
}

function parseOptions (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string' },
      'idle-seconds': { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      help: { type: 'boolean', default: false }
    }
  })
  return {
    help: values.help,
    connections: positiveInteger(values.connections, 'connections', 100_000),
    // A minute: several heartbeats at the default interval below.
    idleSeconds: positiveInteger(values['idle-seconds'], 'idle-seconds', 60),
    // 15 s: four heartbeats in the idle minute, and one every 15 s is what
    // keeps a connection alive through the usual 30–60 s proxy idle timeouts.
    heartbeatMs: positiveInteger(values['heartbeat-ms'], 'heartbeat-ms', 15_000)
  }
}

/** How many server workers and generators, from the fd limit and the port range. */
function plan (connections, fileLimit) {
  const perProcess = Number.isFinite(fileLimit) ? fileLimit - FD_HEADROOM : connections
  if (perProcess < 1) throw new Error(`the file descriptor limit (${fileLimit}) leaves no room for sockets`)
  const ports = ephemeralPorts()
  const perAddress = Math.floor((ports[1] - ports[0] + 1) * PORT_SHARE)
  const workers = Math.ceil(connections / perProcess)
  const generators = Math.max(workers, Math.ceil(connections / perAddress))
  if (generators > 253) throw new Error(`${generators} generators would need more 127.0.0.x addresses than there are`)
  const shares = Array.from({ length: generators }, (_, i) =>
    Math.floor(connections / generators) + (i < connections % generators ? 1 : 0))
  return { perProcess, workers, generators, shares, ports }
}

const log = (line) => process.stderr.write(`${line}\n`)

async function startServer (env, options, layout) {
  const server = new NodeChild({
    name: 'c100k server',
    script: 'bench/c100k/server.mjs',
    cpu: 0,
    pin: env.pin,
    env: { C100K_WORKERS: String(layout.workers), C100K_HEARTBEAT_MS: String(options.heartbeatMs) }
  })
  const ready = await server.firstMessage(START_TIMEOUT_MS)
  if (!ready.ready) throw new Error(`the server did not start: ${ready.failed}`)
  // Forked by the primary, so not ours to know otherwise: killed by PID too.
  for (const pid of ready.workerPids) killOnExit(pid)
  return { server, port: ready.port, pids: [ready.primaryPid, ...ready.workerPids], workerPids: ready.workerPids }
}

async function startGenerators (env, layout) {
  const generators = layout.shares.map((_, i) => new NodeChild({
    name: `c100k generator ${i + 1}`,
    script: 'bench/c100k/generator.mjs',
    cpu: 1,
    pin: env.pin
  }))
  const ready = await Promise.all(generators.map((g) => g.firstMessage(START_TIMEOUT_MS)))
  return { generators, startCpu: ready.map((message) => message.cpu) }
}

async function serverStats (server) {
  const answer = await server.request({ request: 'stats' }, SETTLE_TIMEOUT_MS)
  if (answer.failed !== undefined) throw new Error(answer.failed)
  return answer.workers
}

/** One reading of the servers: /proc for every process, the workers' own counts. */
async function reading (servers) {
  const workers = await serverStats(servers.server)
  return { at: performance.now(), proc: sampleAll(servers.pids), workers }
}

/** Sends `body(i)` to every generator at once; resolves with their answers and the wall time. */
async function all (generators, body, timeoutMs) {
  const started = performance.now()
  const answers = await Promise.all(generators.map((g, i) => g.request(body(i), timeoutMs)))
  const failed = answers.find((answer) => answer.failed !== undefined)
  if (failed !== undefined) throw new Error(failed.failed)
  return { answers, ms: performance.now() - started }
}

/** Polls the workers until none holds a connection; the last reading. */
async function settled (servers) {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS
  for (;;) {
    const now = await reading(servers)
    const open = now.workers.reduce((sum, w) => sum + w.open, 0)
    if (open === 0 || performance.now() >= deadline) return now
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS))
  }
}

async function run (options) {
  const env = describeEnvironment()
  const layout = plan(options.connections, env.fileLimit)
  log(`c100k: ${options.connections} connections, ${layout.workers} server workers + ${layout.generators} generators ` +
    `(fd limit ${env.fileLimit}), idle ${options.idleSeconds} s, heartbeat ${options.heartbeatMs} ms`)
  ensureBuilt(log)

  const servers = await startServer(env, options, layout)
  const { generators, startCpu } = await startGenerators(env, layout)
  const perGenerator = Math.max(1, Math.floor(IN_FLIGHT / layout.generators))
  const result = { options, layout, env, servers: { primaryPid: servers.pids[0], workerPids: servers.workerPids } }
  // Other work on a shared machine shows in every figure here: the 1-minute load average, at the start and the end.
  result.load = [os.loadavg()[0]]
  result.baseline = await reading(servers)
  result.generatorStartCpu = startCpu

  log('c100k: opening')
  result.open = await all(generators, (i) => ({
    request: 'open',
    port: servers.port,
    path: '/echo',
    count: layout.shares[i],
    // 127.0.0.1 is the server's; each generator its own address after it.
    localAddress: `127.0.0.${i + 2}`,
    ports: layout.ports,
    concurrency: perGenerator,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS
  }), perConnectionMs(options.connections))
  result.opened = await reading(servers)

  log(`c100k: holding idle for ${options.idleSeconds} s`)
  result.idle = await all(generators, () => ({ request: 'idle', seconds: options.idleSeconds }),
    options.idleSeconds * 1000 + 35_000)
  result.idled = await reading(servers)

  log('c100k: closing')
  result.close = await all(generators, () => ({ request: 'close', concurrency: perGenerator, timeoutMs: HANDSHAKE_TIMEOUT_MS }),
    perConnectionMs(options.connections))
  result.closed = await settled(servers)
  result.load.push(os.loadavg()[0])

  for (const g of generators) await g.stop()
  await servers.server.stop()
  return result
}

const options = (() => {
  try {
    return parseOptions(process.argv.slice(2))
  } catch (error) {
    log(`${error.message}\n${USAGE}`)
    process.exit(2)
  }
})()
if (options.help) {
  log(USAGE)
  process.exit(0)
}
try {
  const result = await run(options)
  const checks = checksOf(result)
  const report = formatReport(result, checks)
  process.stdout.write(report)
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true })
  writeFileSync(RESULTS, report)
  log(`c100k: written to bench/results/c100k.md`)
  process.exit(checks.every((check) => check.pass) ? 0 : 1)
} catch (error) {
  log(`c100k failed: ${error?.stack ?? error}`)
  process.exit(1)
}
