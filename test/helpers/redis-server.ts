// A real redis-server for the adapter tests: its own process on a free
// loopback port, in a temp dir, with persistence off (a restart starts empty,
// as a crashed cache would), stopped by its PID at teardown. `restart()`
// comes back on the same port, so clients reconnect to it by themselves.

import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import Redis from 'ioredis'
import type { Tap } from './app.js'

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const HOST = '127.0.0.1'
/** On a loaded 2-core machine a start takes milliseconds; this only turns a hang into a failure. */
const START_TIMEOUT = 20_000
const STOP_TIMEOUT = 10_000

export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** The PID of the running process, undefined while stopped. */
  readonly pid: number | undefined
  readonly running: boolean
  /** The server's log lines (the last few hundred), for failure messages. */
  readonly log: string[]
  /** SIGTERM to its PID, resolves once it exited (SIGKILL if it has not after 10 s). */
  stop (): Promise<void>
  /** SIGKILL to its PID (a crash), resolves once it exited. */
  kill (): Promise<void>
  /** Stops it if running, then starts it again on the same port, empty. */
  restart (): Promise<void>
  /** A new ioredis client for looking at the server (PUBSUB, CLIENT LIST), disconnected at teardown. */
  client (): Redis
}

/** A port nobody listens on now (redis-server gets it next; `start` retries if someone else was faster). */
async function freePort (): Promise<number> {
  const probe = createServer()
  probe.listen(0, HOST)
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

/** Whether `proc` was spawned and has not exited. */
export const isRunning = (proc: ChildProcess): boolean => proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null

/** One redis-server process, as `spawnRedisServer` started it. */
export interface SpawnedRedisServer {
  readonly port: number
  readonly proc: ChildProcess
  /** Resolves once the process exited, or could not be spawned at all; never rejects. */
  readonly exited: Promise<void>
  /** Its log lines (stdout by line, stderr by chunk; the last 500), for failure messages. */
  readonly log: string[]
  /**
   * true once its log says it accepts connections (an event: the line is
   * written after its listening sockets are bound); false once it exited
   * because its port (or a cluster node's bus port) was taken. Rejects if it
   * could not be spawned, exited for anything else, or was not ready within
   * START_TIMEOUT; by then it was killed (SIGKILL to its PID) and has exited,
   * so whatever happened, the process does not outlive the test.
   */
  readonly ready: Promise<boolean>
}

/**
 * Spawns redis-server on 127.0.0.1:`port` in `dir`, persistence off (nothing
 * written, a restart comes back empty), logging to stdout where the
 * readiness line is read. `extraArgs` go last (e.g. `--cluster-enabled yes`);
 * `log` collects the log lines (pass the same array to keep one log across
 * restarts). Stopping it is the caller's: `stopRedisServer`.
 */
export function spawnRedisServer (port: number, dir: string, extraArgs: string[] = [], log: string[] = []): SpawnedRedisServer {
  const name = `redis-server on ${HOST}:${port}`
  const proc = spawn(REDIS_SERVER, [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--logfile', '',
    '--daemonize', 'no',
    ...extraArgs
  ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  // Not events.once: it would reject on a spawn 'error', which `ready` reports.
  // 'error' without 'exit' (and without a PID) when it could not be spawned at all.
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => resolve())
    proc.on('error', () => { if (proc.pid === undefined) resolve() })
  })
  const keep = (line: string): void => {
    log.push(line)
    if (log.length > 500) log.shift()
  }
  const lines = createInterface({ input: proc.stdout! })
  // Everything it printed has been read (the exit may come before or after).
  const stdoutDone = new Promise<void>((resolve) => { lines.once('close', () => resolve()) })
  proc.stderr!.setEncoding('utf8').on('data', keep)
  let addressInUse = false
  const outcome = new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`${name} did not get ready within ${START_TIMEOUT} ms:\n${log.join('\n')}`))
    }, START_TIMEOUT)
    lines.on('line', (line) => {
      keep(line)
      if (line.includes('Address already in use')) addressInUse = true
      if (line.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve(true)
      }
    })
    proc.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    proc.once('exit', (code, signal) => {
      clearTimeout(timer)
      // The last lines may still be on their way: judge once they are all read.
      void stdoutDone.then(() => {
        if (addressInUse) resolve(false)
        else reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${log.join('\n')}`))
      })
    })
  })
  const ready = outcome.then(async (ok) => {
    if (!ok) await exited
    return ok
  }, async (err: unknown) => {
    // By PID: the process this helper started, nothing else.
    if (isRunning(proc)) process.kill(proc.pid!, 'SIGKILL')
    await exited
    throw err
  })
  return { port, proc, exited, log, ready }
}

/**
 * `signal` (SIGTERM unless told) to its PID, SIGKILL if it has not exited
 * after STOP_TIMEOUT; resolves once it exited (at once if it already had).
 */
export async function stopRedisServer (server: Pick<SpawnedRedisServer, 'proc' | 'exited'>, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const { proc } = server
  if (isRunning(proc)) {
    process.kill(proc.pid!, signal)
    const timer = setTimeout(() => { if (isRunning(proc)) process.kill(proc.pid!, 'SIGKILL') }, STOP_TIMEOUT)
    await server.exited
    clearTimeout(timer)
  }
  await server.exited
}

/**
 * Starts redis-server on 127.0.0.1 and resolves once its log says it accepts
 * connections (an event: the line is written after the listening socket is
 * bound). Everything it started is stopped, and its temp dir removed, at `t`'s
 * teardown.
 */
export async function startRedisServer (t: Tap, extraArgs: string[] = []): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-rfc6455-redis-'))
  const log: string[] = []
  const clients = new Set<Redis>()
  let current: SpawnedRedisServer | undefined
  let port = 0

  /** One attempt on port `p`: true once ready, false if the port was taken. */
  const launch = async (p: number): Promise<boolean> => {
    current = spawnRedisServer(p, dir, extraArgs, log)
    let ok = false
    try {
      ok = await current.ready
    } finally {
      // Not ready: it has exited (`ready` saw to that).
      if (!ok) current = undefined
    }
    return ok
  }

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    if (current === undefined) return
    await stopRedisServer(current, signal)
    current = undefined
  }

  const server: RedisServer = {
    host: HOST,
    get port () { return port },
    get url () { return `redis://${HOST}:${port}` },
    get pid () { return current !== undefined && isRunning(current.proc) ? current.proc.pid : undefined },
    get running () { return current !== undefined && isRunning(current.proc) },
    log,
    stop: async () => { await signalAndWait('SIGTERM') },
    kill: async () => { await signalAndWait('SIGKILL') },
    restart: async () => {
      await signalAndWait('SIGTERM')
      // redis-server binds with SO_REUSEADDR, so the port's old connections in
      // TIME_WAIT do not stop it; a few tries in case another process took it meanwhile.
      for (let attempt = 0; attempt < 5; attempt++) {
        if (await launch(port)) return
      }
      throw new Error(`redis-server could not bind port ${port} again`)
    },
    client: () => {
      // One retry: a look at a stopped server fails after the first failed
      // reconnect instead of waiting for it (pollUntil tries again).
      const client = new Redis({ host: HOST, port, lazyConnect: false, maxRetriesPerRequest: 1 })
      client.on('error', () => {}) // reconnects by itself; errors surface on the commands
      clients.add(client)
      return client
    }
  }

  t.teardown(async () => {
    for (const c of clients) c.disconnect()
    await signalAndWait('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  })

  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort()
    if (await launch(port)) return server
  }
  throw new Error('redis-server found no free port in 5 tries')
}

/**
 * Polls `check` until it returns true, at most `timeout` ms. Only for state on
 * the Redis server (PUBSUB NUMSUB, CLIENT LIST) that no client is told about:
 * a subscription is in place once Redis has executed the SUBSCRIBE, and
 * nothing in the app emits an event for that.
 */
export async function pollUntil (check: () => Promise<boolean> | boolean, what: string, timeout = 20_000, interval = 20): Promise<void> {
  const deadline = Date.now() + timeout
  let last: unknown
  for (;;) {
    try {
      if (await check()) return
      last = undefined
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms${last === undefined ? '' : ` (last error: ${String(last)})`}`)
    await new Promise((resolve) => setTimeout(resolve, interval))
  }
}

/** Subscriber counts of `channels`, as `PUBSUB NUMSUB` (or `SHARDNUMSUB`) reports them. */
export async function numsub (redis: Redis, channels: string[], sharded = false): Promise<Record<string, number>> {
  const reply = await redis.call('PUBSUB', sharded ? 'SHARDNUMSUB' : 'NUMSUB', ...channels) as Array<string | number>
  const counts: Record<string, number> = {}
  for (let i = 0; i < reply.length; i += 2) counts[String(reply[i])] = Number(reply[i + 1])
  return counts
}

/** The channels with at least one subscriber matching `pattern`, sorted (`PUBSUB CHANNELS` / `SHARDCHANNELS`). */
export async function channels (redis: Redis, pattern = '*', sharded = false): Promise<string[]> {
  const reply = await redis.call('PUBSUB', sharded ? 'SHARDCHANNELS' : 'CHANNELS', pattern) as string[]
  return reply.map(String).sort()
}
