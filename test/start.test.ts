// `npm start`: the example app as a user starts it, in its own process, with
// the listening and shutdown code that test/example.test.ts (which imports
// build()) never runs.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import WebSocket from 'ws'
import { Inbox, clientClosed } from './helpers/app.js'

const root = join(__dirname, '..')

/** The command of the "start" script, resolved the way npm resolves it (node_modules/.bin first). */
function startCommand (): [string, string[]] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const [bin, ...args] = pkg.scripts.start.trim().split(/\s+/)
  return [join(root, 'node_modules/.bin', bin), args]
}

/** The environment of a shell that runs `npm start`: none of tap's settings or loaders. */
function userEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'NODE_OPTIONS' || name.startsWith('TAP') || name.startsWith('_TAPJS_')) continue
    env[name] = value
  }
  return { ...env, ...extra }
}

async function freePort (): Promise<number> {
  const probe = createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

/** Resolves with the URL from pino's "Server listening at …" line; rejects if the process exits first or is too slow. */
async function listeningUrl (child: ChildProcess, logs: LogLine[], timeoutMs: number): Promise<string> {
  const lines = createInterface({ input: child.stdout! })
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`no "Server listening" line within ${timeoutMs} ms`)), timeoutMs)
    const onLine = (text: string): void => {
      let line: LogLine
      try {
        line = JSON.parse(text) as LogLine
      } catch {
        return
      }
      logs.push(line)
      const match = /^Server listening at (http:\/\/127\.0\.0\.1:\d+)$/.exec(line.msg)
      if (match !== null) finish(null, match[1])
    }
    const onExit = (code: number | null, signal: string | null): void => {
      finish(new Error(`the server exited before listening (code ${code}, signal ${signal})`))
    }
    const finish = (err: Error | null, url?: string): void => {
      clearTimeout(timer)
      child.off('exit', onExit)
      // The log keeps being collected after this: the shutdown lines are checked too.
      if (err !== null) {
        lines.off('line', onLine)
        reject(err)
      } else {
        resolve(url!)
      }
    }
    lines.on('line', onLine)
    child.once('exit', onExit)
  })
}

t.test('npm start serves the example on $HOST:$PORT and shuts down on SIGTERM', async (t) => {
  // A port known in advance, so the test sees that PORT was obeyed (not the default 3000).
  const port = await freePort()
  const [command, args] = startCommand()
  const child = spawn(command, args, {
    cwd: root,
    env: userEnv({ PORT: String(port), HOST: '127.0.0.1' }),
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: tsx runs the app in a child process of its own, and a
    // failed test must be able to end both.
    detached: true
  })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    // Only when the test failed before its own SIGTERM.
    const group = -child.pid!
    process.kill(group, 'SIGTERM')
    let timer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<'timeout'>((resolve) => { timer = setTimeout(resolve, 10_000, 'timeout') })
    if (await Promise.race([exited, gaveUp]) === 'timeout') process.kill(group, 'SIGKILL')
    clearTimeout(timer)
  })

  const logs: LogLine[] = []
  // tsx compiles on start; the machine may be busy.
  const base = await listeningUrl(child, logs, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\nstderr: ${stderr}`)
  })
  t.equal(base, `http://127.0.0.1:${port}`, 'listening on $HOST:$PORT')

  const health = await fetch(`${base}/api/health`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok', connections: 0 })

  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/chat?name=ann`)
  const inbox = new Inbox(ws)
  await once(ws, 'open')
  t.match(JSON.parse(await inbox.nextText()), { type: 'welcome', name: 'ann', room: 'lobby', members: ['ann'], history: [] })
  t.match(JSON.parse(await inbox.nextText()), { type: 'join', name: 'ann', members: ['ann'] })
  ws.send(JSON.stringify({ text: 'hello from the start test' }))
  t.match(JSON.parse(await inbox.nextText()), { type: 'message', name: 'ann', text: 'hello from the start test' })
  t.same(await (await fetch(`${base}/api/health`)).json(), { status: 'ok', connections: 1 })

  const closed = clientClosed(ws)
  t.ok(child.kill('SIGTERM'), 'SIGTERM sent to the server process')
  t.same(await closed, { code: 1001, reason: 'server shutting down' }, 'the open connection is told the server is going away')
  const [code, signal] = await exited
  t.equal(code, 0, `the server exits cleanly (signal ${signal}, stderr: ${stderr})`)
  t.ok(logs.some((line) => line.msg === 'shutting down'), 'the shutdown is logged')
})
