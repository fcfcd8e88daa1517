// The Redis adapter across real processes, as deployed behind a load
// balancer: three app processes (test/fixtures/adapter-app.ts) on one real
// redis-server, `ws` clients on each. Every publish reaches every subscriber
// exactly once, in order per publisher; `kill -9` of one instance leaves the
// other two delivering to each other; a Redis restart mid-run loses only what
// was published while it was down, which the publishers count as dropped.

import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { Inbox, type Received, type Tap } from '../helpers/app.js'
import { numsub, pollUntil, startRedisServer, type RedisServer } from '../helpers/redis-server.js'
import { within } from '../helpers/time.js'

const ROOT = join(__dirname, '..', '..')
const APP = join(ROOT, 'test', 'fixtures', 'adapter-app.ts')
// Generous: three tsx processes starting at once on a busy 2-core machine.
const START_TIMEOUT = 60_000
const WAIT = 30_000

/** The environment of a deployed instance: none of tap's settings or loaders. */
function appEnv (extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (name === 'NODE_OPTIONS' || name.startsWith('TAP') || name.startsWith('_TAPJS_')) continue
    env[name] = value
  }
  return { ...env, ...extra }
}

interface Stats { published: number, received: number, dropped: number, duplicates: number }

class AppProcess {
  readonly child: ChildProcess
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>
  port = 0
  stderr = ''
  /** Publishes this instance reported dropped (diagnostics channel, over IPC), in order. */
  readonly dropped: string[] = []
  private droppedWaiters: Array<() => void> = []

  constructor (readonly name: string, redisUrl: string, prefix: string) {
    this.child = fork(APP, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx'],
      env: appEnv({ REDIS_URL: redisUrl, ADAPTER_PREFIX: prefix }),
      stdio: ['ignore', 'ignore', 'pipe', 'ipc']
    })
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.exited = once(this.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    this.child.on('message', (m: { dropped?: string }) => {
      if (m.dropped === undefined) return
      this.dropped.push(m.dropped)
      const waiters = this.droppedWaiters
      this.droppedWaiters = []
      for (const w of waiters) w()
    })
  }

  get running (): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  /** Resolves with the port it reports over IPC once listening (its adapter is ready by then: onReady). */
  async started (): Promise<void> {
    const port = new Promise<number>((resolve, reject) => {
      this.child.once('message', (m: { port: number }) => resolve(m.port))
      this.exited.then(([code, signal]) => reject(new Error(`${this.name} exited (${code ?? signal}) before listening:\n${this.stderr}`)), reject)
    })
    this.port = await within(port, `${this.name} listening`, START_TIMEOUT)
  }

  /** Until it has reported `count` dropped publishes in all (events over IPC, no polling). */
  async untilDropped (count: number): Promise<void> {
    while (this.dropped.length < count) {
      await new Promise<void>((resolve) => this.droppedWaiters.push(resolve))
    }
  }

  async publish (topic: string, messages: string[]): Promise<number[]> {
    return (await this.publishCounting(topic, messages)).local
  }

  async publishCounting (topic: string, messages: string[]): Promise<{ local: number[], dropped: number }> {
    const res = await fetch(`http://127.0.0.1:${this.port}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic, messages })
    })
    if (res.status !== 200) throw new Error(`${this.name} /publish answered ${res.status}: ${await res.text()}`)
    return await res.json() as { local: number[], dropped: number }
  }

  /**
   * Publishes a probe on `topic` until one is handed to Redis; resolves with
   * how many were dropped first. Polled: nothing public tells when the
   * adapter's own publisher is connected again after an outage, and until it
   * is, a publish is dropped (and counted) at once.
   */
  async untilPublishing (topic: string): Promise<number> {
    const deadline = Date.now() + WAIT
    for (let drops = 0; Date.now() < deadline; drops++) {
      if ((await this.publishCounting(topic, ['probe'])).dropped === 0) return drops
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`${this.name}: still not publishing through Redis after ${WAIT} ms`)
  }

  async stats (): Promise<Stats> {
    const res = await fetch(`http://127.0.0.1:${this.port}/stats`)
    return await res.json() as Stats
  }
}

/** Three (or `names.length`) app processes on `redis`, stopped at teardown (SIGTERM to each PID, SIGKILL if it lingers). */
async function startApps (t: Tap, redis: RedisServer, prefix: string, names = ['A', 'B', 'C']): Promise<AppProcess[]> {
  const apps = names.map((name) => new AppProcess(name, redis.url, prefix))
  t.teardown(async () => {
    await Promise.all(apps.map(async (app) => {
      if (!app.running) return
      app.child.kill('SIGTERM')
      const timer = setTimeout(() => { if (app.running) app.child.kill('SIGKILL') }, 10_000)
      await app.exited
      clearTimeout(timer)
    }))
  })
  await Promise.all(apps.map(async (app) => await app.started()))
  return apps
}

interface Client {
  name: string
  ws: WebSocket
  inbox: Inbox
}

/** A `ws` client on `app` subscribed to `topics`; resolves once the app says the subscriptions are made. */
async function subscriber (t: Tap, app: AppProcess, name: string, topics: string[]): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws?topics=${topics.join(',')}`)
  const inbox = new Inbox(ws)
  t.teardown(() => { ws.terminate() })
  ws.on('error', () => {}) // a killed instance: its clients see the close (1006), which the test checks
  await within(once(ws, 'open'), `${name} open`, WAIT)
  const ready = await within(inbox.nextText(), `${name} ready`, WAIT)
  if (ready !== 'ready') throw new Error(`${name}: expected "ready", got ${ready}`)
  return { name, ws, inbox }
}

const message = (publisher: string, seq: number): string => JSON.stringify({ p: publisher, s: seq })
const fence = (publisher: string): string => JSON.stringify({ fence: publisher })
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

/** A client's messages after `ready`: the sequence numbers per publisher, in arrival order, and the fences. */
function tally (received: Received[]): { seqs: Record<string, number[]>, fences: string[] } {
  const seqs: Record<string, number[]> = {}
  const fences: string[] = []
  for (const { data } of received.slice(1)) {
    const m = JSON.parse(data.toString('utf8')) as { p?: string, s?: number, fence?: string }
    if (m.fence !== undefined) fences.push(m.fence)
    else (seqs[m.p!] ??= []).push(m.s!)
  }
  return { seqs, fences: fences.sort() }
}

/**
 * Waits until each client received `expected` messages (plus its `ready`),
 * then has every app publish a fence on `topic` and waits for all of them.
 * The fence of another instance travels through Redis after every earlier
 * publish on the channel, so once a client has it, any duplicate of an earlier
 * message (its own instance's echo, a resend) would already have arrived.
 */
async function settle (clients: Client[], expected: (c: Client) => number, apps: AppProcess[], topic: string): Promise<void> {
  await Promise.all(clients.map(async (c) => {
    await within(c.inbox.untilCount(1 + expected(c)), `${c.name}: ${expected(c)} messages (has ${c.inbox.received.length - 1})`, WAIT)
  }))
  for (const app of apps) await app.publish(topic, [fence(app.name)])
  await Promise.all(clients.map(async (c) => {
    await within(c.inbox.untilCount(1 + expected(c) + apps.length), `${c.name}: the fences (has ${c.inbox.received.length - 1})`, WAIT)
  }))
}

t.test('3 processes: every publish reaches every subscriber exactly once, in order per publisher', async (t) => {
  const redis = await startRedisServer(t)
  const probe = redis.client()
  const apps = await startApps(t, redis, 'p1:')
  const clients: Client[] = []
  for (const app of apps) {
    // B1 is in news too: B2's conn.publish below must reach B1 (same instance) but not B2 itself.
    clients.push(await subscriber(t, app, `${app.name}1`, app.name === 'B' ? ['room', 'news'] : ['room']))
    clients.push(await subscriber(t, app, `${app.name}2`, ['room', 'news']))
  }
  const bystander = await subscriber(t, apps[0]!, 'A-news-only', ['news'])
  // Polled: nothing tells the test that the instances' SUBSCRIBEs have been executed by Redis.
  await pollUntil(async () => (await numsub(probe, ['p1:room']))['p1:room'] === 3, 'p1:room subscribed by all 3 instances')
  t.same(await numsub(probe, ['p1:room', 'p1:news']), { 'p1:room': 3, 'p1:news': 3 }, 'one Redis subscription per instance, not per connection')

  const N = 100
  // All three publish at once, each its numbered messages in one synchronous loop.
  const locals = await Promise.all(apps.map(async (app) => await app.publish('room', range(0, N).map((s) => message(app.name, s)))))
  t.ok(locals.every((l) => l.length === N && l.every((n) => n === 2)), 'app.websocket.publish returns the local receivers (2 per instance)')

  await settle(clients, () => 3 * N, apps, 'room')
  for (const c of clients) {
    const { seqs, fences } = tally(c.inbox.received)
    t.same(seqs, { A: range(0, N), B: range(0, N), C: range(0, N) }, `${c.name}: every message of every publisher once, in order`)
    t.same(fences, ['A', 'B', 'C'], `${c.name}: each fence once`)
  }

  // conn.publish through B2's connection: every subscriber but B2, on every instance (B1 on the same one).
  const [, a2, b1, b2, , c2] = clients as [Client, Client, Client, Client, Client, Client]
  const roomTraffic = 1 + 3 * N + 3
  b2.ws.send(JSON.stringify({ topic: 'news', data: message('B2', 0) }))
  // C publishes only once B2's message went through Redis (the bystander on A has it), so the two have one order everywhere.
  await within(bystander.inbox.untilCount(2), 'the bystander: B2\'s news', WAIT)
  await apps[2]!.publish('news', [message('C', 0)])
  for (const [c, before] of [[a2, roomTraffic], [b1, roomTraffic], [c2, roomTraffic], [bystander, 1]] as const) {
    await within(c.inbox.untilCount(before + 2), `${c.name}: the two news messages`, WAIT)
    t.same(c.inbox.received.slice(before).map((m) => m.data.toString()), [message('B2', 0), message('C', 0)], `${c.name}: B2's news, then C's`)
  }
  // C's publish came through Redis after B's own copy of B2's message: had B delivered that copy to B2, it would be here first.
  await within(b2.inbox.untilCount(roomTraffic + 1), 'B2: C\'s news', WAIT)
  t.same(b2.inbox.received.slice(roomTraffic).map((m) => m.data.toString()), [message('C', 0)], 'B2: only C\'s news, never its own')
  t.equal(clients[0]!.inbox.received.length, roomTraffic, 'A1 (room only) got no news')

  const stats = await Promise.all(apps.map(async (app) => await app.stats()))
  for (const [i, s] of stats.entries()) {
    t.equal(s.dropped, 0, `${apps[i]!.name}: nothing dropped`)
    t.equal(s.duplicates, 0, `${apps[i]!.name}: no duplicates seen`)
  }
})

t.test('kill -9 of one instance: the other two keep delivering to each other', async (t) => {
  const redis = await startRedisServer(t)
  const probe = redis.client()
  const apps = await startApps(t, redis, 'p2:')
  const [a, b, c] = apps as [AppProcess, AppProcess, AppProcess]
  const clients = await Promise.all(apps.map(async (app) => await subscriber(t, app, `${app.name}1`, ['room'])))
  await pollUntil(async () => (await numsub(probe, ['p2:room']))['p2:room'] === 3, 'p2:room subscribed by all 3 instances')
  await Promise.all(apps.map(async (app) => await app.publish('room', [message(app.name, 0)])))
  await Promise.all(clients.map(async (cl) => await within(cl.inbox.untilCount(1 + 3), `${cl.name}: first round`, WAIT)))

  // By its PID, with no chance to close anything: its sockets are closed by the kernel.
  const aClient = clients[0]!
  const aClosed = aClient.inbox.closed
  a.child.kill('SIGKILL')
  const [, signal] = await a.exited
  t.equal(signal, 'SIGKILL')
  t.equal((await within(aClosed, 'A1 closed', WAIT)).code, 1006, "A's client: the connection dropped")
  // Redis drops A's subscription when it sees the connection closed; polled, no event reaches the test.
  await pollUntil(async () => (await numsub(probe, ['p2:room']))['p2:room'] === 2, 'p2:room down to 2 subscribers')

  const N = 100
  await Promise.all([b, c].map(async (app) => await app.publish('room', range(1, N + 1).map((s) => message(app.name, s)))))
  const live = clients.slice(1)
  await settle(live, () => 3 + 2 * N, [b, c], 'room')
  for (const cl of live) {
    const { seqs, fences } = tally(cl.inbox.received)
    t.same(seqs, { A: [0], B: range(0, N + 1), C: range(0, N + 1) }, `${cl.name}: everything from B and C after A died, once, in order`)
    t.same(fences, ['B', 'C'])
  }
  for (const app of [b, c]) t.equal((await app.stats()).dropped, 0, `${app.name}: nothing dropped (Redis was up)`)
})

t.test('Redis restarted mid-run: delivery resumes, the gap is what the publishers counted dropped, nothing twice', async (t) => {
  const redis = await startRedisServer(t)
  const probe = redis.client()
  const apps = await startApps(t, redis, 'p3:')
  const clients = await Promise.all(apps.map(async (app) => await subscriber(t, app, `${app.name}1`, ['room'])))
  const subscribed = async (what: string): Promise<void> => {
    // Polled: a (re)subscription is in place once Redis executed it, which no event tells the test.
    await pollUntil(async () => (await numsub(probe, ['p3:room']))['p3:room'] === 3, what)
  }
  await subscribed('p3:room subscribed by all 3 instances')

  const K = 30
  const publishRound = async (from: number): Promise<void> => {
    await Promise.all(apps.map(async (app) => await app.publish('room', range(from, from + K).map((s) => message(app.name, s)))))
  }
  // Before: everything everywhere.
  await publishRound(0)
  await Promise.all(clients.map(async (c) => await within(c.inbox.untilCount(1 + 3 * K), `${c.name}: before the outage`, WAIT)))

  // During: each instance's own subscribers still get its publishes; the cross-instance copies are dropped.
  await redis.stop()
  await publishRound(K)
  await Promise.all(apps.map(async (app) => await within(app.untilDropped(K), `${app.name}: ${K} dropped (has ${app.dropped.length})`, WAIT)))
  await Promise.all(clients.map(async (c) => await within(c.inbox.untilCount(1 + 4 * K), `${c.name}: its own instance's publishes during the outage`, WAIT)))

  // After: the instances reconnect and subscribe again by themselves.
  await redis.restart()
  await subscribed('p3:room subscribed again by all 3 instances after the restart')
  // The publishers reconnect on their own schedule: probes on a topic nobody reads until each gets through.
  const probeDrops = await Promise.all(apps.map(async (app) => await app.untilPublishing('probe')))
  await publishRound(2 * K)
  // Own instance: all 3K; each other instance: 2K (nothing from the outage).
  await settle(clients, () => 3 * K + 2 * K + 2 * K, apps, 'room')

  const stats = Object.fromEntries(await Promise.all(apps.map(async (app) => [app.name, await app.stats()] as const)))
  for (const c of clients) {
    const own = c.name[0]!
    const { seqs, fences } = tally(c.inbox.received)
    const expected: Record<string, number[]> = {}
    for (const app of apps) {
      expected[app.name] = app.name === own ? range(0, 3 * K) : [...range(0, K), ...range(2 * K, 3 * K)]
    }
    t.same(seqs, expected, `${c.name}: its own instance's messages all, the others' except the outage's, each once, in order`)
    t.same(fences, ['A', 'B', 'C'])
    for (const app of apps) {
      if (app.name === own) continue
      const missing = 3 * K - seqs[app.name]!.length
      const droppedRoom = stats[app.name]!.dropped - probeDrops[apps.indexOf(app)]!
      t.equal(missing, droppedRoom, `${c.name}: the gap from ${app.name} (${missing}) is what ${app.name} counted dropped in the room`)
    }
  }
  for (const [i, app] of apps.entries()) {
    // The IPC messages of the last drops may trail the HTTP answers.
    await within(app.untilDropped(K + probeDrops[i]!), `${app.name}: every drop's event`, WAIT)
    t.equal(stats[app.name]!.dropped, K + probeDrops[i]!, `${app.name}: dropped = the publishes made while Redis was down (and the probes before it was back)`)
    t.same(app.dropped, [...Array(K).fill('room'), ...Array(probeDrops[i]).fill('probe')], `${app.name}: one diagnostics event per dropped publish, with its topic`)
  }
})
