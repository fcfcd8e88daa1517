// The Redis of the cross-instance scenario: a redis-server of the run's own,
// on a free loopback port, persistence off, stopped by its PID (and killed
// with the run's other children however the run ends).

import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { killOnExit } from './processes.mjs'

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const HOST = '127.0.0.1'
const START_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 10_000
const PORT_ATTEMPTS = 5

const works = (command, args) => spawnSync(command, args, { stdio: 'ignore' }).status === 0
let deathSignal = null

/** A port nobody listens on now; redis-server gets it next (a start retries if someone else was faster). */
async function freePort () {
  const probe = net.createServer().listen(0, HOST)
  await once(probe, 'listening')
  const { port } = probe.address()
  probe.close()
  await once(probe, 'close')
  return port
}

/**
 * Starts redis-server on 127.0.0.1, pinned to `cpu` when `pin`, and resolves
 * with { url, pid, stop() } once its log says it accepts connections. Rejects
 * with how to get it when redis-server is missing: the scenario is never
 * skipped quietly.
 */
export async function startRedisServer ({ pin, cpu }) {
  if (!works(REDIS_SERVER, ['--version'])) {
    throw new Error(`${REDIS_SERVER} was not found: the cross-instance scenario needs it ` +
      '(apt-get install redis-server, or set REDIS_SERVER to its path)')
  }
  // A run killed with SIGKILL runs no exit hook: the parent-death signal still ends Redis.
  deathSignal ??= works('setpriv', ['--pdeathsig', 'KILL', 'true'])
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'))
  try {
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const started = await launch(await freePort(), dir, pin, cpu)
      if (started !== null) {
        const stop = started.stop
        started.stop = async () => {
          await stop()
          rmSync(dir, { recursive: true, force: true })
        }
        return started
      }
    }
    throw new Error(`redis-server found no free port in ${PORT_ATTEMPTS} tries`)
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

/** One attempt on `port`: the handle, or null if the port was taken. */
async function launch (port, dir, pin, cpu) {
  const command = [
    ...(pin ? ['taskset', '-c', String(cpu)] : []),
    ...(deathSignal ? ['setpriv', '--pdeathsig', 'KILL'] : []),
    // Persistence off: nothing is written, and each cell starts with an empty Redis.
    REDIS_SERVER, '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', '', '--daemonize', 'no'
  ]
  // taskset and setpriv exec what follows them: the PID is redis-server's.
  const child = spawn(command[0], command.slice(1), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  const forget = killOnExit(child.pid)
  const exited = once(child, 'exit').catch(() => {})
  const log = []
  const lines = createInterface({ input: child.stdout })
  child.stderr.setEncoding('utf8').on('data', (chunk) => log.push(chunk))
  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), START_TIMEOUT_MS)
    lines.on('line', (line) => {
      log.push(line)
      if (log.length > 50) log.shift()
      if (line.includes('Ready to accept connections')) {
        clearTimeout(timer)
        resolve('ready')
      }
    })
    child.once('error', (error) => {
      clearTimeout(timer)
      resolve(error.message)
    })
    // readline may still hold the last lines when the process exits.
    child.once('exit', () => lines.once('close', () => {
      clearTimeout(timer)
      resolve(log.some((line) => line.includes('Address already in use')) ? 'taken' : 'exited')
    }))
  })
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGTERM') } catch {}
      const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL') } catch {} }, STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    }
    forget()
  }
  if (outcome === 'ready') return { url: `redis://${HOST}:${port}`, pid: child.pid, stop }
  await stop()
  if (outcome === 'taken') return null
  throw new Error(`redis-server did not start (${outcome}):\n${log.join('\n')}`)
}
