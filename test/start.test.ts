// `npm start`: the example app as a user starts it, in its own process, with
// the listening and shutdown code that test/example.test.ts (which imports
// build()) never runs; and two instances of it sharing rooms through Redis
// (REDIS_URL), as README shows.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { Inbox, clientClosed } from './helpers/app.js'
import { numsub, pollUntil, startRedisServer } from './helpers/redis-server.js'

const root = join(__dirname, '..')

/** The command of the "start" script, resolved the way npm resolves it (node_modules/.bin first). */
function startCommand (): [string, string[]] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
  const [bin, ...args] = pkg.scripts.start.trim().split(/\s+/)
  return [join(root, 'node_modules/.bin', bin), args]
}

/** The environment of a shell that runs `npm start`: none of tap's settings or loaders, no REDIS_URL unless given. */
function userEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'NODE_OPTIONS' || name === 'REDIS_URL' || name.startsWith('TAP') || name.startsWith('_TAPJS_')) continue
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

interface Example {
  child: ChildProcess
  /** `http://127.0.0.1:<port>`, from its "Server listening" log line. */
  base: string
  /** Its log lines, parsed, as they keep coming. */
  logs: LogLine[]
  /** Its stderr so far. */
  stderr: () => string
  exited: Promise<[number | null, NodeJS.Signals | null]>
}

/** Runs `npm start` with `env` added, resolves once it listens; ended at `t`'s teardown if still running. */
async function startExample (t: Test, env: Record<string, string>): Promise<Example> {
  const [command, args] = startCommand()
  const child = spawn(command, args, {
    cwd: root,
    env: userEnv(env),
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
    // Only when the test did not stop it itself (or failed before).
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
  return { child, base, logs, stderr: () => stderr, exited }
}

interface ChatClient {
  ws: WebSocket
  inbox: Inbox
  send: (message: object) => void
  /** The next message, parsed. */
  next: () => Promise<any>
}

/** A chat client of `base` in `room`, once its welcome (checked against `welcome`) arrived. */
async function chatClient (t: Test, base: string, name: string, room: string, welcome: object = {}): Promise<ChatClient> {
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/chat?name=${name}&room=${room}`)
  t.teardown(() => ws.terminate())
  const inbox = new Inbox(ws)
  await once(ws, 'open')
  const client: ChatClient = {
    ws,
    inbox,
    send: (message) => ws.send(JSON.stringify(message)),
    next: async () => JSON.parse(await inbox.nextText())
  }
  t.match(await client.next(), { type: 'welcome', name, room, ...welcome }, `${name} is in #${room}`)
  return client
}

t.test('npm start serves the example on $HOST:$PORT and shuts down on SIGTERM', async (t) => {
  // A port known in advance, so the test sees that PORT was obeyed (not the default 3000).
  const port = await freePort()
  const { child, base, logs, stderr, exited } = await startExample(t, { PORT: String(port), HOST: '127.0.0.1' })
  t.equal(base, `http://127.0.0.1:${port}`, 'listening on $HOST:$PORT')

  const health = await fetch(`${base}/api/health`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok', connections: 0 })

  // The chat protocol's AsyncAPI document and page (README, "AsyncAPI"); test/asyncapi/ checks their content.
  const document = await (await fetch(`${base}/asyncapi/json`)).json() as { asyncapi: string, servers: unknown, channels: Record<string, { address: string }> }
  t.equal(document.asyncapi, '3.0.0', 'the AsyncAPI document is served')
  t.same(document.servers, { default: { host: `127.0.0.1:${port}`, protocol: 'ws' } }, 'with the address it listens on')
  t.same(Object.values(document.channels).map((c) => c.address), ['/chat'])
  t.match((await fetch(`${base}/asyncapi/yaml`)).headers.get('content-type'), /^application\/yaml/, 'as YAML too')
  t.match(await (await fetch(`${base}/asyncapi`)).text(), /<code>\/chat<\/code>/, 'and as a page')

  const ann = await chatClient(t, base, 'ann', 'lobby', { history: [] })
  ann.send({ type: 'say', room: 'lobby', text: 'hello from the start test' })
  t.match(await ann.next(), { type: 'message', room: 'lobby', name: 'ann', text: 'hello from the start test' })
  t.same(await (await fetch(`${base}/api/health`)).json(), { status: 'ok', connections: 1 })

  const closed = clientClosed(ann.ws)
  t.ok(child.kill('SIGTERM'), 'SIGTERM sent to the server process')
  t.same(await closed, { code: 1001, reason: 'server shutting down' }, 'the open connection is told the server is going away')
  const [code, signal] = await exited
  t.equal(code, 0, `the server exits cleanly (signal ${signal}, stderr: ${stderr()})`)
  t.ok(logs.some((line) => line.msg === 'shutting down'), 'the shutdown is logged')
})

t.test('two instances started with the same REDIS_URL share rooms', async (t) => {
  const redis = await startRedisServer(t)
  // PORT=0: each instance on a free port of its own, read from its log.
  const env = { REDIS_URL: redis.url, HOST: '127.0.0.1', PORT: '0' }
  const [one, two] = await Promise.all([startExample(t, env), startExample(t, env)])
  t.not(one.base, two.base, `two instances: ${one.base} and ${two.base}`)

  // An instance SUBSCRIBEs to a room's channel when its first client joins the
  // room; nothing tells a client when Redis has done it, so the test asks Redis.
  const probe = redis.client()
  const kitchen = 'ws:room:kitchen' // the adapter's default prefix, then the example's topic
  const subscribers = async (count: number): Promise<void> => {
    await pollUntil(async () => (await numsub(probe, [kitchen]))[kitchen] === count, `${kitchen} subscribed by ${count} instance(s)`)
  }

  const ann = await chatClient(t, one.base, 'ann', 'kitchen')
  await subscribers(1)
  const ben = await chatClient(t, two.base, 'ben', 'kitchen')
  t.match(await ann.next(), { type: 'joined', room: 'kitchen', name: 'ben' }, 'ann, on one, is told ben came in on two')
  await subscribers(2)
  const cat = await chatClient(t, two.base, 'cat', 'garden')

  ann.send({ type: 'say', room: 'kitchen', text: 'hello from one' })
  t.match(await ben.next(), { type: 'message', room: 'kitchen', name: 'ann', text: 'hello from one' }, 'a message said on one reaches the room on two')
  t.match(await ann.next(), { type: 'message', name: 'ann', text: 'hello from one' }, 'and its sender, once')
  ben.send({ type: 'say', room: 'kitchen', text: 'hello from two' })
  t.match(await ann.next(), { type: 'message', room: 'kitchen', name: 'ben', text: 'hello from two' }, 'and the other way round')
  t.match(await ben.next(), { type: 'message', name: 'ben', text: 'hello from two' })

  // Both reached two (ben got them); anything queued for cat there would come
  // before the answer to its join.
  cat.send({ type: 'join', room: 'kitchen' })
  const welcome = await cat.next() as { type: string, history: Array<{ name: string, text: string }> }
  t.equal(welcome.type, 'welcome', 'cat, in another room on two, got neither message')
  t.same(welcome.history.map((m) => `${m.name}: ${m.text}`), ['ben: hello from two'], 'the history is per instance: what was said through it')
  t.match(await ann.next(), { type: 'joined', name: 'cat' })
  t.match(await ben.next(), { type: 'joined', name: 'cat' })

  ben.send({ type: 'leave', room: 'kitchen' })
  t.match(await ann.next(), { type: 'left', room: 'kitchen', name: 'ben' }, 'leaving on two is told on one')
  t.match(await cat.next(), { type: 'left', room: 'kitchen', name: 'ben' })
  ann.send({ type: 'say', room: 'kitchen', text: 'still here?' })
  t.match(await cat.next(), { type: 'message', name: 'ann', text: 'still here?' }, 'cat, on two, gets ann\'s next message')
  ben.send({ type: 'join', room: 'garden' }) // already in: answered with a welcome
  t.match(await ben.next(), { type: 'welcome', room: 'garden' }, 'ben, who left the room, does not')
  t.match(await ann.next(), { type: 'message', name: 'ann', text: 'still here?' })

  for (const instance of [one, two]) instance.child.kill('SIGTERM')
  const exits = await Promise.all([one.exited, two.exited])
  t.same(exits.map(([code]) => code), [0, 0], `both shut down cleanly (stderr: ${one.stderr()}${two.stderr()})`)
  const warnings = [...one.logs, ...two.logs].filter((line) => line.level >= 40)
  t.same(warnings, [], 'and logged no warning or error (Redis was reachable throughout)')
})
