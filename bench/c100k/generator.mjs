// One c100k load generator: a light raw-socket WebSocket client that holds
// its share of the connections from its own 127.x source address. Requests
// from the run (bench/lib/processes.mjs' IPC, answered with the same id):
//
//   open   opens `count` connections, `concurrency` handshakes at a time
//   idle   holds them for `seconds`, answering the server's heartbeat pings,
//          and pings every connection once, spread over the period, timing
//          each ping → pong round trip
//   close  closing handshake on every connection, `concurrency` at a time
//
// A connection that closes or errs before the close phase, or gets a close
// frame from the server, is dropped; the run fails on any.

import net from 'node:net'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { closePayload, encodeFrame, FrameReader, OPCODE } from '../../test/helpers/wire.cjs'
import { HOST, openWebSocket } from '../load/connect.mjs'

// Pings are timed over the first 90 % of the idle period, so the last pongs
// are due before it ends; they get this long after it to arrive.
const PING_SPREAD = 0.9
const PONG_GRACE_MS = 5000
const PING_TICK_MS = 100
const CLOSE_FRAME = encodeFrame(OPCODE.close, closePayload(1000))
// The plugin's heartbeat pings carry no payload, so their pong is one
// constant frame (a fixed mask key is still a masked frame the server must
// unmask): 100,000 pongs at once must not also cost 100,000 encodings.
const EMPTY_PONG = encodeFrame(OPCODE.pong, Buffer.alloc(0))
// How late this process's event loop ran, reported (ms) and reset with every
// answer: a generator that was late makes every round trip it timed longer.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()

const held = []
const drops = { count: 0, reasons: {} }
let phase = 'open'
let unexpected = 0

function drop (entry, reason) {
  if (entry.dropped || entry.closing) return
  entry.dropped = true
  drops.count++
  drops.reasons[reason] = (drops.reasons[reason] ?? 0) + 1
}

/** Reads the server's frames on an opened connection and keeps it in `held`. */
function hold (socket, leftover) {
  const entry = { socket, pingAt: 0, rtt: -1, heartbeats: 0, closing: false, closeCode: 0, dropped: false }
  const reader = new FrameReader((opcode, fin, payload) => {
    if (opcode === OPCODE.ping) {
      // The server's heartbeat: unanswered, it would terminate the connection.
      if (phase === 'idle') entry.heartbeats++
      if (socket.writable) socket.write(payload.length === 0 ? EMPTY_PONG : encodeFrame(OPCODE.pong, payload))
    } else if (opcode === OPCODE.pong) {
      if (entry.pingAt === 0) unexpected++
      else entry.rtt = performance.now() - entry.pingAt
      entry.pingAt = 0
    } else if (opcode === OPCODE.close) {
      entry.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
      // Our own closing handshake's answer: the server now closes TCP
      // (RFC 6455 §7.1.1), so the TIME_WAIT is on its side, not on our ports.
      drop(entry, `close frame ${entry.closeCode} from the server`)
    } else {
      unexpected++
    }
  })
  socket.on('data', (chunk) => reader.push(chunk))
  socket.on('error', (error) => drop(entry, `error ${error.code ?? error.message}`))
  socket.on('close', () => drop(entry, 'socket closed'))
  reader.push(leftover)
  socket.resume()
  held.push(entry)
}

async function open ({ port, path, count, localAddress, ports, concurrency, handshakeTimeoutMs }) {
  // Each connection binds an explicit source port, taken in turn from
  // `ports` ([first, last]): binding port 0 makes the kernel search the
  // address's used ports for a free one, which at 16,000 sockets cost over
  // 300 µs of system time per connection; a port in use (a TIME_WAIT, say)
  // is skipped.
  let nextPort = ports[0]
  const dial = (to) => net.connect({ host: HOST, port: to, localAddress, localPort: nextPort++ })
  const started = performance.now()
  const failures = { count: 0, reasons: {} }
  let remaining = count
  const worker = async () => {
    while (remaining > 0 && nextPort <= ports[1]) {
      remaining--
      try {
        const { socket, leftover } = await openWebSocket(port, path, handshakeTimeoutMs, null, dial)
        hold(socket, leftover)
      } catch (error) {
        if (error.code === 'EADDRINUSE') {
          remaining++
          continue
        }
        failures.count++
        failures.reasons[error.message] = (failures.reasons[error.message] ?? 0) + 1
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  if (remaining > 0) failures.reasons[`no free source port left in ${ports.join('–')}`] = remaining
  failures.count += remaining
  phase = 'opened'
  return { opened: held.length, failures, ms: performance.now() - started }
}

async function idle ({ seconds }) {
  phase = 'idle'
  for (const entry of held) {
    entry.heartbeats = 0
    entry.rtt = -1
  }
  const periodMs = seconds * 1000
  const spreadMs = periodMs * PING_SPREAD
  const started = performance.now()
  const ping = encodeFrame(OPCODE.ping, Buffer.alloc(0))
  let sent = 0
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started
      const due = Math.min(held.length, Math.ceil(held.length * Math.min(1, elapsed / spreadMs)))
      for (; sent < due; sent++) {
        const entry = held[sent]
        if (!entry.socket.writable) continue
        entry.pingAt = performance.now()
        // One frame, the same masked bytes on every connection: the key need
        // not be secret from the peer, and the server still unmasks each one.
        entry.socket.write(ping)
      }
      if (elapsed >= periodMs) {
        clearInterval(timer)
        resolve()
      }
    }, PING_TICK_MS)
  })
  const graceEnd = performance.now() + PONG_GRACE_MS
  while (held.some((entry) => entry.pingAt !== 0) && performance.now() < graceEnd) {
    await new Promise((resolve) => setTimeout(resolve, PING_TICK_MS))
  }
  phase = 'idled'
  let minBeats = Infinity
  let maxBeats = 0
  let beats = 0
  const rtts = []
  for (const entry of held) {
    minBeats = Math.min(minBeats, entry.heartbeats)
    maxBeats = Math.max(maxBeats, entry.heartbeats)
    beats += entry.heartbeats
    if (entry.rtt >= 0) rtts.push(Math.round(entry.rtt * 1000))
  }
  return {
    pings: sent,
    pongsMissing: held.filter((entry) => entry.pingAt !== 0).length,
    // Round trips in µs, one per connection pinged.
    rtts,
    heartbeats: { total: beats, min: held.length === 0 ? 0 : minBeats, max: maxBeats }
  }
}

/** Starts the closing handshake on `entry`; resolves true if it ended cleanly within `timeoutMs`. */
function closeOne (entry, timeoutMs) {
  const { socket } = entry
  if (entry.dropped || socket.destroyed) return Promise.resolve(false)
  entry.closing = true
  return new Promise((resolve) => {
    const timer = setTimeout(() => { socket.destroy(); resolve(false) }, timeoutMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(entry.closeCode === 1000)
    })
    socket.write(CLOSE_FRAME)
  })
}

async function close ({ concurrency, timeoutMs }) {
  phase = 'closing'
  const started = performance.now()
  let clean = 0
  let next = 0
  const worker = async () => {
    while (next < held.length) {
      if (await closeOne(held[next++], timeoutMs)) clean++
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, held.length) }, worker))
  return { closed: held.length, clean, ms: performance.now() - started }
}

const HANDLERS = { open, idle, close }

process.on('disconnect', () => process.exit(0))
process.on('message', async (message) => {
  const handler = HANDLERS[message.request]
  if (handler === undefined) return
  let answer
  try {
    answer = await handler(message)
  } catch (error) {
    answer = { failed: String(error?.stack ?? error) }
  }
  const delay = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 }
  loopDelay.reset()
  process.send({ id: message.id, ...answer, drops, unexpected, delay, rss: process.memoryUsage().rss, cpu: process.cpuUsage() })
})
process.send({ ready: true, cpu: process.cpuUsage() })
