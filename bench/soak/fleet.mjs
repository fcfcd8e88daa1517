// The soak run's well-behaved connections: `ws` clients that stay open,
// churn (close with 1000 and reconnect), ping every second, and send
// numbered messages whose delivery they check.
//
// Roles by slot index (i % 20): 0 echo, 1 count, 2–3 ping, the rest idle.
//  - echo:  up to 8 messages in flight on /echo; every echo must come back
//           in order and byte for byte; when the connection closes with
//           1000 after we closed it, every message sent must have come back.
//  - count: messages to /count?id=…; the server's count for the id is
//           compared afterwards with what was sent and what the send
//           callback confirmed as written.
//  - ping:  ws.ping() every second, pongs counted.

import WebSocket from 'ws'
import { sleep } from './raw-peer.mjs'

const ECHO_WINDOW = 8
const SEND_TICK_MS = 50
const SEND_SLICES = 10 // each message connection sends once per SEND_SLICES ticks: 2 messages/s
const OPEN_ATTEMPTS = 3
const PADDING = 'soak é € 😀 '

function roleOf (index) {
  const r = index % 20
  return r === 0 ? 'echo' : r === 1 ? 'count' : r <= 3 ? 'ping' : 'idle'
}

/** Message `seq`: mostly 16 B–2 KiB, every 64th 64–455 KiB; text (with multi-byte UTF-8) or binary. */
function payload (seq, binary) {
  const size = seq % 64 === 0 ? 64 * 1024 + (seq * 7919) % (390 * 1024) : 16 + (seq * 131) % 2000
  if (binary) {
    const bytes = Buffer.alloc(size, seq & 0xff)
    bytes.write(`${seq}:`, 'latin1')
    return bytes
  }
  return Buffer.from(`${seq}:${PADDING.repeat(Math.ceil(size / 20))}`)
}

function tally (table, key) {
  table[key] = (table[key] ?? 0) + 1
}

export class Fleet {
  #port
  #slots = []
  #open = new Set()
  #opening = 0
  #active = false
  #timers = []
  #tick = 0

  constructor (port, size, { tag = 'run' } = {}) {
    this.#port = port
    this.tag = tag
    for (let i = 0; i < size; i++) this.#slots.push({ index: i, role: roleOf(i), generation: 0, dead: false })
    this.stats = {
      opened: 0,
      reconnects: 0,
      openFailures: {},
      deadSlots: 0,
      closedByUs: 0,
      endedNot1000: {},
      errors: 0,
      pings: 0,
      pongs: 0,
      echo: { sent: 0, acked: 0, echoed: 0, corrupt: 0, lostOnNormalClose: 0, unconfirmedOnAbnormalClose: 0 },
      count: { sent: 0, acked: 0 },
      maxOpen: 0
    }
    this.countConnections = [] // { id, sent, acked, sentBytes, normal }
  }

  get openCount () {
    return this.#open.size
  }

  /** Opens every slot, `concurrency` at a time; stops starting new ones after `deadlineMs`. */
  async openAll (concurrency, deadlineMs, onProgress = () => {}) {
    const deadline = Date.now() + deadlineMs
    let next = 0
    const worker = async () => {
      while (next < this.#slots.length && Date.now() < deadline) {
        const slot = this.#slots[next++]
        await this.#openSlot(slot)
        if ((slot.index + 1) % 1000 === 0) onProgress(slot.index + 1)
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
  }

  async #openSlot (slot) {
    this.#opening++
    try {
      for (let attempt = 1; attempt <= OPEN_ATTEMPTS; attempt++) {
        if (await this.#connect(slot)) return true
        if (this.stopping) break
        await sleep(500 * attempt)
      }
      slot.dead = true
      this.stats.deadSlots++
      return false
    } finally {
      this.#opening--
    }
  }

  #connect (slot) {
    const id = `${this.tag}.${slot.index}.${slot.generation++}`
    const path = slot.role === 'count' ? `/count?kind=count&id=${id}` : `/echo?kind=${slot.role}&id=${id}`
    const ws = new WebSocket(`ws://127.0.0.1:${this.#port}${path}`, { perMessageDeflate: false, handshakeTimeout: 15_000 })
    const conn = { id, ws, slot, seq: 0, sent: 0, acked: 0, sentBytes: 0, expected: [], closingByUs: false, reconnect: false }
    return new Promise((resolve) => {
      let opened = false
      ws.on('error', (error) => {
        if (!opened) {
          tally(this.stats.openFailures, error.message.replace(/\d{4,}/g, 'N').slice(0, 60))
          resolve(false)
        } else this.stats.errors++
      })
      ws.once('open', () => {
        opened = true
        this.stats.opened++
        this.#open.add(conn)
        this.stats.maxOpen = Math.max(this.stats.maxOpen, this.#open.size)
        slot.conn = conn
        // A reconnect that lands after the run stopped closes at once.
        if (!this.#active && this.stopping) this.#close(conn, false)
        resolve(true)
      })
      ws.on('message', (data, isBinary) => this.#onMessage(conn, data, isBinary))
      ws.on('pong', () => { this.stats.pongs++ })
      ws.on('close', (code) => this.#onClose(conn, code, opened))
    })
  }

  #onMessage (conn, data, isBinary) {
    const expected = conn.expected.shift()
    if (expected === undefined || expected.binary !== isBinary || !expected.bytes.equals(data)) this.stats.echo.corrupt++
    else this.stats.echo.echoed++
  }

  #onClose (conn, code, opened) {
    if (!opened) return
    this.#open.delete(conn)
    if (conn.slot.conn === conn) conn.slot.conn = undefined
    const normal = code === 1000 && conn.closingByUs
    if (!normal) tally(this.stats.endedNot1000, `${code}${conn.closingByUs ? ' (we closed)' : ''}`)
    if (conn.slot.role === 'echo') {
      if (normal) this.stats.echo.lostOnNormalClose += conn.expected.length
      else this.stats.echo.unconfirmedOnAbnormalClose += conn.expected.length
    } else if (conn.slot.role === 'count') {
      this.countConnections.push({ id: conn.id, sent: conn.sent, acked: conn.acked, sentBytes: conn.sentBytes, normal })
    }
    if (this.#active && (conn.reconnect || !normal)) {
      this.stats.reconnects++
      this.#openSlot(conn.slot)
    }
  }

  #close (conn, reconnect) {
    if (conn.closingByUs) return
    conn.closingByUs = true
    conn.reconnect = reconnect
    this.stats.closedByUs++
    conn.ws.close(1000)
  }

  #send (conn) {
    const seq = ++conn.seq
    const binary = conn.slot.role === 'echo' && seq % 2 === 0
    const bytes = payload(seq, binary)
    conn.sent++
    conn.sentBytes += bytes.length
    const stats = this.stats[conn.slot.role]
    stats.sent++
    if (conn.slot.role === 'echo') conn.expected.push({ bytes, binary })
    conn.ws.send(bytes, { binary }, (error) => {
      if (error) return
      conn.acked++
      stats.acked++
    })
  }

  /** Starts pings, messages and churn (`churnPerSecond` closes + reconnects). */
  start (churnPerSecond) {
    this.#active = true
    this.#timers.push(setInterval(() => {
      for (const conn of this.#open) {
        if (conn.slot.role === 'ping' && !conn.closingByUs && conn.ws.readyState === WebSocket.OPEN) {
          conn.ws.ping()
          this.stats.pings++
        }
      }
    }, 1000))
    this.#timers.push(setInterval(() => {
      const slice = this.#tick++ % SEND_SLICES
      for (const conn of this.#open) {
        const { role, index } = conn.slot
        if (conn.closingByUs || index % SEND_SLICES !== slice || conn.ws.readyState !== WebSocket.OPEN) continue
        if (role === 'count' || (role === 'echo' && conn.expected.length < ECHO_WINDOW)) this.#send(conn)
      }
    }, SEND_TICK_MS))
    let owed = 0
    this.#timers.push(setInterval(() => {
      owed += churnPerSecond / 10
      for (; owed >= 1; owed--) {
        const slot = this.#slots[Math.floor(Math.random() * this.#slots.length)]
        if (slot.conn !== undefined) this.#close(slot.conn, true)
      }
    }, 100))
  }

  /** Stops all activity, closes every connection with 1000, waits up to `deadlineMs`; terminates what is left. */
  async closeAll (deadlineMs) {
    this.#active = false
    this.stopping = true
    for (const timer of this.#timers) clearInterval(timer)
    const deadline = Date.now() + deadlineMs
    while ((this.#open.size > 0 || this.#opening > 0) && Date.now() < deadline) {
      for (const conn of this.#open) this.#close(conn, false)
      await sleep(100)
    }
    const left = this.#open.size
    for (const conn of this.#open) conn.ws.terminate()
    return left
  }
}
