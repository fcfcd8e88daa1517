import type { Duplex } from 'node:stream'
import { DEFAULTS, MAX_OWED_PINGS } from '../defaults.js'
import { publishLimit } from '../diagnostics.js'
import { WebSocketError, webSocketError } from '../protocol/errors.js'
import { CloseCode } from '../protocol/close-codes.js'
import { ReadyState, type WebSocketProtocol } from '../protocol/protocol.js'
import { encodeFrameInto, unmaskedFrameSize } from '../protocol/frame-writer.js'
import { emitSafely, type ConnectionEmitter } from './events.js'
import { reserveSlab, SLAB_SIZE, slab } from './frame-slab.js'
import { FLUSH_SCHEDULED, NEED_DRAIN, PONG_IN_FLIGHT, PONG_QUEUED, READING, REFUSE_WHEN_FULL } from './flags.js'
import type { ConnectionOptions, SendCallback } from './types.js'

// Concatenating small frames into one buffer beats handing the stream many writes;
// past this, the frames go to the socket as a corked batch (writev).
const CONCAT_LIMIT = 16 * 1024

/** What a send's callback gets when its data never reached the socket. */
const closedBeforeSent = (): WebSocketError => webSocketError('WS_ERR_CLOSED_BEFORE_SENT')

/** Pings that came while a pong was in flight: only the latest is answered. */
interface OwedPong {
  data: Buffer
  pings: number
}

/**
 * The write side of one connection: frames queued by the protocol are
 * batched and written once per read or per tick, `send` learns whether it
 * should wait for `drain`, the `maxBufferedAmount` policy decides what a send
 * to a peer that stopped reading does, and auto-pongs are coalesced while
 * the peer does not read them.
 *
 * Outbox, Inbox and ConnectionInternals are layers of one object per
 * connection (ConnectionInternals extends Inbox extends Outbox), not three
 * objects: an idle connection's memory is what the idle benchmark measures,
 * and each object costs its header and the pointers between them. Each
 * layer keeps to its own fields and to its own bits of `flags`.
 */
export abstract class Outbox {
  /** The public connection: `drain` and `error` are emitted on it. */
  readonly conn: ConnectionEmitter
  readonly socket: Duplex
  /** The protocol state machine; ConnectionInternals creates it, as its handler. */
  abstract readonly core: WebSocketProtocol
  /** The connection's state bits (flags.ts), shared by the layers. */
  flags = 0
  private readonly highWaterMark: number
  private readonly maxBufferedAmount: number
  // Frames waiting for the next flush; null while there are none (most of an idle connection's life).
  private out: Buffer[] | null = null
  private outBytes = 0
  private outCallbacks: SendCallback[] | null = null
  // Small frames appended in a row (appendFrame): bytes [batchStart, batchEnd)
  // of the shared slab `batch`, queued as one view of it once anything else
  // comes between; null when none are open.
  private batch: Buffer | null = null
  private batchStart = 0
  private batchEnd = 0
  // Pings that came while a pong was in flight (RFC 6455 §5.5.3 lets us answer
  // only the latest), answered once the pong in flight is written; null when none is owed.
  private owedPong: OwedPong | null = null

  constructor (conn: ConnectionEmitter, socket: Duplex, options: ConnectionOptions) {
    this.conn = conn
    this.socket = socket
    this.highWaterMark = options.highWaterMark ?? DEFAULTS.highWaterMark
    this.maxBufferedAmount = options.maxBufferedAmount ?? DEFAULTS.maxBufferedAmount
    if ((options.onBufferFull ?? DEFAULTS.onBufferFull) === 'refuse') this.flags |= REFUSE_WHEN_FULL
  }

  /**
   * Whether the application (or the plugin: broadcast, heartbeat, auto-pong)
   * may still queue a frame of its own: the connection is open and no close
   * frame was committed. The one place this rule is written.
   */
  get canSend (): boolean {
    return this.core.readyState === ReadyState.OPEN && !this.core.closeSent
  }

  /** Bytes handed to `send` that are not yet written to the kernel (those still being compressed included). */
  get bufferedAmount (): number {
    return this.outBytes + this.socket.writableLength + this.core.pendingOutboundBytes
  }

  /**
   * Queues bytes the protocol wrote. Inside a read they go out when the read
   * has been handled (onData flushes), otherwise on the next tick: either way
   * everything sent meanwhile is one write.
   */
  queue (data: Buffer): void {
    if (this.batch !== null) this.closeBatch()
    if (this.out === null) this.out = [data]
    else this.out.push(data)
    this.outBytes += data.length
    this.scheduleFlush()
  }

  /**
   * Queues a small, final, unmasked data frame, encoded straight into the
   * shared slab (frame-slab.ts) behind this connection's previous small
   * frame when nothing came between them, so a batch of them is one view.
   */
  appendFrame (opcode: number, payload: Buffer | string, byteLength: number): void {
    const size = unmaskedFrameSize(byteLength)
    let buffer = slab.buffer
    if (this.batch === null || this.batch !== buffer || this.batchEnd !== slab.used || slab.used + size > SLAB_SIZE) {
      if (this.batch !== null) this.closeBatch()
      buffer = reserveSlab(size)
      this.batch = buffer
      this.batchStart = this.batchEnd = slab.used
    }
    const end = encodeFrameInto(buffer!, slab.used, opcode, payload, byteLength)
    slab.used = end
    this.batchEnd = end
    this.outBytes += size
    this.scheduleFlush()
  }

  /** Queues the open batch of small frames as one view of the slab. */
  private closeBatch (): void {
    const view = this.batch!.subarray(this.batchStart, this.batchEnd)
    this.batch = null
    if (this.out === null) this.out = [view]
    else this.out.push(view)
  }

  private scheduleFlush (): void {
    if ((this.flags & (READING | FLUSH_SCHEDULED)) === 0) {
      this.flags |= FLUSH_SCHEDULED
      process.nextTick(flushTick, this)
    }
  }

  /**
   * Queues a complete frame (broadcast). False if it was not queued (the
   * connection cannot send, or it was refused at `maxBufferedAmount`), as
   * opposed to queued past the high-water mark.
   */
  enqueueFrame (frame: Buffer): boolean {
    if (!this.canSend) return false
    if (!this.admit(undefined, false)) return false
    // Through the protocol: behind any message still being compressed.
    this.core.sendFrame(frame)
    return true
  }

  /** Writes the batch. */
  flush (): void {
    this.flags &= ~FLUSH_SCHEDULED
    if (this.batch !== null) this.closeBatch()
    const out = this.out
    if (out === null) return
    const callbacks = this.outCallbacks
    this.out = null
    this.outCallbacks = null
    const bytes = this.outBytes
    this.outBytes = 0
    // The socket's own `drain` only comes if the socket passed its (different)
    // mark, so an owed `drain` is also checked when this batch is written.
    const pong = (this.flags & PONG_QUEUED) !== 0
    if (pong) this.flags = (this.flags & ~PONG_QUEUED) | PONG_IN_FLIGHT
    const done = callbacks === null && !pong && (this.flags & NEED_DRAIN) === 0 ? undefined : flushDone(this, callbacks, pong)
    const socket = this.socket
    if (socket.destroyed || !socket.writable) {
      done?.(closedBeforeSent())
      return
    }
    if (out.length === 1) {
      socket.write(out[0], done)
    } else if (bytes <= CONCAT_LIMIT) {
      socket.write(Buffer.concat(out, bytes), done)
    } else {
      socket.cork()
      const last = out.length - 1
      for (let i = 0; i < last; i++) socket.write(out[i])
      socket.write(out[last], done)
      socket.uncork()
    }
  }

  /** Writes the batch, if there is one: at the end of a read. */
  flushQueued (): void {
    if (this.out !== null || this.batch !== null) this.flush()
  }

  /** Runs `callback` once the batch the next frame joins is written (or fails). */
  addCallback (callback: SendCallback): void {
    if (this.outCallbacks === null) this.outCallbacks = []
    this.outCallbacks.push(callback)
  }

  /**
   * Whether one more frame may be queued. Past `maxBufferedAmount` bytes
   * waiting, the peer is not reading what it is sent: the connection is
   * dropped, or (with `onBufferFull: 'refuse'`) the send is refused — thrown
   * if `throws`, or passed to `callback`. One send is always admitted below
   * the mark, so a single large message on an idle connection goes out
   * whatever its size.
   */
  admit (callback?: SendCallback, throws = true): boolean {
    const buffered = this.bufferedAmount
    if (buffered < this.maxBufferedAmount) return true
    const limit = this.maxBufferedAmount
    if ((this.flags & REFUSE_WHEN_FULL) !== 0) {
      const err = new WebSocketError('WS_ERR_BUFFER_FULL', `send refused: ${buffered} bytes are waiting to be written (maxBufferedAmount ${limit})`)
      if (callback !== undefined) process.nextTick(callback, err)
      else if (throws) throw err
      return false
    }
    this.dropAtLimit(new WebSocketError('WS_ERR_BUFFER_FULL', `the peer is not reading: ${buffered} bytes waiting to be written (maxBufferedAmount ${limit})`, CloseCode.PolicyViolation), 'maxBufferedAmount')
    if (callback !== undefined) process.nextTick(callback, closedBeforeSent())
    return false
  }

  /** After a send: false (and a `drain` owed) once `bufferedAmount` reaches the high-water mark. */
  belowHighWaterMark (): boolean {
    if (this.bufferedAmount < this.highWaterMark) return true
    this.flags |= NEED_DRAIN
    return false
  }

  /** Emits an owed `drain` once the backlog is below the high-water mark. */
  checkDrain (): void {
    if ((this.flags & NEED_DRAIN) !== 0 && this.bufferedAmount < this.highWaterMark) {
      this.flags &= ~NEED_DRAIN
      emitSafely(this.conn, 'drain')
    }
  }

  /**
   * Answers a ping (auto-pong). While an earlier pong has not reached the
   * kernel (the peer is not reading), later pings are coalesced into one
   * owed pong carrying the latest payload, as RFC 6455 §5.5.3 permits; so a
   * ping flood costs one pong, and a peer that keeps flooding is dropped.
   */
  answerPing (data: Buffer): void {
    if (!this.canSend) return
    if ((this.flags & PONG_IN_FLIGHT) === 0) {
      this.flags |= PONG_QUEUED
      this.core.pong(data)
      return
    }
    // A copy: the payload is a view of a read chunk that the owed pong would pin.
    const owed = this.owedPong
    if (owed === null) this.owedPong = { data: Buffer.from(data), pings: 1 }
    else {
      owed.data = Buffer.from(data)
      if (++owed.pings > MAX_OWED_PINGS) {
        this.dropAtLimit(new WebSocketError('WS_ERR_PING_FLOOD', `the peer sent ${owed.pings} pings without reading their pongs`, CloseCode.PolicyViolation), 'maxOwedPings')
      }
    }
  }

  /** The write that carried a pong reached the kernel: send the owed one, if any. */
  pongWritten (): void {
    this.flags &= ~PONG_IN_FLIGHT
    const owed = this.owedPong
    if (owed === null) return
    this.owedPong = null
    this.answerPing(owed.data)
  }

  /** The transport is gone: what was not written is dropped, and the sends waiting for it fail. */
  discardUnwritten (): void {
    this.out = null
    this.batch = null
    this.outBytes = 0
    this.owedPong = null
    const callbacks = this.outCallbacks
    this.outCallbacks = null
    if (callbacks !== null) {
      const err = closedBeforeSent()
      for (const cb of callbacks) cb(err)
    }
  }

  /**
   * Ends a connection whose peer broke a limit that writing to it cannot fix
   * (it is not reading): the close code is recorded for the `close` event and
   * the socket is destroyed at once, since a close frame would only queue
   * behind what the peer does not read.
   */
  private dropAtLimit (error: WebSocketError, limit: string): void {
    if (this.core.readyState === ReadyState.CLOSED) return
    const conn = this.conn
    conn.log?.info({ err: error, limit }, 'websocket connection dropped at a limit')
    publishLimit(limit, conn, error)
    this.core.abort(error.closeCode ?? CloseCode.PolicyViolation, error.message)
    if (conn.listenerCount('error') > 0) emitSafely(conn, 'error', error)
    this.socket.destroy()
  }
}

function flushTick (box: Outbox): void {
  if ((box.flags & FLUSH_SCHEDULED) !== 0) box.flush()
}

function flushDone (box: Outbox, callbacks: SendCallback[] | null, pong: boolean): SendCallback {
  return (err) => {
    if (callbacks !== null) {
      for (const cb of callbacks) cb(err ?? null)
    }
    if (err) return
    if (pong) box.pongWritten()
    box.checkDrain()
  }
}
