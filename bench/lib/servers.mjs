// The servers under test and how to start one. Each runs in its own process
// on the server core; the load generator has the other core.

import { NodeChild } from './processes.mjs'

// `instances`: how the server runs as several instances on one Redis (the
// cross-instance scenario, bench/lib/cross-instance.mjs): the instance's script and
// the protocol the generator speaks to it. `only`: the scenarios a server is
// measured in; it is started only when one of them runs.
export const SERVERS = [
  { id: 'raw', script: 'bench/servers/raw.mjs', nodeArgs: [] },
  {
    id: 'ws',
    script: 'bench/servers/ws.mjs',
    nodeArgs: [],
    instances: { script: 'bench/servers/cross-instance/ws.mjs', protocol: 'websocket' }
  },
  { id: 'fastify-websocket', script: 'bench/servers/fastify-websocket.mjs', nodeArgs: [] },
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

/**
 * Starts one server process (`env` added to its environment). Resolves with
 * a handle, or rejects with the reason the server could not start (its
 * module failed to load, ...).
 */
export async function startServer (definition, { pin, env }) {
  const child = new NodeChild({
    name: `server ${definition.id}`,
    script: definition.script,
    // gc is exposed so memory is read after a full collection.
    // BENCH_SERVER_NODE_ARGS adds flags for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    nodeArgs: ['--expose-gc', ...definition.nodeArgs, ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)],
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
