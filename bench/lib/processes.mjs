// Child processes of the run: spawned pinned to a core, talked to over IPC,
// and always killed by PID when the run ends, however it ends.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OUTPUT_TAIL = 4096
const live = new Set()

function killByPid (pid) {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

/**
 * For a child that is not a NodeChild (redis-server): killed by PID with the
 * others when the run exits. Returns the function that forgets it again.
 */
export function killOnExit (pid) {
  installExitHooks()
  live.add(pid)
  return () => live.delete(pid)
}

let exitHooksInstalled = false
function installExitHooks () {
  if (exitHooksInstalled) return
  exitHooksInstalled = true
  process.on('exit', () => {
    for (const pid of live) killByPid(pid)
  })
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]]) {
    process.on(signal, () => process.exit(code))
  }
}

/**
 * A child with Node's IPC channel: a Node.js process, or another runtime that
 * speaks the same channel (Bun does, with the default 'json' serialization
 * that is used here). Requests carry an id; the child answers with a message
 * bearing the same id.
 */
export class NodeChild {
  #child
  #pending = new Map()
  #nextId = 1
  #output = ''
  #exited = false
  #exitPromise
  #firstMessage

  /**
   * Runs `executable` (this Node.js unless told) with `nodeArgs` (the
   * runtime's own flags) and `script`. `cpu` pins the child with taskset when
   * `pin` is true; `env` is added to the run's environment. The soft file
   * descriptor limit is raised to the hard one first: the idle scenario holds
   * ten thousand sockets on each side.
   */
  constructor ({ name, script, executable = process.execPath, nodeArgs = [], cpu, pin, env = {} }) {
    installExitHooks()
    this.name = name
    const command = [...(pin ? ['taskset', '-c', String(cpu)] : []), executable, ...nodeArgs, script]
    // `exec` keeps the PID, so the PID we hold is the runtime's process itself.
    this.#child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...command], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc']
    })
    this.pid = this.#child.pid
    live.add(this.pid)
    const keepTail = (chunk) => { this.#output = (this.#output + chunk).slice(-OUTPUT_TAIL) }
    this.#child.stdout.setEncoding('utf8').on('data', keepTail)
    this.#child.stderr.setEncoding('utf8').on('data', keepTail)
    this.#firstMessage = new Promise((resolve) => {
      this.#child.once('message', resolve)
      this.#child.once('exit', () => resolve(null))
    })
    this.#child.on('message', (message) => {
      const waiter = this.#pending.get(message?.id)
      if (waiter === undefined) return
      this.#pending.delete(message.id)
      waiter.resolve(message)
    })
    this.#exitPromise = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exited = true
        live.delete(this.pid)
        const reason = new Error(`${this.name} exited (${signal ?? `code ${code}`})${this.outputTail()}`)
        for (const waiter of this.#pending.values()) waiter.reject(reason)
        this.#pending.clear()
        resolve()
      })
    })
    // An IPC write to a child that just died must not crash the run.
    this.#child.on('error', () => {})
  }

  get alive () {
    return !this.#exited
  }

  outputTail () {
    const tail = this.#output.trim()
    return tail === '' ? '' : `\n${tail}`
  }

  /** The child's first message (its ready or failed report), or null if it exited. */
  async firstMessage (timeoutMs) {
    let timer
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
    const message = await Promise.race([this.#firstMessage, timeout])
    clearTimeout(timer)
    if (message === 'timeout') throw new Error(`${this.name} did not start within ${timeoutMs} ms${this.outputTail()}`)
    if (message === null) throw new Error(`${this.name} exited during start-up${this.outputTail()}`)
    return message
  }

  request (body, timeoutMs) {
    if (this.#exited) return Promise.reject(new Error(`${this.name} is not running`))
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${this.name} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, {
        resolve: (message) => { clearTimeout(timer); resolve(message) },
        reject: (error) => { clearTimeout(timer); reject(error) }
      })
      this.#child.send({ id, ...body })
    })
  }

  async stop () {
    if (!this.#exited) killByPid(this.pid)
    await this.#exitPromise
  }
}
