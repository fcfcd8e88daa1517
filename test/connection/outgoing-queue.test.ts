import { Duplex } from 'node:stream'
import t from 'tap'
import { WebSocketConnection } from '../../lib/index.js'
import { kInternal } from '../../lib/connection/internal.js'
import { encodeFrame } from '../helpers/wire.cjs'
import { prng, randomInt } from '../helpers/data.js'

// Property: whatever the interleaving of sends, pings and reads by the peer,
// what a connection holds for a peer stays under its caps. The transport is a
// duplex whose writes complete only when the simulated peer reads them, so a
// stalled peer is modelled exactly and every run is deterministic.

class PeerPipe extends Duplex {
  private readonly unread: Array<{ size: number, done: (err?: Error | null) => void }> = []

  override _write (chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.unread.push({ size: chunk.length, done })
  }

  override _read (): void {}

  /** The peer reads up to `bytes`: completes the writes that fit. */
  readUpTo (bytes: number): void {
    while (this.unread.length > 0 && this.unread[0].size <= bytes) {
      const item = this.unread.shift()!
      bytes -= item.size
      item.done()
    }
  }

  /** The peer sends bytes to the connection. */
  send (data: Buffer): void {
    this.push(data)
  }
}

const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

for (const policy of ['close', 'refuse'] as const) {
  t.test(`random sends, pings and reads stay under maxBufferedAmount (onBufferFull: ${policy})`, async (t) => {
    let limited = 0
    for (let seed = 1; seed <= 40; seed++) {
      const random = prng(seed)
      const max = randomInt(random, 16, 512) * 1024
      const pipe = new PeerPipe()
      const conn = new WebSocketConnection(pipe, undefined, {
        role: 'server', maxMessageSize: 1 << 20, closeTimeout: 1000, maxBufferedAmount: max, onBufferFull: policy
      })
      let closeCode: number | undefined
      conn.on('close', (code) => { closeCode = code })
      let errorCode: string | undefined
      conn.on('error', (err: Error & { code?: string }) => { errorCode = err.code })
      let largest = 0
      let worst = 0
      let refusedBelow = false
      for (let step = 0; step < 200 && closeCode === undefined; step++) {
        const op = random()
        if (op < 0.5) {
          const size = randomInt(random, 0, 128 * 1024)
          const before = conn.bufferedAmount
          let refused = false
          try {
            conn.send(Buffer.alloc(size))
          } catch (err) {
            refused = (err as { code?: string }).code === 'WS_ERR_BUFFER_FULL'
            if (!refused) throw err
          }
          if (refused && before < max) refusedBelow = true
          if (refused) limited++
          if (!refused) largest = Math.max(largest, size)
        } else if (op < 0.75) {
          const pings = randomInt(random, 1, 300)
          pipe.send(Buffer.concat(Array.from({ length: pings }, () => encodeFrame(0x9, Buffer.alloc(125)))))
        } else {
          pipe.readUpTo(randomInt(random, 0, 256 * 1024))
        }
        await tick()
        worst = Math.max(worst, conn.bufferedAmount)
        // One message may be admitted just below the mark; pongs of one read come on top.
        if (conn.bufferedAmount > max + largest + 14 + 300 * 127) {
          t.fail(`seed ${seed}: ${conn.bufferedAmount} bytes buffered with a ${max}-byte limit`)
          break
        }
      }
      if (refusedBelow) t.fail(`seed ${seed}: a send was refused below the limit`)
      // A ping flood ends the connection under either policy; a full buffer only under 'close'.
      if (policy === 'refuse' && closeCode !== undefined && errorCode !== 'WS_ERR_PING_FLOOD') t.fail(`seed ${seed}: refuse closed the connection (${closeCode}, ${errorCode})`)
      if (policy === 'close' && closeCode !== undefined && closeCode !== 1008) t.fail(`seed ${seed}: closed with ${closeCode}`)
      if (closeCode === 1008) limited++
      conn.terminate()
      await tick()
    }
    t.ok(limited > 0, `the limit was reached in the runs (${limited} times), so the caps were exercised`)
    t.pass('40 seeds × 200 steps stayed under the caps')
  })
}

t.test('a message the peer never reads is never queued twice past the limit', async (t) => {
  const pipe = new PeerPipe()
  const conn = new WebSocketConnection(pipe, undefined, { role: 'server', maxMessageSize: 1 << 20, closeTimeout: 1000, maxBufferedAmount: 1000 })
  let code: number | undefined
  conn.on('close', (c) => { code = c })
  conn.send(Buffer.alloc(5000)) // one send below the mark is always admitted, whatever its size
  await tick()
  t.equal(conn.readyState, 1, 'a single large message on an idle connection goes out')
  conn.send('one more')
  await tick()
  t.equal(code, 1008, 'the next send past the limit drops the connection')
})

t.test('messages held for a handler that is not listening stay under their cap, however they arrive', async (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const random = prng(seed)
    const maxMessageSize = randomInt(random, 1, 64) * 1024
    const pipe = new PeerPipe()
    const conn = new WebSocketConnection(pipe, undefined, { role: 'server', maxMessageSize, closeTimeout: 1000, maxPendingBytes: maxMessageSize })
    conn[kInternal].handlerStarted() // an async handler still awaiting: messages are held for it
    let worst = 0
    let largestChunk = 0
    for (let step = 0; step < 300; step++) {
      const size = randomInt(random, 0, maxMessageSize)
      const frame = encodeFrame(0x2, Buffer.alloc(size))
      // The peer sends in random pieces, like TCP, and stops when the socket stops reading.
      for (let at = 0; at < frame.length;) {
        const piece = frame.subarray(at, at + randomInt(random, 1, 70_000))
        largestChunk = Math.max(largestChunk, piece.length)
        at += piece.length
        if (!pipe.push(Buffer.from(piece))) break
      }
      await tick()
      worst = Math.max(worst, conn[kInternal].heldBytes)
    }
    // Reading pauses once the held bytes pass the cap: at most one more chunk's worth of messages lands.
    if (worst > maxMessageSize + largestChunk + 64 * 1024) t.fail(`seed ${seed}: ${worst} bytes held with a ${maxMessageSize}-byte cap`)
    conn.terminate()
    await tick()
  }
  t.pass('30 seeds stayed under the held-message cap')
})
