// The servers under test and how to start one. Each runs in its own process
// on the server core; the load generator has the other core.

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { NodeChild } from './processes.mjs'

// `instances`: how the server runs as several instances on one Redis (the
// cross-instance scenario, bench/lib/cross-instance.mjs): the instance's script and
// the protocol the generator speaks to it. `only`: the scenarios a server is
// measured in; it is started only when one of them runs. `runtime`: what runs
// the script (RUNTIMES below; Node.js unless given). `reference`: a server
// that shows where the fastest WebSocket servers are, not one this project
// competes with on every platform: when it cannot start here (no binary for
// this OS, CPU or Node.js version) the run says why and a smoke run still
// passes; a wrong echo from it fails a smoke run like any other.
export const SERVERS = [
  { id: 'raw', script: 'bench/servers/raw.mjs', nodeArgs: [] },
  {
    id: 'ws',
    script: 'bench/servers/ws.mjs',
    nodeArgs: [],
    instances: { script: 'bench/servers/cross-instance/ws.mjs', protocol: 'websocket' }
  },
  { id: 'fastify-websocket', script: 'bench/servers/fastify-websocket.mjs', nodeArgs: [] },
  // Bun's own Bun.serve({ websocket }), run by the Bun binary of the exact devDependency.
  { id: 'bun', script: 'bench/servers/bun.mjs', runtime: 'bun', nodeArgs: [], reference: true },
  // uWebSockets.js on Node.js; its npm build has binaries for Node.js 16, 18 and 20 only.
  { id: 'uws', script: 'bench/servers/uws.mjs', nodeArgs: [], reference: true },
  // The plugin as published: its ES module build in dist/ (run.mjs builds it when stale).
  {
    id: 'rfc6455',
    script: 'bench/servers/rfc6455.mjs',
    nodeArgs: [],
    instances: { script: 'bench/servers/cross-instance/rfc6455.mjs', protocol: 'websocket' }
  },
  // The usual way to scale rooms out today; measured where it has a counterpart.
  {
    id: 'socket.io',
    script: 'bench/servers/cross-instance/socket-io.mjs',
    nodeArgs: [],
    only: ['cross-instance'],
    instances: { script: 'bench/servers/cross-instance/socket-io.mjs', protocol: 'socket.io' }
  }
]

export const SERVER_CPU = 0
export const LOAD_CPU = 1
const START_TIMEOUT_MS = 60_000
const MEMORY_TIMEOUT_MS = 30_000

const require = createRequire(import.meta.url)
// The Linux x64 build of Bun that the devDependency of that name ships; npm
// installs it only on Linux x64.
const BUN_PACKAGE = '@oven/bun-linux-x64'

function bunBinary () {
  let packageJson
  try {
    packageJson = require.resolve(`${BUN_PACKAGE}/package.json`)
  } catch {
    throw new Error(`Bun is not installed: ${BUN_PACKAGE} (a devDependency) is for Linux x64 only, and this is ${process.platform}-${process.arch}`)
  }
  const binary = join(dirname(packageJson), 'bin', 'bun')
  if (!existsSync(binary)) throw new Error(`${BUN_PACKAGE} is installed but has no ${binary}`)
  return binary
}

/**
 * The executable and its flags for a server's runtime. Throws why it cannot
 * run here. Bun has no --expose-gc: its script collects with Bun.gc(true).
 */
const RUNTIMES = {
  node: (definition) => ({
    executable: process.execPath,
    // gc is exposed so memory is read after a full collection.
    // BENCH_SERVER_NODE_ARGS adds flags for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    args: ['--expose-gc', ...definition.nodeArgs, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)]
  }),
  bun: () => ({ executable: bunBinary(), args: [] })
}

/** True for a server whose failure to start does not fail a smoke run (`reference` above). */
export function isReferenceServer (id) {
  return SERVERS.find((server) => server.id === id)?.reference === true
}

/**
 * Starts one server process (`env` added to its environment). Resolves with
 * a handle, or rejects with the reason the server could not start (its
 * module failed to load, ...).
 */
export async function startServer (definition, { pin, env }) {
  const { executable, args } = RUNTIMES[definition.runtime ?? 'node'](definition)
  const child = new NodeChild({
    name: `server ${definition.id}`,
    script: definition.script,
    executable,
    nodeArgs: args,
    cpu: SERVER_CPU,
    pin,
    env
  })
  let hello
  try {
    hello = await child.firstMessage(START_TIMEOUT_MS)
  } catch (error) {
    await child.stop()
    throw error
  }
  if (!hello.ready) {
    await child.stop()
    throw new Error(hello.failed ?? 'unexpected start-up message')
  }
  return {
    id: definition.id,
    pid: child.pid,
    port: hello.port,
    features: hello.features,
    get alive () { return child.alive },
    async memory () {
      const answer = await child.request({ request: 'memory' }, MEMORY_TIMEOUT_MS)
      return answer.memory
    },
    stop: () => child.stop()
  }
}

/** The load generator process, on its own core. */
export async function startLoadGenerator ({ pin }) {
  const child = new NodeChild({ name: 'load generator', script: 'bench/load/main.mjs', cpu: LOAD_CPU, pin })
  try {
    await child.firstMessage(START_TIMEOUT_MS)
  } catch (error) {
    await child.stop()
    throw error
  }
  return {
    pid: child.pid,
    get alive () { return child.alive },
    async run (job, timeoutMs) {
      const answer = await child.request({ job }, timeoutMs)
      return answer.result
    },
    stop: () => child.stop()
  }
}
