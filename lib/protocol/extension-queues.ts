import { isUtf8 } from 'node:buffer'
import { ProtocolError, WebSocketError, protocolError, webSocketError } from './errors.js'
import type { MessageExtension } from './extension.js'
import { encodeFrame } from './frame-writer.js'
import { Opcode } from './opcodes.js'

// An extension's transforms complete through a callback, possibly later
// (zlib on the thread pool), yet messages must keep their order on the wire
// and to the application, and so must the frames around them: pings, pongs,
// pre-encoded frames and each side's close. These queues keep that order for
// the state machine (protocol.ts), which creates them only for a connection
// with an extension; without one, messages and frames go straight through.

/** What the decode queue hands back to the state machine. */
export interface DecodeQueueHost {
  /** A message, decoded if it had to be, in the order received. */
  onMessage (data: Buffer, isBinary: boolean): void
  /** A message could not be decoded (or its text is not UTF-8): the connection fails with `error.closeCode`. */
  onDecodeError (error: ProtocolError): void
  /** The peer's close frame, held until every message received before it was delivered. */
  onClose (code: number, reason: string): void
  /** The decode backlog crossed a bound (see `checkBacklog`). */
  onDecodeBacklog (backlogged: boolean): void
}

interface Incoming {
  data: Buffer
  isBinary: boolean
  compressed: boolean
  /** Memory it holds, for the decode backlog: its bytes, the read buffer it pins (counted once), the entry. */
  cost: number
}

// Bookkeeping per queued message, so a flood of empty messages is bounded too.
const ENTRY_COST = 64

/**
 * Received messages in order around asynchronous decodes, with the memory
 * they hold counted so that reading can pause while decoding lags.
 */
export class DecodeQueue {
  private readonly extension: MessageExtension
  private readonly maxMessageSize: number
  private readonly maxDecodeBacklog: number
  private readonly host: DecodeQueueHost
  private items: Incoming[] | null = null
  private decoding = false
  // What the queued messages (and the one being decoded) hold; past maxDecodeBacklog, reading pauses.
  private bytes = 0
  private lastBuffer: ArrayBufferLike | null = null
  private backlogged = false
  // The connection failed or its transport is gone: nothing more is delivered.
  private halted = false
  // The peer's close, held until the messages received before it are decoded.
  private heldClose: { code: number, reason: string } | null = null

  constructor (extension: MessageExtension, maxMessageSize: number, maxDecodeBacklog: number, host: DecodeQueueHost) {
    this.extension = extension
    this.maxMessageSize = maxMessageSize
    this.maxDecodeBacklog = maxDecodeBacklog
    this.host = host
  }

  /** A message is being decoded or waits to be: anything received now must wait behind it. */
  get busy (): boolean {
    return this.decoding || (this.items !== null && this.items.length > 0)
  }

  /** Memory held by received messages waiting to be decoded. */
  get backlog (): number {
    return this.bytes
  }

  push (data: Buffer, isBinary: boolean, compressed: boolean): void {
    if (this.items === null) this.items = []
    // A message may be a view of a larger read buffer that queueing it keeps
    // alive: that buffer is counted, once, so tiny messages cannot pin much.
    let cost = data.length + ENTRY_COST
    if (data.buffer !== this.lastBuffer) {
      this.lastBuffer = data.buffer
      cost += data.buffer.byteLength - data.length
    }
    this.bytes += cost
    this.items.push({ data, isBinary, compressed, cost })
    this.drain()
  }

  /**
   * Holds the peer's close behind the messages still queued: reporting it
   * now would put it before messages that preceded it on the wire, and a
   * server would close the transport before delivering them. Only while `busy`.
   */
  holdClose (code: number, reason: string): void {
    this.heldClose = { code, reason }
  }

  /**
   * The connection failed: nothing queued is delivered any more (RFC 6455
   * §7.1.7), nor any decode that completes later. Call `checkBacklog` once
   * the failure is handled, so that reading resumes.
   */
  halt (): void {
    this.halted = true
  }

  /** The transport is gone: forgets everything queued. */
  clear (): void {
    this.halted = true
    this.items = null
    this.bytes = 0
    this.lastBuffer = null
    this.backlogged = false
    this.heldClose = null
  }

  /**
   * Tells the host when the decode backlog crosses its bounds: reading
   * should pause while an asynchronous decode is pending and the queue holds
   * more than maxDecodeBacklog, and resume at half of it (or once the
   * connection failed, so its end can still be read).
   */
  checkBacklog (): void {
    if (!this.backlogged) {
      if (this.decoding && this.bytes > this.maxDecodeBacklog && !this.halted) {
        this.backlogged = true
        this.host.onDecodeBacklog(true)
      }
    } else if (this.bytes <= this.maxDecodeBacklog / 2 || this.halted) {
      this.backlogged = false
      this.host.onDecodeBacklog(false)
    }
  }

  private drain (): void {
    const queue = this.items
    // After a failure nothing more is processed (RFC 6455 §7.1.7), even what was already queued.
    while (!this.decoding && queue !== null && queue.length > 0 && !this.halted) {
      const item = queue.shift()!
      if (!item.compressed) {
        this.bytes -= item.cost
        this.host.onMessage(item.data, item.isBinary)
        continue
      }
      this.decoding = true
      let sync = true
      let finished = false
      this.extension.decode(item.data, this.maxMessageSize, (err, result) => {
        this.decoding = false
        finished = true
        if (this.halted) return
        this.bytes -= item.cost
        if (err) {
          this.host.onDecodeError(err instanceof ProtocolError ? err : protocolError('WS_ERR_EXTENSION_DECODE', err.message, { cause: err }))
          return
        }
        const data = result!
        if (!item.isBinary && !isUtf8(data)) {
          this.host.onDecodeError(protocolError('WS_ERR_INVALID_UTF8'))
          return
        }
        this.host.onMessage(data, item.isBinary)
        // Called back later: go on with what queued up meanwhile (a synchronous call returns to the loop).
        if (!sync) this.drain()
      })
      sync = false
      if (!finished) {
        this.checkBacklog()
        return
      }
    }
    this.checkBacklog()
    const close = this.heldClose
    if (close !== null && !this.decoding && (queue === null || queue.length === 0) && !this.halted) {
      this.heldClose = null
      this.host.onClose(close.code, close.reason)
    }
  }
}

/** What the encode queue hands back to the state machine. */
export interface EncodeQueueHost {
  /** Frames for the wire, in order (one or two buffers: a header and a payload). */
  write (frames: Buffer[]): void
  /** The extension failed to encode a message (the send's callback has the error already): the connection fails. */
  onEncodeError (error: WebSocketError): void
  /** The close frame held behind the messages sent before it may go now. */
  writeClose (frames: Buffer[]): void
}

/** A message to encode, or frames already encoded (`frames`) that keep their place behind the messages before them. */
interface Outgoing {
  data: Buffer
  isBinary: boolean
  frames: Buffer[] | null
  /** Bytes it holds, for pendingBytes. */
  size: number
  done?: (err?: Error | null) => void
}

/**
 * Messages to send in order around asynchronous encodes, with the control
 * frames, pre-encoded frames and close frame sent after them kept behind
 * them instead of overtaking them.
 */
export class EncodeQueue {
  private readonly extension: MessageExtension
  private readonly mask: boolean
  private readonly host: EncodeQueueHost
  private items: Outgoing[] | null = null
  private encoding = false
  private bytes = 0
  // A close frame is written or the transport is gone: nothing more may go out.
  private stopped = false
  // A close() that waits for messages sent before it to finish encoding.
  private heldClose: Buffer[] | null = null

  constructor (extension: MessageExtension, mask: boolean, host: EncodeQueueHost) {
    this.extension = extension
    this.mask = mask
    this.host = host
  }

  /** A message is being encoded or waits to be: a frame sent now must wait behind it. */
  get busy (): boolean {
    return this.encoding || (this.items !== null && this.items.length > 0)
  }

  /** Bytes not yet handed to the host: messages still to encode and frames queued behind them. */
  get pendingBytes (): number {
    return this.bytes
  }

  /** Queues a message to encode; `done` is called once it is written, or with the error that kept it from the wire. */
  send (data: Buffer, isBinary: boolean, done?: (err?: Error | null) => void): void {
    this.enqueue({ data, isBinary, frames: null, size: data.length, done })
  }

  /** Queues frames already encoded behind the messages before them. Only while `busy`: otherwise they can be written at once. */
  sendFrames (frames: Buffer[]): void {
    let size = 0
    for (const frame of frames) size += frame.length
    this.enqueue({ data: EMPTY, isBinary: false, frames, size })
  }

  /** Holds the close frame until the messages sent before it are written. Only while `busy`. */
  holdClose (frames: Buffer[]): void {
    this.heldClose = frames
  }

  /** The held close frame, no longer held: for the state machine to write now (the peer closed, so waiting is over). */
  takeHeldClose (): Buffer[] | null {
    const frames = this.heldClose
    this.heldClose = null
    return frames
  }

  /**
   * A close frame is about to be written, or the transport is gone: from
   * now on nothing queued is written, and an encode that completes fails its
   * send. What is queued stays until `reject`.
   */
  stop (): void {
    this.stopped = true
    this.heldClose = null
  }

  /** Fails every queued message (and drops the frames queued with them): they will never be sent. */
  reject (): void {
    if (this.items === null || this.items.length === 0) return
    const pending = this.items
    this.items = []
    for (const item of pending) {
      this.bytes -= item.size
      item.done?.(webSocketError('WS_ERR_CLOSED_BEFORE_SENT'))
    }
  }

  private enqueue (item: Outgoing): void {
    if (this.items === null) this.items = []
    this.bytes += item.size
    this.items.push(item)
    this.drain()
  }

  private drain (): void {
    while (!this.encoding && this.items !== null && this.items.length > 0 && !this.stopped) {
      const item = this.items.shift()!
      if (item.frames !== null) {
        this.bytes -= item.size
        this.host.write(item.frames)
        continue
      }
      this.encoding = true
      let sync = true
      let finished = false
      this.extension.encode(item.data, (err, result, transformed) => {
        this.encoding = false
        finished = true
        this.bytes -= item.size
        if (this.stopped) {
          item.done?.(webSocketError('WS_ERR_CLOSED_BEFORE_SENT'))
          return
        }
        if (err) {
          const error = err instanceof WebSocketError ? err : protocolError('WS_ERR_EXTENSION_ENCODE', err.message, { cause: err })
          item.done?.(error)
          this.host.onEncodeError(error)
          return
        }
        const opcode = item.isBinary ? Opcode.Binary : Opcode.Text
        this.host.write(encodeFrame(opcode, result!, { mask: this.mask, rsv1: transformed === true }))
        item.done?.(null)
        // Called back later: go on with what queued up meanwhile (a synchronous call returns to the loop).
        if (!sync) this.drain()
      })
      sync = false
      if (!finished) return
    }
    if (this.heldClose !== null && !this.encoding && !this.stopped) this.host.writeClose(this.heldClose)
  }
}

const EMPTY = Buffer.alloc(0)
