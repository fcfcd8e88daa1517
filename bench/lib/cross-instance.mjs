// The cross-instance scenario's topology, built afresh for each cell: a
// redis-server of its own, then INSTANCES processes of the server under test
// (its `instances` script, bench/lib/servers.mjs) connected to it, all on the
// server core; the load generator spreads the room's members over them and
// publishes on the first (bench/load/fanout.mjs). Everything is stopped by
// PID when the cell ends.

import { INSTANCE_ROUTE } from './rooms.mjs'
import { startRedisServer } from './redis-server.mjs'
import { SERVER_CPU, startServer } from './servers.mjs'

export const INSTANCES = 2
// Slack on top of the job's two windows: connecting, the handshakes, waiting
// for the instances' subscriptions to reach Redis, draining, closing.
const JOB_SLACK_MS = 60_000

/** Runs one cell of the cross-instance scenario; `ctx` as scenarios' `measure` gets it. */
export async function measureCrossInstance (ctx) {
  const { definition, params, timing, pin } = ctx
  const setup = definition.instances
  if (setup === undefined) return { unsupported: true, reason: 'no instances-on-Redis setup for this server in the benchmark' }
  const redis = await startRedisServer({ pin, cpu: SERVER_CPU })
  const running = []
  try {
    const started = await Promise.allSettled(Array.from({ length: INSTANCES }, (_, i) => startServer(
      { id: `${definition.id} instance ${i + 1}`, script: setup.script, nodeArgs: definition.nodeArgs },
      { pin, env: { BENCH_REDIS_URL: redis.url } }
    )))
    for (const outcome of started) if (outcome.status === 'fulfilled') running.push(outcome.value)
    const failed = started.find((outcome) => outcome.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    return await ctx.load.run({
      kind: 'fanout',
      protocol: setup.protocol,
      route: INSTANCE_ROUTE,
      ports: running.map((instance) => instance.port),
      // Redis works for every delivery across instances: its CPU counts with the servers'.
      serverPids: [...running.map((instance) => instance.pid), redis.pid],
      clockTicks: ctx.clockTicks,
      checkAll: ctx.smoke,
      warmupMs: timing.warmupMs,
      durationMs: timing.durationMs,
      ...params
    }, timing.warmupMs + 2 * timing.durationMs + JOB_SLACK_MS)
  } finally {
    await Promise.all(running.map((instance) => instance.stop()))
    await redis.stop()
  }
}
