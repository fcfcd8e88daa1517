import { Duplex } from 'node:stream'
import t from 'tap'
import { WebSocketConnection } from '../../lib/index.js'
import { SLAB_SIZE } from '../../lib/connection/frame-slab.js'
import { decodeFrames, OPCODE } from '../helpers/wire.cjs'

// Small frames a server sends are encoded into a slab shared by every
// connection (lib/connection/frame-slab.ts). These tests hold it to what
// makes that safe: each connection's bytes come out whole and in order
// whatever the others do in between, and bytes already handed to a socket
// are never written over, even while a peer leaves them unwritten.

/** A transport that records what is written; `stall` leaves writes incomplete (a peer that does not read). */
class Recorder extends Duplex {
  readonly chunks: Buffer[] = []
  stall = false
  override _write (chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk)
    if (!this.stall) done()
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    for (const { chunk } of chunks) this.chunks.push(chunk)
    if (!this.stall) done()
  }

  override _read (): void {}

  /** Data frames written so far, as [opcode, payload text]. */
  messages (): Array<[number, string]> {
    return decodeFrames(Buffer.concat(this.chunks)).map((frame) => [frame.opcode, frame.payload.toString('latin1')])
  }
}

function open (): { conn: WebSocketConnection, wire: Recorder } {
  const wire = new Recorder()
  const conn = new WebSocketConnection(wire, undefined, { role: 'server', maxMessageSize: 1 << 20, closeTimeout: 1000 })
  return { conn, wire }
}

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('frames of connections sending in turn come out whole and in order on each', async (t) => {
  const a = open()
  const b = open()
  const expectA: Array<[number, string]> = []
  const expectB: Array<[number, string]> = []
  for (let i = 0; i < 300; i++) {
    // Small text and binary, a large frame (its own buffers), and a broadcast-style ready frame.
    const kind = i % 7
    const text = `a${i}`.padEnd(1 + (i % 40), '.')
    if (kind === 3) {
      const big = 'L'.repeat(1500 + i)
      a.conn.send(big)
      expectA.push([OPCODE.text, big])
    } else if (kind === 5) {
      a.conn.send(Buffer.from(text))
      expectA.push([OPCODE.binary, text])
    } else {
      a.conn.send(text)
      expectA.push([OPCODE.text, text])
    }
    if (i % 2 === 0) {
      const other = `b${i}`
      b.conn.send(other)
      expectB.push([OPCODE.text, other])
    }
  }
  await tick()
  t.same(a.wire.messages(), expectA)
  t.same(b.wire.messages(), expectB)
})

t.test('a run of small frames is written as one buffer, with no concatenation', async (t) => {
  const { conn, wire } = open()
  const concat = Buffer.concat
  let joins = 0
  Buffer.concat = (...args: Parameters<typeof Buffer.concat>) => {
    joins++
    return concat.apply(Buffer, args)
  }
  try {
    for (let i = 0; i < 50; i++) conn.send(`message ${i}`)
    await tick()
  } finally {
    Buffer.concat = concat
  }
  t.equal(joins, 0, 'no Buffer.concat')
  t.equal(wire.chunks.length, 1, 'one write')
  t.equal(wire.messages().length, 50)
  t.same(wire.messages()[49], [OPCODE.text, 'message 49'])
})

t.test('bytes waiting for a peer that does not read are never written over', async (t) => {
  const stuck = open()
  stuck.wire.stall = true
  stuck.conn.send('held 1')
  stuck.conn.send('held 2')
  await tick()
  const held = Buffer.from(Buffer.concat(stuck.wire.chunks))
  // Others fill several slabs meanwhile.
  const busy = open()
  let sent = 0
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < 200; i++) busy.conn.send(`filler ${round}-${i}`.padEnd(30, '#'))
    sent += 200
    await tick()
  }
  t.ok(sent * 32 > 3 * SLAB_SIZE, 'the fillers span several slabs')
  t.same(Buffer.concat(stuck.wire.chunks), held, 'the stalled write is unchanged')
  t.same(stuck.wire.messages(), [[OPCODE.text, 'held 1'], [OPCODE.text, 'held 2']])
  t.equal(busy.wire.messages().length, sent)
})

t.test('a batch cut by a slab change or by a frame from elsewhere keeps its order', async (t) => {
  const { conn, wire } = open()
  const expected: Array<[number, string]> = []
  // 1,000-byte payloads: a few per slab, so the batch crosses slabs.
  for (let i = 0; i < 40; i++) {
    const text = String(i).padEnd(1000, '-')
    conn.send(text)
    expected.push([OPCODE.text, text])
    if (i % 9 === 0) {
      conn.ping('p')
      expected.push([OPCODE.ping, 'p'])
    }
  }
  await tick()
  t.same(wire.messages(), expected)
  t.ok(wire.chunks.length >= 1)
})
