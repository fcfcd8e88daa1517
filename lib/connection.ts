import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { CloseCode } from './protocol/close-codes.js'
import type { MessageExtension } from './protocol/extension.js'
import type { Role } from './protocol/frame-parser.js'
import { encodeFrame, toBuffer } from './protocol/frame-writer.js'
import { Opcode } from './protocol/opcodes.js'
import { ReadyState, WebSocketProtocol, type ProtocolHandler } from './protocol/protocol.js'
import { ProtocolError } from './protocol/errors.js'
import { DEFAULTS, MAX_OWED_PINGS } from './defaults.js'
import { publishLimit } from './diagnostics.js'
import { WebSocketError } from './errors.js'

export type WebSocketData = string | Buffer | ArrayBuffer | ArrayBufferView

export interface SendOptions {
  /** Send as a binary message. Default: binary for bytes, text for strings. */
  binary?: boolean
}

export type SendCallback = (err?: Error | null) => void

/**
 * What happens to a send once `maxBufferedAmount` bytes are already waiting:
 * `'close'` drops the connection (close code 1008, reported locally; the peer
 * is not reading, so no close frame could reach it), `'refuse'` rejects the
 * send with a `WebSocketError` coded `WS_ERR_BUFFER_FULL` and keeps the connection.
 */
export type BufferFullPolicy = 'close' | 'refuse'

/** A logger with the pino/Fastify shape; connection-level messages go to it. */
export interface ConnectionLogger {
  debug (obj: unknown, msg?: string): void
  info (obj: unknown, msg?: string): void
  warn (obj: unknown, msg?: string): void
  error (obj: unknown, msg?: string): void
}

export interface ConnectionOptions {
  role: Role
  maxMessageSize: number
  /** Milliseconds to wait for the peer's side of the closing handshake before destroying the socket. */
  closeTimeout: number
  /** `send` returns false once this many bytes wait to be written. */
  highWaterMark?: number
  /** Bytes that may wait to be written before `onBufferFull` applies (see defaults.ts). */
  maxBufferedAmount?: number
  /** What a send does once `maxBufferedAmount` bytes are waiting: close the connection, or refuse the send. */
  onBufferFull?: BufferFullPolicy
  /** Bytes of messages held for a handler that is not listening yet before reading pauses. */
  maxPendingBytes?: number
  /** A message cut into more pieces than this (plus one per `minAveragePieceSize` bytes) fails with 1008. */
  maxMessagePieces?: number
  minAveragePieceSize?: number
  protocol?: string
  extension?: MessageExtension | null
  autoPong?: boolean
  logger?: ConnectionLogger
}

// Concatenating small frames into one buffer beats handing the stream many writes;
// past this, the frames go to the socket as a corked batch (writev).
const CONCAT_LIMIT = 16 * 1024

const kConnection = Symbol('fastify-rfc6455.connection')
/**
 * @internal Emitted when the transport is gone, even while the public `close`
 * event is held back for a handler that has not started listening yet: the
 * plugin's bookkeeping (open connections, shutdown) must not wait for user code.
 */
export const kTransportClosed = Symbol('fastify-rfc6455.transportClosed')
type BoundSocket = Duplex & { [kConnection]: WebSocketConnection }

const PAUSE_PENDING = 1 // held messages for a handler that is not listening yet passed maxPendingBytes
const PAUSE_ITERATOR = 2 // an async iterator's consumer lags
const PAUSE_STARTING = 4 // a client connection waits for its creator to attach listeners

interface PendingMessage {
  data: Buffer
  isBinary: boolean
  /** What holding it costs: its bytes, or the whole chunk it is a view of, plus the entry. */
  cost: number
}

/** Messages held for a handler that is not listening yet; created only when there are some. */
interface Held {
  messages: PendingMessage[]
  /** Sum of their costs: reading pauses past `maxPendingBytes`. */
  bytes: number
  /** The last ArrayBuffer a held message viewed: it is counted once, in full. */
  lastBuffer: ArrayBufferLike | null
}

// Connection state bits (WebSocketConnection.flags).
const READING = 1 // inside a socket `data` event: sends are flushed when it ends
const FLUSH_SCHEDULED = 2
const CLOSE_EMITTED = 4
const NEED_DRAIN = 8 // `send` returned false: a `drain` is owed once the backlog clears
// The route handler has not finished (an async handler still awaiting): hold
// messages and the `close` event for it. Once it has, messages nobody listens
// to are dropped instead, so a send-only route cannot be made to buffer.
const HANDLER_RUNNING = 16
const DROP_UNCONSUMED = 32
const CLOSE_DEFERRED = 64 // the transport closed while the handler was running and not listening
const AWAITING_PEER = 128 // a heartbeat ping went out and nothing has come in since
// Auto-pongs: PONG_QUEUED while one waits in `out` for the next flush,
// PONG_IN_FLIGHT while the write carrying it has not reached the kernel.
const PONG_QUEUED = 256
const PONG_IN_FLIGHT = 512
const AUTO_PONG = 1024

// Bookkeeping per held message, so a flood of empty messages is bounded too.
const HELD_ENTRY_COST = 64

/**
 * One WebSocket connection: binds the sans-I/O protocol to a socket (or any
 * duplex stream), batches outgoing frames per read and per tick, and turns
 * the protocol's calls into events.
 *
 * Events: `message` (data: Buffer, isBinary: boolean), `ping` (data), `pong`
 * (data), `close` (code: number, reason: string), `error` (err), `drain`.
 */
export class WebSocketConnection<Request = unknown> extends EventEmitter {
  static readonly CONNECTING = ReadyState.CONNECTING
  static readonly OPEN = ReadyState.OPEN
  static readonly CLOSING = ReadyState.CLOSING
  static readonly CLOSED = ReadyState.CLOSED

  /** The Fastify request of the upgrade, on the server side. */
  request: Request
  /** The subprotocol the server selected, or '' for none. */
  readonly protocol: string

  private readonly socket: Duplex
  private readonly core: WebSocketProtocol
  private readonly closeTimeout: number
  private readonly highWaterMark: number
  private readonly maxPendingBytes: number
  private readonly maxBufferedAmount: number
  private readonly refuseWhenFull: boolean
  /** The upgrade request's logger (`req.log`), for connection-level logs; it outlives `retainRequest: false`. */
  readonly log: ConnectionLogger | undefined

  // Frames waiting for the next flush; null while there are none (most of an idle connection's life).
  private out: Buffer[] | null = null
  private outBytes = 0
  private outCallbacks: SendCallback[] | null = null
  private closeTimer: NodeJS.Timeout | null = null
  // The booleans below (READING, FLUSH_SCHEDULED, ...) as bits: one field
  // instead of seven on every idle connection.
  private flags = 0

  // Messages that arrived while nobody listened (e.g. an async handler still awaiting).
  private held: Held | null = null
  // Why reading from the socket is paused (PAUSE_* bits); it resumes when none is left.
  private pauseReasons = 0
  private iterators: Set<MessageIterator> | null = null
  // Pings that came while a pong was in flight: only the latest is answered
  // (RFC 6455 §5.5.3), once the pong in flight is written; null when none is owed.
  private owedPong: { data: Buffer, pings: number } | null = null

  private hasFlag (flag: number): boolean {
    return (this.flags & flag) !== 0
  }

  private setFlag (flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag
  }

  constructor (socket: Duplex, request: Request, options: ConnectionOptions) {
    super()
    this.socket = socket
    this.request = request
    this.protocol = options.protocol ?? ''
    this.closeTimeout = options.closeTimeout
    this.highWaterMark = options.highWaterMark ?? DEFAULTS.highWaterMark
    this.maxPendingBytes = options.maxPendingBytes ?? Math.max(options.maxMessageSize, 1024 * 1024)
    this.maxBufferedAmount = options.maxBufferedAmount ?? DEFAULTS.maxBufferedAmount
    this.refuseWhenFull = options.onBufferFull === 'refuse'
    this.log = options.logger
    // Pongs are answered here rather than by the core, so they can be
    // coalesced while the transport is backed up (see answerPing).
    if (options.autoPong ?? true) this.flags |= AUTO_PONG
    this.core = new WebSocketProtocol({
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      maxMessagePieces: options.maxMessagePieces,
      minAveragePieceSize: options.minAveragePieceSize,
      autoPong: false,
      extension: options.extension
    }, new SocketBinding(this))

    // Shared listeners that find the connection on the socket: no closures per connection.
    ;(socket as BoundSocket)[kConnection] = this
    socket.on('data', onSocketData)
    socket.on('end', onSocketEnd)
    socket.on('close', onSocketClose)
    socket.on('error', onSocketError)
    socket.on('drain', onSocketDrain)
    this.on('newListener', onNewListener)
  }

  get readyState (): number {
    return this.core.readyState
  }

  /** Bytes handed to `send` that are not yet written to the kernel. */
  get bufferedAmount (): number {
    return this.outBytes + this.socket.writableLength
  }

  /** True if the last close frames exchanged completed the closing handshake. */
  get wasClean (): boolean {
    return this.core.wasClean
  }

  /**
   * Queues a message. Strings are sent as text, bytes as binary unless
   * `options.binary` says otherwise. Returns false when `bufferedAmount`
   * exceeds the high-water mark: wait for `drain` before sending more.
   * `callback` runs once the data is written out (or with an error).
   */
  send (data: WebSocketData, options?: SendOptions | SendCallback, callback?: SendCallback): boolean {
    if (typeof options === 'function') {
      callback = options
      options = undefined
    }
    if (this.core.readyState !== ReadyState.OPEN || this.core.closeSent) {
      const err = new Error(`WebSocket is not open (readyState ${this.core.readyState})`)
      if (callback !== undefined) {
        process.nextTick(callback, err)
        return false
      }
      throw err
    }
    if (!this.admit(callback)) return false
    if (callback !== undefined) this.addCallback(callback)
    this.core.send(data, options?.binary ?? typeof data !== 'string')
    return this.belowHighWaterMark()
  }

  /** Like `send`, but resolves once the data is written out. */
  sendAsync (data: WebSocketData, options?: SendOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      this.send(data, options ?? {}, (err) => err ? reject(err) : resolve())
    })
  }

  /**
   * Sends bytes that already form a complete frame (see `encodeBroadcastFrame`).
   * Used to encode a message once for many receivers.
   */
  sendFrame (frame: Buffer): boolean {
    return this.enqueueFrame(frame) && this.belowHighWaterMark()
  }

  /**
   * @internal Queues a complete frame; false if it was not queued (closing,
   * or refused at `maxBufferedAmount`), as opposed to queued past the high-water mark.
   */
  enqueueFrame (frame: Buffer): boolean {
    if (this.core.readyState !== ReadyState.OPEN || this.core.closeSent) return false
    if (!this.admit(undefined, false)) return false
    this.queue(frame)
    return true
  }

  ping (data?: string | Uint8Array): void {
    if (this.admit()) this.core.ping(data)
  }

  pong (data?: string | Uint8Array): void {
    if (this.admit()) this.core.pong(data)
  }

  /**
   * Whether one more frame may be queued. Past `maxBufferedAmount` bytes
   * waiting, the peer is not reading what it is sent: the connection is
   * dropped, or (with `onBufferFull: 'refuse'`) the send is refused — thrown,
   * or passed to `callback`. One send is always admitted below the mark, so a
   * single large message on an idle connection goes out whatever its size.
   */
  private admit (callback?: SendCallback, throws = true): boolean {
    const buffered = this.bufferedAmount
    if (buffered < this.maxBufferedAmount) return true
    const limit = this.maxBufferedAmount
    if (this.refuseWhenFull) {
      const err = new WebSocketError('WS_ERR_BUFFER_FULL', `send refused: ${buffered} bytes are waiting to be written (maxBufferedAmount ${limit})`)
      if (callback !== undefined) process.nextTick(callback, err)
      else if (throws) throw err
      return false
    }
    this.abort(new WebSocketError('WS_ERR_BUFFER_FULL', `the peer is not reading: ${buffered} bytes waiting to be written (maxBufferedAmount ${limit})`, CloseCode.PolicyViolation), 'maxBufferedAmount')
    if (callback !== undefined) process.nextTick(callback, new Error('the connection closed before the message was sent'))
    return false
  }

  /**
   * Ends a connection whose peer broke a resource limit that writing to it
   * cannot fix (it is not reading): the close code is recorded for the
   * `close` event and the socket is destroyed at once, since a close frame
   * would only queue behind what the peer does not read.
   */
  private abort (error: WebSocketError, limit: string): void {
    if (this.core.readyState === ReadyState.CLOSED) return
    this.log?.info({ err: error, limit }, 'websocket connection dropped at a limit')
    publishLimit(limit, this, error)
    this.core.abort(error.closeCode ?? CloseCode.PolicyViolation, error.message)
    if (this.listenerCount('error') > 0) this.emitSafely('error', error)
    this.socket.destroy()
  }

  /**
   * Answers a ping (auto-pong). While an earlier pong has not reached the
   * kernel (the peer is not reading), later pings are coalesced into one
   * owed pong carrying the latest payload, as RFC 6455 §5.5.3 permits; so a
   * ping flood costs one pong, and a peer that keeps flooding is dropped.
   */
  answerPing (data: Buffer): void {
    if (this.core.readyState !== ReadyState.OPEN || this.core.closeSent) return
    if (!this.hasFlag(PONG_IN_FLIGHT)) {
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
        this.abort(new WebSocketError('WS_ERR_PING_FLOOD', `the peer sent ${owed.pings} pings without reading their pongs`, CloseCode.PolicyViolation), 'maxOwedPings')
      }
    }
  }

  /** @internal The write that carried a pong reached the kernel: send the owed one, if any. */
  pongWritten (): void {
    this.flags &= ~PONG_IN_FLIGHT
    const owed = this.owedPong
    if (owed === null) return
    this.owedPong = null
    this.answerPing(owed.data)
  }

  /**
   * Starts the closing handshake. The socket is destroyed if the peer has
   * not finished it within the close timeout.
   */
  close (code?: number, reason?: string): void {
    if (this.core.readyState === ReadyState.CLOSED) return
    this.core.close(code, reason)
    this.flush()
    this.armCloseTimer()
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate (): void {
    this.socket.destroy()
  }

  /**
   * Iterates over messages. While the consumer is busy, reading from the
   * socket pauses; the iteration ends when the connection closes.
   */
  [Symbol.asyncIterator] (): AsyncIterableIterator<{ data: Buffer, isBinary: boolean }> {
    const iterator = new MessageIterator(this)
    if (this.iterators === null) this.iterators = new Set()
    this.iterators.add(iterator)
    this.schedulePendingDelivery()
    return iterator
  }

  /**
   * @internal One heartbeat: terminates the connection if nothing came from
   * the peer since the previous one, else pings it.
   */
  heartbeat (): void {
    if (this.hasFlag(AWAITING_PEER)) {
      this.logDebug({}, 'websocket peer sent nothing since the last heartbeat ping; terminating')
      this.terminate()
      return
    }
    if (this.core.readyState !== ReadyState.OPEN || this.core.closeSent) return
    this.setFlag(AWAITING_PEER, true)
    this.core.ping()
  }

  /** @internal Feeds bytes that arrived with the upgrade request. */
  receiveHead (head: Buffer): void {
    if (head.length > 0) this.onData(head)
  }

  /**
   * @internal Feeds `head` and starts reading only after the current task,
   * so code that awaited this connection attaches its listeners before any
   * event (even `close`) can fire.
   */
  startAfterCurrentTask (head: Buffer): void {
    this.pauseFor(PAUSE_STARTING)
    setImmediate(() => {
      this.receiveHead(head)
      this.resumeFrom(PAUSE_STARTING)
    })
  }

  /** @internal */
  removeIterator (iterator: MessageIterator): void {
    this.iterators?.delete(iterator)
  }

  /** @internal Puts back messages an iterator took but its consumer never read. */
  requeue (messages: Array<{ data: Buffer, isBinary: boolean }>): void {
    if (messages.length === 0 || this.hasFlag(CLOSE_EMITTED)) return
    const back = messages.map((m) => ({ data: m.data, isBinary: m.isBinary, cost: m.data.length + HELD_ENTRY_COST }))
    let bytes = 0
    for (const m of back) bytes += m.cost
    if (this.held === null) {
      this.held = { messages: back, bytes, lastBuffer: null }
    } else {
      this.held.messages = back.concat(this.held.messages)
      this.held.bytes += bytes
    }
    this.schedulePendingDelivery()
  }

  /** @internal The route handler was called and returned a promise that has not settled yet. */
  handlerStarted (): void {
    this.setFlag(HANDLER_RUNNING, true)
  }

  /**
   * @internal The route handler is done. From now on, messages that nobody
   * listens to are dropped; a `close` held back for the handler is emitted.
   */
  handlerSettled (): void {
    this.setFlag(HANDLER_RUNNING, false)
    this.setFlag(DROP_UNCONSUMED, true)
    if (this.held !== null && !this.hasConsumer()) {
      this.logDebug({ messages: this.held.messages.length }, 'websocket handler finished without listening for messages; dropping those received')
      this.held = null
      this.resumeFrom(PAUSE_PENDING)
    }
    if (this.hasFlag(CLOSE_DEFERRED)) this.deliverPending()
  }

  /** @internal */
  pauseReading (): void {
    this.pauseFor(PAUSE_ITERATOR)
  }

  /** @internal */
  resumeReading (): void {
    this.resumeFrom(PAUSE_ITERATOR)
  }

  private pauseFor (reason: number): void {
    this.pauseReasons |= reason
    this.socket.pause()
  }

  private resumeFrom (reason: number): void {
    if ((this.pauseReasons & reason) === 0) return
    this.pauseReasons &= ~reason
    if (this.pauseReasons === 0) this.socket.resume()
  }

  // --- protocol → connection

  /** @internal */
  queue (data: Buffer): void {
    if (this.out === null) this.out = [data]
    else this.out.push(data)
    this.outBytes += data.length
    if ((this.flags & (READING | FLUSH_SCHEDULED)) === 0) {
      this.flags |= FLUSH_SCHEDULED
      process.nextTick(flushTick, this)
    }
  }

  /** @internal */
  deliver (data: Buffer, isBinary: boolean): void {
    if (this.held !== null || !this.hasConsumer()) {
      if (this.held === null && this.hasFlag(DROP_UNCONSUMED)) return
      this.hold(data, isBinary)
      return
    }
    this.dispatch(data, isBinary)
  }

  /** @internal */
  dispatch (data: Buffer, isBinary: boolean): void {
    if (this.iterators !== null && this.iterators.size > 0) {
      // A message nobody else saw goes back to the connection if its iterator stops early.
      const sole = this.iterators.size === 1 && this.listenerCount('message') === 0
      for (const it of this.iterators) it.push(data, isBinary, sole)
    }
    try {
      this.emit('message', data, isBinary)
    } catch (error) {
      // A listener's exception must not escape into the socket's data event and
      // take the process (and every other connection) down with it.
      this.listenerFailed(error)
    }
  }

  /**
   * A `message` listener threw. Logged, and the connection closes with 1011;
   * on a server route, the route's `errorHandler` decides instead.
   */
  protected listenerFailed (error: unknown): void {
    this.log?.error({ err: error }, 'websocket message listener failed')
    if (this.core.readyState === ReadyState.OPEN && !this.core.closeSent) this.close(CloseCode.InternalError, 'internal error')
  }

  /** @internal */
  endTransport (): void {
    this.flush()
    this.socket.end()
    this.armCloseTimer()
  }

  /** @internal */
  onData (chunk: Buffer): void {
    // Anything from the peer shows it is alive, not only the pong.
    this.flags = (this.flags | READING) & ~AWAITING_PEER
    try {
      this.core.receive(chunk)
    } finally {
      this.flags &= ~READING
    }
    if (this.out !== null) this.flush()
  }

  /** @internal */
  onClosed (): void {
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer)
      this.closeTimer = null
    }
    this.core.transportClosed()
    this.out = null
    this.outBytes = 0
    this.owedPong = null
    const callbacks = this.outCallbacks
    this.outCallbacks = null
    if (callbacks !== null) {
      const err = new Error('the connection closed before the message was sent')
      for (const cb of callbacks) cb(err)
    }
    if (this.hasFlag(CLOSE_EMITTED | CLOSE_DEFERRED)) return
    this.emitSafely(kTransportClosed, this.core.closeCode, this.core.closeReason)
    if (this.hasFlag(HANDLER_RUNNING) && !this.hasConsumer()) {
      // An async handler still awaiting would attach its listeners to a closed
      // connection and never hear of the messages or the close: keep both for it.
      this.setFlag(CLOSE_DEFERRED, true)
      return
    }
    if (this.held !== null && this.hasConsumer()) {
      this.setFlag(CLOSE_DEFERRED, true) // emitted once the held messages are delivered
      return
    }
    this.emitClose()
  }

  private emitClose (): void {
    if (this.hasFlag(CLOSE_EMITTED)) return
    this.setFlag(CLOSE_EMITTED, true)
    this.setFlag(CLOSE_DEFERRED, false)
    // Messages still held for a handler that never listened are dropped with the connection.
    this.held = null
    if (this.iterators !== null) {
      for (const it of this.iterators) it.end()
    }
    this.emitSafely('close', this.core.closeCode, this.core.closeReason)
  }

  /** True once `close` was emitted: no further events come. */
  get closeEmitted (): boolean {
    return this.hasFlag(CLOSE_EMITTED)
  }

  /**
   * Emits an event; a listener that throws is handled like a failing
   * `message` listener instead of escaping into the socket's event handlers.
   */
  private emitSafely (event: string | symbol, a?: unknown, b?: unknown): void {
    try {
      this.emit(event, a, b)
    } catch (error) {
      this.listenerFailed(error)
    }
  }

  /** @internal */
  flush (): void {
    this.flags &= ~FLUSH_SCHEDULED
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
    const done = callbacks === null && !pong && !this.hasFlag(NEED_DRAIN) ? undefined : flushDone(this, callbacks, pong)
    const socket = this.socket
    if (socket.destroyed || !socket.writable) {
      done?.(new Error('the connection closed before the message was sent'))
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

  private belowHighWaterMark (): boolean {
    if (this.bufferedAmount < this.highWaterMark) return true
    this.setFlag(NEED_DRAIN, true)
    return false
  }

  /** @internal */
  checkDrain (): void {
    if (this.hasFlag(NEED_DRAIN) && this.bufferedAmount < this.highWaterMark) {
      this.setFlag(NEED_DRAIN, false)
      this.emitSafely('drain')
    }
  }

  private addCallback (callback: SendCallback): void {
    if (this.outCallbacks === null) this.outCallbacks = []
    this.outCallbacks.push(callback)
  }

  /** @internal Bounds the wait for the peer's part of the closing handshake. */
  armCloseTimer (): void {
    if (this.closeTimer !== null || this.socket.destroyed) return
    this.closeTimer = setTimeout(onCloseTimeout, this.closeTimeout, this)
  }

  private hasConsumer (): boolean {
    return this.listenerCount('message') > 0 || (this.iterators !== null && this.iterators.size > 0)
  }

  private hold (data: Buffer, isBinary: boolean): void {
    // A message may be a view of a larger chunk that holding it keeps alive:
    // count that chunk, once, so tiny messages cannot pin unbounded memory.
    let held = this.held
    if (held === null) held = this.held = { messages: [], bytes: 0, lastBuffer: null }
    let cost = data.length + HELD_ENTRY_COST
    if (data.buffer !== held.lastBuffer) {
      held.lastBuffer = data.buffer
      cost += data.buffer.byteLength - data.length
    }
    held.messages.push({ data, isBinary, cost })
    held.bytes += cost
    if (held.bytes > this.maxPendingBytes) this.pauseFor(PAUSE_PENDING)
  }

  /** @internal */
  schedulePendingDelivery (): void {
    if (this.held !== null || this.hasFlag(CLOSE_DEFERRED)) queueMicrotask(() => this.deliverPending())
  }

  private deliverPending (): void {
    while (this.held !== null && this.hasConsumer()) {
      const item = this.held.messages.shift()
      if (item === undefined) {
        this.held = null
        break
      }
      this.held.bytes -= item.cost
      this.dispatch(item.data, item.isBinary)
    }
    if (this.held === null) this.resumeFrom(PAUSE_PENDING)
    // A held-back close follows the held messages; someone who only waits for
    // the close (no message listener) gets it too, without the messages.
    if (this.hasFlag(CLOSE_DEFERRED) && (this.held === null || this.listenerCount('close') > 0)) this.emitClose()
  }

  /** @internal */
  logDebug (obj: unknown, msg: string): void {
    this.log?.debug(obj, msg)
  }
}

function onNewListener (this: WebSocketConnection, event: string | symbol): void {
  // The listener is added right after this event: deliver held messages (and a
  // held-back close) once it is, and once the rest of the caller's code has run.
  if (event === 'message' || event === 'close') this.schedulePendingDelivery()
}

function flushTick (conn: WebSocketConnection): void {
  if ((conn['flags'] & FLUSH_SCHEDULED) !== 0) conn.flush()
}

function flushDone (conn: WebSocketConnection, callbacks: SendCallback[] | null, pong: boolean): SendCallback {
  return (err) => {
    if (callbacks !== null) {
      for (const cb of callbacks) cb(err ?? null)
    }
    if (err) return
    if (pong) conn.pongWritten()
    conn.checkDrain()
  }
}

function onCloseTimeout (conn: WebSocketConnection): void {
  conn['closeTimer'] = null
  conn.logDebug({ timeout: conn['closeTimeout'] }, 'websocket closing handshake timed out; destroying the socket')
  conn['socket'].destroy()
}

function onSocketData (this: BoundSocket, chunk: Buffer): void {
  this[kConnection].onData(chunk)
}

function onSocketEnd (this: BoundSocket): void {
  // The peer will send nothing more: finish our side too (upgrade sockets allow half-open).
  this[kConnection].flush()
  if (this.writable) this.end()
}

function onSocketClose (this: BoundSocket): void {
  this[kConnection].onClosed()
}

function onSocketError (this: BoundSocket, err: Error): void {
  const conn = this[kConnection]
  // Resets and timeouts are part of life on the network: they end in `close` with 1006.
  conn.logDebug({ err }, 'websocket socket error')
  if (conn.listenerCount('error') > 0) conn['emitSafely']('error', err)
}

function onSocketDrain (this: BoundSocket): void {
  this[kConnection].checkDrain()
}

/** The setting a peer's protocol error ran into, if it was a resource limit. */
function limitOf (error: ProtocolError): string | undefined {
  if (error.closeCode === CloseCode.MessageTooBig) return 'maxMessageSize'
  if (error.code === 'WS_ERR_MESSAGE_TOO_FRAGMENTED') return 'maxMessagePieces'
  return undefined
}

/** Adapts the protocol's handler calls to the connection. */
class SocketBinding implements ProtocolHandler {
  private readonly conn: WebSocketConnection
  constructor (conn: WebSocketConnection) {
    this.conn = conn
  }

  write (data: Buffer): void {
    this.conn.queue(data)
  }

  onMessage (data: Buffer, isBinary: boolean): void {
    this.conn.deliver(data, isBinary)
  }

  onPing (data: Buffer): void {
    if ((this.conn['flags'] & AUTO_PONG) !== 0) this.conn.answerPing(data)
    this.conn['emitSafely']('ping', data)
  }

  onPong (data: Buffer): void {
    this.conn['emitSafely']('pong', data)
  }

  onError (error: Error): void {
    this.conn.logDebug({ err: error }, 'websocket protocol error')
    const limit = error instanceof ProtocolError ? limitOf(error) : undefined
    if (limit !== undefined) {
      this.conn.log?.info({ err: error, limit }, 'websocket connection closed at a limit')
      publishLimit(limit, this.conn, error)
    }
    if (this.conn.listenerCount('error') > 0) this.conn['emitSafely']('error', error)
  }

  onCloseFrame (): void {
    // A client waits for the server to close TCP (RFC 6455 §7.1.1), but not forever.
    this.conn.armCloseTimer()
  }

  closeTransport (): void {
    this.conn.endTransport()
  }
}

/** Pull-based reading: pauses the socket while unread messages pile up. */
class MessageIterator implements AsyncIterableIterator<{ data: Buffer, isBinary: boolean }> {
  private readonly conn: WebSocketConnection
  private readonly buffer: Array<{ data: Buffer, isBinary: boolean, sole: boolean }> = []
  private waiting: ((result: IteratorResult<{ data: Buffer, isBinary: boolean }>) => void) | null = null
  private ended = false

  constructor (conn: WebSocketConnection) {
    this.conn = conn
    // A close held back for a handler still delivers the held messages first.
    if (conn.closeEmitted) this.ended = true
  }

  push (data: Buffer, isBinary: boolean, sole: boolean): void {
    if (this.waiting !== null) {
      const resolve = this.waiting
      this.waiting = null
      resolve({ value: { data, isBinary }, done: false })
      return
    }
    this.buffer.push({ data, isBinary, sole })
    // The consumer lags: stop reading until it catches up.
    this.conn.pauseReading()
  }

  end (): void {
    this.ended = true
    if (this.waiting !== null) {
      const resolve = this.waiting
      this.waiting = null
      resolve({ value: undefined, done: true })
    }
  }

  next (): Promise<IteratorResult<{ data: Buffer, isBinary: boolean }>> {
    const item = this.buffer.shift()
    if (item !== undefined) {
      if (this.buffer.length === 0) this.conn.resumeReading()
      return Promise.resolve({ value: { data: item.data, isBinary: item.isBinary }, done: false })
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true })
    this.conn.resumeReading()
    return new Promise((resolve) => { this.waiting = resolve })
  }

  return (): Promise<IteratorResult<{ data: Buffer, isBinary: boolean }>> {
    this.ended = true
    const unread = this.buffer.filter((m) => m.sole).map((m) => ({ data: m.data, isBinary: m.isBinary }))
    this.buffer.length = 0
    this.conn.removeIterator(this)
    this.conn.requeue(unread)
    this.conn.resumeReading()
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator] (): this {
    return this
  }
}

/**
 * Encodes a server-to-client message frame once, for `sendFrame` on many
 * connections (broadcast). Not for client connections, whose frames must be
 * masked individually.
 */
export function encodeBroadcastFrame (data: WebSocketData, binary?: boolean): Buffer {
  const payload = typeof data === 'string' ? data : toBuffer(data)
  const frames = encodeFrame((binary ?? typeof data !== 'string') ? Opcode.Binary : Opcode.Text, payload)
  return frames.length === 1 ? frames[0] : Buffer.concat(frames)
}

export { CloseCode }
