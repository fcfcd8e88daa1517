// Cross-instance fan-out: connections spread over several server processes
// that share one Redis, all in one room; the first connection publishes, and
// every connection (the publisher's own included) must receive every publish,
// whichever instance it is on. Measured: deliveries/s with `inflight`
// publishes outstanding, then the latency from publish to delivery with one
// publish at a time (how long a message takes to reach the room).

import { performance } from 'node:perf_hooks'
import { percentileSorted, sortedNumbers } from '../lib/stats.mjs'
import { closeAll, handleControl, openMany } from './connect.mjs'
import { FANOUT_PROTOCOLS } from './fanout-wire.mjs'
import { MessageReader } from './message-reader.mjs'
import { CAPTURE_WAIT_MS, measureWindow, sleep, usageBetween, waitFor } from './window.mjs'

// Subscriptions reach Redis asynchronously (ours subscribes a topic's channel
// when its first local subscriber joins): publishes are repeated until one
// reaches every connection, then nothing is in flight once arrivals stop.
const PRIME_ATTEMPTS = 40
const PRIME_WAIT_MS = 500
const QUIET_MS = 200
const JOIN_TIMEOUT_MS = 20_000
// Every publish must arrive: a missing delivery is a lost message, not a slow one.
const DRAIN_TIMEOUT_MS = 10_000
// Latency is read on this many connections per instance, spread over the
// order they joined in (so early and late receivers of the server's loop).
// The others are paused meanwhile: reading 1,000 sockets one frame at a
// time would take the generator longer than most servers take to send.
const SAMPLED_PER_INSTANCE = 10

export async function runFanout (job) {
  const { ports, route, perInstance, inflight, warmupMs, durationMs, serverPids, clockTicks } = job
  const wire = FANOUT_PROTOCOLS[job.protocol]
  if (wire === undefined) throw new Error(`unknown fan-out protocol ${job.protocol}`)
  const abort = new AbortController()
  let failure = null
  const fail = (reason) => {
    failure ??= reason
    abort.abort()
  }

  const groups = []
  try {
    for (const port of ports) groups.push(await openMany(port, wire.path(route), perInstance))
  } catch (error) {
    for (const connection of groups.flat()) connection.socket.destroy()
    throw error
  }
  const step = Math.max(1, Math.floor(perInstance / SAMPLED_PER_INSTANCE))
  const conns = groups.flatMap((group, instance) => group.map(({ socket, leftover }, index) => ({
    socket,
    leftover,
    instance,
    // The last connection of each instance never publishes: what it gets proves the fan-out to its instance.
    checked: index === group.length - 1,
    sampled: (index + 1) % step === 0,
    joined: wire.join === null,
    handshakeMessages: 0,
    received: 0,
    base: 0,
    verdict: null
  })))
  const copies = conns.length
  const publisher = conns[0].socket
  const sampled = conns.filter((conn) => conn.sampled)
  let phase = 'join' // join → prime → load → latency → drain
  let measuring = false
  let sent = 0
  let delivered = 0
  let deliveredInWindow = 0
  // Latency phase: publish times by publish index from `latencyFrom`, and
  // how many sampled connections still wait for the latest publish.
  let latencyFrom = 0
  let behind = 0
  const sentAt = []
  const samples = []

  const publish = (count) => {
    sent += count
    publisher.write(count === 1 ? wire.publishFrame : Buffer.concat(new Array(count).fill(wire.publishFrame)))
  }
  // A new publish only once all but `inflight` earlier ones reached every connection.
  const topUp = () => {
    const allowed = Math.floor(delivered / copies) + inflight - sent
    if (allowed > 0) publish(allowed)
  }
  const publishTimed = () => {
    behind = sampled.length
    sentAt.push(performance.now())
    publish(1)
  }

  const onDelivered = (conn, count) => {
    const first = conn.received - conn.base // this connection's index of its first new message
    conn.received += count
    if (phase === 'join' || phase === 'prime') return
    delivered += count
    if (conn.received - conn.base > sent) fail(`a connection on instance ${conn.instance + 1} received more messages than were published`)
    if (phase === 'load') {
      if (measuring) deliveredInWindow += count
      topUp()
    } else if (phase === 'latency' && conn.sampled && first + count > latencyFrom) {
      const now = performance.now()
      for (let k = Math.max(first, latencyFrom); k < first + count; k++) samples.push((now - sentAt[k - latencyFrom]) * 1000)
      if (conn.received - conn.base === sent && --behind === 0) publishTimed()
    }
  }

  for (const conn of conns) {
    const { socket } = conn
    const afterJoin = conn.checked && (job.checkAll ? 'all' : 'first')
    let handshakeStep = 0
    const reader = new MessageReader({
      capture: conn.joined ? afterJoin : 'all',
      onCapture (opcode, bytes) {
        if (!conn.joined) {
          conn.handshakeMessages++
          const next = wire.join(handshakeStep++, bytes.toString('utf8'))
          if (typeof next === 'string') return fail(`instance ${conn.instance + 1}: ${next}`)
          if (next.reply !== undefined) socket.write(next.reply)
          if (next.done) {
            conn.joined = true
            reader.recapture(afterJoin)
          }
          return
        }
        const result = wire.check(opcode, bytes)
        if (conn.verdict === null || conn.verdict === 'ok') conn.verdict = result
        if (result !== 'ok') fail(`instance ${conn.instance + 1}: ${result}`)
      },
      onControl (opcode, data) {
        if (handleControl(socket, opcode, data) && phase !== 'done') fail(`instance ${conn.instance + 1} closed a connection`)
      }
    })
    const push = (chunk) => {
      conn.handshakeMessages = 0
      const completed = reader.push(chunk) - conn.handshakeMessages
      if (completed > 0) onDelivered(conn, completed)
    }
    socket.on('data', push)
    socket.on('error', (error) => { if (phase !== 'done') fail(error.message) })
    socket.on('close', () => { if (phase !== 'done') fail(`connection to instance ${conn.instance + 1} closed by the server`) })
    push(conn.leftover)
    socket.resume()
  }

  const drain = async () => {
    if (failure === null && !await waitFor(() => failure !== null || delivered >= sent * copies, DRAIN_TIMEOUT_MS)) {
      fail(`${sent * copies - delivered} deliveries never arrived`)
    }
  }

  try {
    if (!await waitFor(() => failure !== null || conns.every((conn) => conn.joined), JOIN_TIMEOUT_MS)) {
      fail(`${conns.filter((conn) => !conn.joined).length} connections did not finish the ${job.protocol} handshake`)
    }
    phase = 'prime'
    if (failure === null) await prime(conns, publisher, wire, fail)
    for (const conn of conns) conn.base = conn.received
    phase = 'load'
    if (failure === null) topUp()
    const { start, end } = await measureWindow({ serverPid: serverPids, warmupMs, durationMs, signal: abort.signal }, (on) => { measuring = on })
    phase = 'drain'
    await drain()

    // One publish at a time: its latency is the fan-out's, without a queue ahead of it.
    for (const conn of conns) if (!conn.sampled) conn.socket.pause()
    latencyFrom = sent
    phase = 'latency'
    if (failure === null) publishTimed()
    await sleep(durationMs, abort.signal)
    phase = 'drain'
    for (const conn of conns) conn.socket.resume()
    await drain()

    phase = 'done'
    const checked = conns.filter((conn) => conn.checked)
    if (failure === null) await waitFor(() => checked.every((conn) => conn.verdict !== null), CAPTURE_WAIT_MS)
    const unchecked = checked.find((conn) => conn.verdict !== 'ok')
    if (failure === null && unchecked !== undefined) fail(`instance ${unchecked.instance + 1}: ${unchecked.verdict ?? 'no publish received'}`)
    if (failure !== null) return { failure }
    const usage = usageBetween(start, end, clockTicks)
    const sorted = sortedNumbers(samples)
    return {
      metrics: {
        rate: deliveredInWindow / usage.seconds,
        p50: percentileSorted(sorted, 0.5),
        p99: percentileSorted(sorted, 0.99)
      },
      generatorCpu: usage.generatorCpu,
      serverCpu: usage.serverCpu,
      otherCpu: usage.otherCpu
    }
  } finally {
    phase = 'done'
    await closeAll(conns.map((conn) => conn.socket))
  }
}

/** Publishes one message at a time until one reaches every connection, then waits for arrivals to stop. */
async function prime (conns, publisher, wire, fail) {
  for (let attempt = 0; attempt < PRIME_ATTEMPTS; attempt++) {
    const before = conns.map((conn) => conn.received)
    publisher.write(wire.publishFrame)
    if (await waitFor(() => conns.every((conn, i) => conn.received > before[i]), PRIME_WAIT_MS)) {
      // An earlier attempt's publish may have been what arrived: wait until nothing is in flight.
      let total = -1
      for (let quiet = 0; quiet < 50 && total !== sum(conns); quiet++) {
        total = sum(conns)
        await sleep(QUIET_MS)
      }
      return
    }
  }
  const silent = new Set(conns.filter((conn) => conn.received === 0).map((conn) => conn.instance + 1))
  fail(`after ${PRIME_ATTEMPTS} publishes, connections on instance ${[...silent].join(', ') || '?'} had received none ` +
    '(is the instance subscribed on Redis?)')
}

const sum = (conns) => conns.reduce((total, conn) => total + conn.received, 0)
