// The Redis adapter's sharded mode (SSUBSCRIBE/SPUBLISH) against a real
// 3-node Redis Cluster on loopback, as README "Topics and scaling out" offers
// it: `redisAdapter({ client: new Cluster([...]), sharded: true })`. Three
// Fastify apps in this process stand in for instances behind a load balancer,
// each with its own Cluster client; `ws` clients subscribe to topics whose
// channels (`ws:<topic>`) hash to slots on all three nodes.
//
// Asserted: every publish reaches every subscriber on every instance exactly
// once, in order per publisher and topic, binary byte for byte and text as
// text; each node carries exactly the shard channels of its own slots (and no
// classic channels); one SSUBSCRIBE per instance and channel however many
// local subscribers; the last local subscriber leaving SUNSUBSCRIBEs on the
// owning node, and the channel is gone from that node once every instance
// left. Then an outage of every node (stopped, restarted on the same ports
// with their nodes.conf): topics joined and left meanwhile end up subscribed
// exactly as the instances have them, and messages flow again, exactly once.

import { execFile, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Cluster, Redis } from 'ioredis'
import t from 'tap'
import type WebSocket from 'ws'
import { redisAdapter, type RedisAdapter } from '../../lib/adapters/redis.js'
import type { WebSocketConnection } from '../../lib/index.js'
import { acceptConnections, build, connect, inboxOf, listen, type Inbox, type Queue, type Received, type Tap } from '../helpers/app.js'
import { prng, randomBytesSeeded } from '../helpers/data.js'
import { channels, isRunning, numsub, pollUntil, spawnRedisServer, stopRedisServer } from '../helpers/redis-server.js'
import { within } from '../helpers/time.js'

const REDIS_CLI = process.env.REDIS_CLI ?? '/usr/bin/redis-cli'
const HOST = '127.0.0.1'
// The cluster bus of a node on port N listens on N + 10000.
const BUS_OFFSET = 10_000
// Ports are drawn below Linux's ephemeral range (32768 and up) for both the
// node and its bus, so outgoing connections do not take them meanwhile.
const PORT_MIN = 10_000
const PORT_MAX = 22_000
// A bound that turns a hang into a failure; a passing run never waits for it.
const WAIT = 20_000

interface Node {
  port: number
  proc: ChildProcess
  exited: Promise<void>
  log: string[]
  /** A plain (non-cluster) client on this node only, for PUBSUB and CLUSTER commands. */
  probe: Redis
}

interface TestCluster {
  nodes: Node[]
  /** The node that owns `channel`'s slot (CLUSTER KEYSLOT, then CLUSTER SLOTS). */
  ownerOf (channel: string): Promise<Node>
  /** Stops every node (SIGTERM to its PID), resolves once all exited. */
  stop (): Promise<void>
  /** Starts every node again on its port with its nodes.conf; resolves once the cluster is ok. */
  start (): Promise<void>
}

/** Whether nothing listens on `port` on the loopback now. */
async function portFree (port: number): Promise<boolean> {
  const probe = createServer()
  try {
    probe.listen(port, HOST)
    await once(probe, 'listening') // rejects on `error` (EADDRINUSE, EACCES)
    return true
  } catch {
    return false
  } finally {
    if (probe.listening) {
      probe.close()
      await once(probe, 'close')
    }
  }
}

/**
 * Starts one cluster-enabled redis-server on `port` and resolves with it once
 * its log says it accepts connections (written after its sockets are bound),
 * or with null if the port or its bus port was taken meanwhile (it has exited
 * then). Every process spawned goes into `started`, for the teardown.
 */
async function startNode (dir: string, port: number, started: Map<ChildProcess, Promise<void>>): Promise<Omit<Node, 'probe'> | null> {
  const node = spawnRedisServer(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)])
  started.set(node.proc, node.exited)
  return (await node.ready) ? { port, proc: node.proc, exited: node.exited, log: node.log } : null
}

async function run (file: string, args: string[], timeout: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, { timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stdout}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

/**
 * Three masters on loopback, slots split by redis-cli (0–5460, 5461–10922,
 * 10923–16383, in the order of the ports given). Every process started is
 * stopped by its PID at `t`'s teardown, and the temp dir removed.
 */
async function startCluster (t: Tap): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-rfc6455-cluster-'))
  const started = new Map<ChildProcess, Promise<void>>()
  const nodes: Node[] = []
  // Should the test process end without its teardown (a teardown before this
  // one threw, a signal), the servers go with it, by their PIDs.
  const killStarted = (): void => {
    for (const proc of started.keys()) if (isRunning(proc)) process.kill(proc.pid!, 'SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  const onSignal = (signal: NodeJS.Signals): void => {
    killStarted()
    removeSafetyNets()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal) // die of it, as without this handler
  }
  const removeSafetyNets = (): void => {
    process.removeListener('exit', killStarted)
    for (const signal of SIGNALS) process.removeListener(signal, onSignal)
  }
  process.once('exit', killStarted)
  for (const signal of SIGNALS) process.once(signal, onSignal)
  t.teardown(async () => {
    for (const node of nodes) node.probe.disconnect()
    await Promise.all([...started].map(async ([proc, exited]) => { await stopRedisServer({ proc, exited }) }))
    removeSafetyNets()
    rmSync(dir, { recursive: true, force: true })
  })

  const taken = new Set<number>()
  for (let i = 0; i < 3; i++) {
    let node: Omit<Node, 'probe'> | null = null
    for (let attempt = 0; attempt < 20 && node === null; attempt++) {
      const port = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN))
      // Neither port may be another node's port or bus port.
      if ([port, port + BUS_OFFSET, port - BUS_OFFSET].some((p) => taken.has(p))) continue
      if (!(await portFree(port)) || !(await portFree(port + BUS_OFFSET))) continue
      node = await startNode(dir, port, started)
    }
    if (node === null) throw new Error('no free port pair (N, N + 10000) for a cluster node in 20 tries')
    taken.add(node.port).add(node.port + BUS_OFFSET)
    const probe = new Redis({ host: HOST, port: node.port, maxRetriesPerRequest: 1 })
    probe.on('error', () => {}) // errors surface on the commands
    nodes.push({ ...node, probe })
  }

  await run(REDIS_CLI, ['--cluster', 'create', ...nodes.map((n) => `${HOST}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], 60_000)
  const clusterOk = async (): Promise<void> => {
    // Polled: a node reports the cluster usable only in CLUSTER INFO; no event
    // or blocking command says when every node has learnt the slot map.
    for (const node of nodes) {
      await pollUntil(async () => /cluster_state:ok/.test(await node.probe.call('CLUSTER', 'INFO') as string), `node ${node.port}: cluster_state:ok`, WAIT, 50)
    }
  }
  await clusterOk()

  const slots = await nodes[0]!.probe.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>
  return {
    nodes,
    ownerOf: async (channel) => {
      const slot = await nodes[0]!.probe.call('CLUSTER', 'KEYSLOT', channel) as number
      const range = slots.find(([from, to]) => slot >= from && slot <= to)
      const node = nodes.find((n) => n.port === Number(range?.[2][1]))
      if (node === undefined) throw new Error(`no node owns slot ${slot} (${channel})`)
      return node
    },
    stop: async () => { await Promise.all(nodes.map(async (node) => { await stopRedisServer(node) })) },
    start: async () => {
      for (const node of nodes) {
        const again = await startNode(dir, node.port, started)
        if (again === null) throw new Error(`port ${node.port} or its bus port was taken while the node was down`)
        Object.assign(node, { proc: again.proc, exited: again.exited, log: again.log })
      }
      await clusterOk()
    }
  }
}

interface Instance {
  name: string
  app: FastifyInstance
  adapter: RedisAdapter
  /** The Cluster client the adapter was given, which it publishes through. */
  client: Cluster
  accepted: Queue<WebSocketConnection<FastifyRequest>>
}

/** An app whose adapter is given a Cluster client; the app closes, then the client, at teardown (before the cluster stops). */
async function instance (t: Tap, name: string, port: number): Promise<Instance> {
  const client = new Cluster([{ host: HOST, port }])
  client.on('error', () => {}) // the adapter reports what matters; a failing test says the rest
  t.teardown(() => { client.disconnect() })
  const adapter = redisAdapter({ client, sharded: true })
  const app = await build(t, { adapter })
  const accepted = acceptConnections(app, '/ws')
  // listen → ready → the adapter's onReady: both Cluster clients are ready when this resolves.
  await listen(app)
  return { name, app, adapter, client, accepted }
}

interface Sub {
  name: string
  ws: WebSocket
  inbox: Inbox
  conn: WebSocketConnection<FastifyRequest>
  topics: string[]
}

async function sub (inst: Instance, name: string, topics: string[]): Promise<Sub> {
  const ws = await connect(inst.app, '/ws')
  const conn = await within(inst.accepted.next(), `${name}: accepted`, WAIT)
  for (const topic of topics) conn.subscribe(topic)
  return { name, ws, inbox: inboxOf(ws), conn, topics: [...topics] }
}

/** Polled: a SSUBSCRIBE is in place once the node ran it, and nothing tells the test when that is. */
async function shardSubscribers (node: Node, channel: string, count: number): Promise<void> {
  let last: number | undefined
  await pollUntil(async () => (last = (await numsub(node.probe, [channel], true))[channel]) === count,
    `${channel} on node ${node.port}: ${count} shard subscribers`, WAIT).catch((err: Error) => {
    throw new Error(`${err.message} (last seen ${String(last)})`)
  })
}

async function shardChannelsAre (node: Node, expected: string[]): Promise<void> {
  const want = [...expected].sort()
  let last: string[] = []
  await pollUntil(async () => JSON.stringify(last = await channels(node.probe, 'ws:*', true)) === JSON.stringify(want),
    `node ${node.port}: shard channels ${JSON.stringify(want)}`, WAIT).catch((err: Error) => {
    throw new Error(`${err.message} (last seen ${JSON.stringify(last)})`)
  })
}

async function untilCount (s: Sub, count: number, what: string): Promise<void> {
  await within(s.inbox.untilCount(count), `${s.name}: ${what}`, WAIT).catch((err: Error) => {
    throw new Error(`${err.message} (${s.inbox.received.length} of ${count} received)`)
  })
}

// The messages: text JSON `{ p, t, s }`, and every fourth one binary: the same
// JSON, a newline, then seeded random bytes (not UTF-8, of varied sizes, one
// per publisher past 64 KiB), which the receiver recomputes and compares.
const isBinary = (s: number): boolean => s % 4 === 3
const seedOf = (publisher: string, topic: string, s: number): number => {
  let h = 0x811c9dc5
  for (const ch of `${publisher}/${topic}/${s}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193)
  return h >>> 0
}
function payload (publisher: string, topic: string, s: number): string | Buffer {
  const head = JSON.stringify({ p: publisher, t: topic, s })
  if (!isBinary(s)) return head
  const random = prng(seedOf(publisher, topic, s))
  const size = s === 3 && topic === 'topic-0' ? 100_000 : Math.floor(random() * 3000)
  return Buffer.concat([Buffer.from(`${head}\n`), randomBytesSeeded(random, size)])
}
const fence = (publisher: string): string => JSON.stringify({ fence: publisher })

interface Tally {
  /** Sequence numbers per `publisher/topic`, in arrival order. */
  seqs: Record<string, number[]>
  /** The publisher of each fence, sorted. */
  fences: string[]
  /** Messages whose kind or bytes differ from what was published. */
  wrong: string[]
}

function tally (received: Received[]): Tally {
  const seqs: Record<string, number[]> = {}
  const fences: string[] = []
  const wrong: string[] = []
  for (const { data, isBinary: binary } of received) {
    const end = binary ? data.indexOf(0x0a) : data.length
    const m = JSON.parse(data.toString('utf8', 0, end === -1 ? data.length : end)) as { p?: string, t?: string, s?: number, fence?: string }
    if (m.fence !== undefined) {
      fences.push(m.fence)
      continue
    }
    const expected = payload(m.p!, m.t!, m.s!)
    if (binary !== isBinary(m.s!) || !data.equals(Buffer.isBuffer(expected) ? expected : Buffer.from(expected))) {
      wrong.push(`${m.p!}/${m.t!}/${m.s!}`)
    }
    (seqs[`${m.p!}/${m.t!}`] ??= []).push(m.s!)
  }
  return { seqs, fences: fences.sort(), wrong }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)

t.test('sharded pub/sub on a 3-node Redis Cluster: exactly once, in order, byte for byte, shard channels follow the subscribers', async (t) => {
  const cluster = await startCluster(t)
  const [first] = cluster.nodes

  // Topics whose channels land on all three nodes (redis-cli splits the slots in three).
  const TOPICS = range(24).map((i) => `topic-${i}`)
  const owner = new Map<string, Node>()
  for (const topic of TOPICS) owner.set(topic, await cluster.ownerOf(`ws:${topic}`))
  const ownedBy = (node: Node): string[] => TOPICS.filter((topic) => owner.get(topic) === node)
  for (const node of cluster.nodes) t.ok(ownedBy(node).length >= 3, `node ${node.port} owns ${ownedBy(node).length} of the topics' channels`)
  const slotsSeen = new Set(await Promise.all(TOPICS.map(async (topic) => await first!.probe.call('CLUSTER', 'KEYSLOT', `ws:${topic}`))))
  t.ok(slotsSeen.size > 3, `the channels hash to ${slotsSeen.size} different slots`)

  // Every instance starts from the same (first) node: the Cluster client finds the others.
  const insts = [
    await instance(t, 'A', first!.port),
    await instance(t, 'B', first!.port),
    await instance(t, 'C', first!.port)
  ]
  const evens = TOPICS.filter((_, i) => i % 2 === 0)
  const subs: Sub[] = []
  for (const inst of insts) {
    subs.push(await sub(inst, `${inst.name}1`, TOPICS))
    subs.push(await sub(inst, `${inst.name}2`, evens))
  }
  for (const topic of TOPICS) await shardSubscribers(owner.get(topic)!, `ws:${topic}`, insts.length)
  t.pass('each channel: one SSUBSCRIBE per instance, on the node owning its slot')
  for (const node of cluster.nodes) {
    t.same(await channels(node.probe, 'ws:*', true), ownedBy(node).map((topic) => `ws:${topic}`).sort(), `node ${node.port}: the shard channels of its own slots, no others`)
    t.same(await channels(node.probe, '*'), [], `node ${node.port}: no classic channels`)
  }

  // Interleaved: each instance publishes in turn on every topic, so each
  // instance's sequence numbers per topic have gaps (one counter for all topics).
  const N = 40
  const start = Date.now()
  for (let s = 0; s < N; s++) {
    for (const topic of TOPICS) {
      for (const inst of insts) {
        const data = payload(inst.name, topic, s)
        inst.app.websocket.publish(topic, data, { binary: isBinary(s) })
      }
    }
  }
  const want = (s: Sub): number => s.topics.length * insts.length * N
  await Promise.all(subs.map(async (s) => await untilCount(s, want(s), 'every publish')))
  t.comment(`${insts.length * TOPICS.length * N} publishes, ${subs.reduce((sum, s) => sum + want(s), 0)} deliveries in ${Date.now() - start} ms`)

  // Fences, every instance on every topic: a fence passes the node after
  // every earlier publish on its channel, so once all have arrived, a
  // duplicate or an echo of an earlier message would have arrived before.
  for (const inst of insts) for (const topic of TOPICS) inst.app.websocket.publish(topic, fence(inst.name))
  await Promise.all(subs.map(async (s) => await untilCount(s, want(s) + s.topics.length * insts.length, 'the fences')))

  for (const s of subs) {
    const { seqs, fences, wrong } = tally(s.inbox.received)
    const expected: Record<string, number[]> = {}
    for (const inst of insts) for (const topic of s.topics) expected[`${inst.name}/${topic}`] = range(N)
    t.same(seqs, expected, `${s.name}: every publish of its ${s.topics.length} topics once, in order per publisher and topic`)
    t.same(wrong, [], `${s.name}: binary byte for byte, text as text`)
    t.equal(fences.length, s.topics.length * insts.length, `${s.name}: each fence once`)
    t.equal(s.inbox.received.length, want(s) + s.topics.length * insts.length, `${s.name}: nothing else`)
  }
  for (const inst of insts) {
    t.same(inst.adapter.stats, {
      published: TOPICS.length * (N + 1),
      received: (insts.length - 1) * TOPICS.length * (N + 1),
      dropped: 0,
      duplicates: 0,
      foreign: 0
    }, `${inst.name}: published its own, received the others', its own echoes skipped`)
  }

  // Leaving: one topic per node. B's last local subscriber leaving is B's
  // SUNSUBSCRIBE on the owning node; once all three left, the channel is gone there.
  const leaving = cluster.nodes.map((node) => ownedBy(node).find((topic) => evens.includes(topic))!)
  const leave = (inst: Instance, topic: string): void => {
    for (const s of subs) if (s.name.startsWith(inst.name)) s.conn.unsubscribe(topic)
  }
  for (const topic of leaving) {
    const [b1, b2] = subs.filter((s) => s.name.startsWith('B'))
    b1!.conn.unsubscribe(topic)
    t.equal(insts[1]!.app.websocket.subscriberCount(topic), 1, `B2 still has ${topic} on B`)
    b2!.conn.unsubscribe(topic)
    await shardSubscribers(owner.get(topic)!, `ws:${topic}`, insts.length - 1)
  }
  t.pass('the last local subscriber leaving: one SUNSUBSCRIBE on the owning node')
  for (const topic of leaving) {
    leave(insts[0]!, topic)
    leave(insts[2]!, topic)
  }
  for (const node of cluster.nodes) {
    const remaining = ownedBy(node).filter((topic) => !leaving.includes(topic))
    await shardChannelsAre(node, remaining.map((topic) => `ws:${topic}`))
    t.pass(`node ${node.port}: ${leaving.find((topic) => owner.get(topic) === node)!}'s channel gone once every instance left, its ${remaining.length} others kept`)
  }

  // The channels left on the same nodes are still carried, both ways.
  const kept = TOPICS.find((topic) => !leaving.includes(topic))!
  const a1 = subs[0]!
  const c1 = subs[4]!
  const beforeA = a1.inbox.received.length
  const beforeC = c1.inbox.received.length
  insts[2]!.app.websocket.publish(kept, payload('C', kept, N))
  await untilCount(a1, beforeA + 1, 'C\'s publish after the others left')
  insts[0]!.app.websocket.publish(kept, payload('A', kept, N + 1))
  await untilCount(c1, beforeC + 2, 'A\'s publish after the others left')
  const expectedAfter = [payload('C', kept, N), payload('A', kept, N + 1)]
  t.same(a1.inbox.received.slice(beforeA).map((m) => m.data.toString('utf8')), expectedAfter, `A1: ${kept} still carried (C's through Redis, then A's own)`)
  t.same(c1.inbox.received.slice(beforeC).map((m) => m.data.toString('utf8')), expectedAfter, `C1: ${kept} still carried (C's own, then A's through Redis)`)
})

t.test('sharded on a Cluster through an outage of every node: afterwards the subscriptions are the topics each instance has then, and messages flow', async (t) => {
  const cluster = await startCluster(t)
  const [first] = cluster.nodes
  const TOPICS = range(12).map((i) => `topic-${i}`)
  const owner = new Map<string, Node>()
  for (const topic of TOPICS) owner.set(topic, await cluster.ownerOf(`ws:${topic}`))
  // Before: 6 topics, on all three nodes; during the outage A leaves one and both join 6 more.
  const before = TOPICS.slice(0, 6)
  const joined = TOPICS.slice(6)
  const left = before[0]!
  for (const node of cluster.nodes) {
    t.ok(before.some((topic) => owner.get(topic) === node) && joined.some((topic) => owner.get(topic) === node), `node ${node.port} owns topics of both sets`)
  }
  const a = await instance(t, 'A', first!.port)
  const b = await instance(t, 'B', first!.port)
  const a1 = await sub(a, 'A1', before)
  const b1 = await sub(b, 'B1', before)
  for (const topic of before) await shardSubscribers(owner.get(topic)!, `ws:${topic}`, 2)
  // A publish on every topic from each: every node has a connection of each publisher to lose.
  for (const inst of [a, b]) for (const topic of before) inst.app.websocket.publish(topic, payload(inst.name, topic, 0))
  await untilCount(a1, 2 * before.length, 'the publishes before the outage')
  await untilCount(b1, 2 * before.length, 'the publishes before the outage')

  await cluster.stop()
  // Whatever the clients have noticed by now, nothing of this can reach a node.
  for (const topic of joined) {
    a1.conn.subscribe(topic)
    b1.conn.subscribe(topic)
  }
  a1.conn.unsubscribe(left)
  a1.topics.splice(0, a1.topics.length, ...before.filter((topic) => topic !== left), ...joined)
  b1.topics.push(...joined)
  await cluster.start()

  for (const topic of TOPICS) await shardSubscribers(owner.get(topic)!, `ws:${topic}`, topic === left ? 1 : 2)
  t.pass('every topic joined during the outage is subscribed by both instances; the one A left, by B only')
  for (const node of cluster.nodes) {
    t.same(await channels(node.probe, 'ws:*', true), TOPICS.filter((topic) => owner.get(topic) === node).map((topic) => `ws:${topic}`).sort(), `node ${node.port}: its shard channels, nothing else`)
  }

  // The publishers: each given client is ready again (an event) before the round.
  for (const inst of [a, b]) {
    if (inst.client.status !== 'ready') await within(new Promise((resolve) => inst.client.once('ready', resolve)), `${inst.name}'s client ready again`, WAIT)
  }
  const droppedBefore = [a.adapter.stats.dropped, b.adapter.stats.dropped]
  const countBefore = [a1.inbox.received.length, b1.inbox.received.length]
  const N = 20
  for (let s = 1; s <= N; s++) for (const topic of TOPICS) for (const inst of [a, b]) inst.app.websocket.publish(topic, payload(inst.name, topic, s), { binary: isBinary(s) })
  await untilCount(a1, countBefore[0]! + 2 * N * a1.topics.length, 'the round after the outage')
  await untilCount(b1, countBefore[1]! + 2 * N * b1.topics.length, 'the round after the outage')
  for (const inst of [a, b]) for (const topic of TOPICS) inst.app.websocket.publish(topic, fence(inst.name))
  await untilCount(a1, countBefore[0]! + 2 * (N + 1) * a1.topics.length, 'the fences')
  await untilCount(b1, countBefore[1]! + 2 * (N + 1) * b1.topics.length, 'the fences')
  for (const [s, from] of [[a1, countBefore[0]!], [b1, countBefore[1]!]] as Array<[Sub, number]>) {
    const { seqs, fences, wrong } = tally(s.inbox.received.slice(from))
    const expected: Record<string, number[]> = {}
    for (const name of ['A', 'B']) for (const topic of s.topics) expected[`${name}/${topic}`] = range(N).map((i) => i + 1)
    t.same(seqs, expected, `${s.name}: after the outage, every publish of its ${s.topics.length} topics once, in order, and nothing else`)
    t.same(wrong, [], `${s.name}: byte for byte`)
    t.equal(fences.length, 2 * s.topics.length, `${s.name}: each fence once`)
  }
  t.same([a.adapter.stats.dropped, b.adapter.stats.dropped], droppedBefore, 'nothing dropped once the clients were ready again')
  t.same(await numsub(owner.get(left)!.probe, [`ws:${left}`], true), { [`ws:${left}`]: 1 }, `${left}, which A left during the outage, still not subscribed by A after all that`)
  for (const inst of [a, b]) t.same([inst.adapter.stats.duplicates, inst.adapter.stats.foreign], [0, 0], `${inst.name}: no duplicates, nothing foreign`)
})
