import { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import { CloseCode } from '../protocol/close-codes.js'
import { invalidArgument, webSocketError } from '../protocol/errors.js'
import { ReadyState } from '../protocol/protocol.js'
import { bindListenerFailed, emitSafely } from './events.js'
import { PauseReason } from './inbox.js'
import { ConnectionInternals, kInternal } from './internal.js'
import type { ConnectionLogger, ConnectionOptions, SendCallback, SendOptions, TopicHost, WebSocketData, WebSocketEventMap } from './types.js'

export type { BufferFullPolicy, ConnectionLogger, ConnectionOptions, SendCallback, SendOptions, WebSocketData, WebSocketEventMap } from './types.js'

// The socket's listeners are shared by every connection and find the
// connection's machinery on the socket: no closures per connection.
const kOwner = Symbol('fastify-rfc6455.connection')
type BoundSocket = Duplex & { [kOwner]: ConnectionInternals }

/**
 * One WebSocket connection: binds the sans-I/O protocol to a socket (or any
 * duplex stream), batches outgoing frames per read and per tick, and turns
 * the protocol's calls into events.
 *
 * Events: `message` (data: Buffer, isBinary: boolean), `ping` (data), `pong`
 * (data), `close` (code: number, reason: string), `error` (err), `drain`;
 * typed by `WebSocketEventMap`.
 */
export class WebSocketConnection<Request = unknown> extends EventEmitter<WebSocketEventMap> {
  static readonly CONNECTING = ReadyState.CONNECTING
  static readonly OPEN = ReadyState.OPEN
  static readonly CLOSING = ReadyState.CLOSING
  static readonly CLOSED = ReadyState.CLOSED

  // The same constants on every instance (`conn.readyState === conn.OPEN`), as
  // ws has them: on the prototype (see the static block), not one field per connection.
  declare readonly CONNECTING: typeof ReadyState.CONNECTING
  declare readonly OPEN: typeof ReadyState.OPEN
  declare readonly CLOSING: typeof ReadyState.CLOSING
  declare readonly CLOSED: typeof ReadyState.CLOSED

  static {
    for (const name of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'] as const) {
      Object.defineProperty(this.prototype, name, { value: ReadyState[name], enumerable: true })
    }
    // The machinery reports a throwing listener through the connection's own
    // `listenerFailed`, so a subclass's override (the JSON connection's) applies.
    bindListenerFailed((conn, error) => { (conn as WebSocketConnection).listenerFailed(error) })
  }

  /** The Fastify request of the upgrade, on the server side. */
  request: Request
  /** The subprotocol the server selected, or '' for none. */
  readonly protocol: string
  /** The extensions in use, as the handshake's `Sec-WebSocket-Extensions` named them ('' for none), as in the WHATWG WebSocket and ws. */
  readonly extensions: string
  /** The upgrade request's logger (`req.log`), for connection-level logs; it outlives `retainRequest: false`. */
  readonly log: ConnectionLogger | undefined
  // Batching, held messages, timers, the protocol core: see internal.ts.
  readonly #internal: ConnectionInternals

  constructor (socket: Duplex, request: Request, options: ConnectionOptions) {
    super()
    this.request = request
    this.protocol = options.protocol ?? ''
    this.extensions = options.extensions ?? ''
    this.log = options.logger
    const internal = this.#internal = new ConnectionInternals(this, socket, options)
    ;(socket as BoundSocket)[kOwner] = internal
    socket.on('data', onSocketData)
    socket.on('end', onSocketEnd)
    socket.on('close', onSocketClose)
    socket.on('error', onSocketError)
    socket.on('drain', onSocketDrain)
    this.on('newListener', onNewListener)
  }

  /** @internal The connection's machinery, for the plugin, injectWS and tests. */
  get [kInternal] (): ConnectionInternals {
    return this.#internal
  }

  get readyState (): number {
    return this.#internal.core.readyState
  }

  /** Bytes handed to `send` that are not yet written to the kernel. */
  get bufferedAmount (): number {
    return this.#internal.bufferedAmount
  }

  /** True if the last close frames exchanged completed the closing handshake. */
  get wasClean (): boolean {
    return this.#internal.core.wasClean
  }

  /** True once `close` was emitted: no further events come. */
  get closeEmitted (): boolean {
    return this.#internal.closeEmitted
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
    } else if (options !== undefined && (options as { fin?: unknown }).fin === false) {
      // ws sends a message in pieces with `fin: false`; sent here as messages of their
      // own, the pieces would reach the peer wrong without a word.
      throw invalidArgument(new TypeError('send(data, { fin: false }) is not supported: send whole messages, or write them to createWebSocketStream(conn)'))
    }
    const internal = this.#internal
    if (!internal.canSend) {
      const err = webSocketError('WS_ERR_NOT_OPEN', `WebSocket is not open (readyState ${internal.core.readyState})`)
      if (callback !== undefined) {
        process.nextTick(callback, err)
        return false
      }
      throw err
    }
    if (!internal.admit(callback)) return false
    if (callback !== undefined) internal.addCallback(callback)
    internal.core.send(data, options?.binary ?? typeof data !== 'string')
    return internal.belowHighWaterMark()
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
    const internal = this.#internal
    return internal.enqueueFrame(frame) && internal.belowHighWaterMark()
  }

  /**
   * Subscribes this connection to `topic` (a non-empty string) of the app
   * that accepted it, until `unsubscribe` or until the connection closes.
   * Returns false if it already was subscribed, or if it has closed (a
   * closed connection subscribes to nothing).
   */
  subscribe (topic: string): boolean {
    return topicHostOf(this).subscribe(this, topic)
  }

  /** Leaves `topic`; returns false if this connection was not subscribed to it. */
  unsubscribe (topic: string): boolean {
    return topicHostOf(this).unsubscribe(this, topic)
  }

  /** Whether this connection is subscribed to `topic`. */
  isSubscribed (topic: string): boolean {
    return topicHostOf(this).isSubscribed(this, topic)
  }

  /**
   * The topics this connection is subscribed to, as a new array on each read
   * (a snapshot: later subscribes do not change it). Empty once it closed.
   */
  get topics (): string[] {
    return topicHostOf(this).topicsOf(this)
  }

  /**
   * Sends a message to every subscriber of `topic` except this connection,
   * encoding its frame once (as `app.websocket.publish`); this connection
   * need not be subscribed itself. Returns how many connections it was
   * queued on.
   */
  publish (topic: string, data: WebSocketData, options?: SendOptions): number {
    return topicHostOf(this).publish(topic, data, options, this)
  }

  ping (data?: string | Uint8Array): void {
    const internal = this.#internal
    if (internal.admit()) internal.core.ping(data)
  }

  pong (data?: string | Uint8Array): void {
    const internal = this.#internal
    if (internal.admit()) internal.core.pong(data)
  }

  /**
   * Starts the closing handshake. The socket is destroyed if the peer has
   * not finished it within the close timeout.
   */
  close (code?: number, reason?: string): void {
    this.#internal.close(code, reason)
  }

  /** Destroys the socket at once, without a closing handshake. */
  terminate (): void {
    this.#internal.socket.destroy()
  }

  /**
   * Stops reading from the socket until `resume()`, as ws's `pause()`: no
   * event comes from the peer meanwhile, except the messages of the read in
   * progress. The peer is held back by TCP flow control.
   */
  pause (): void {
    this.#internal.pauseFor(PauseReason.Application)
  }

  /** Undoes `pause()`. Reading resumes unless something else (an iterator, a stream) still holds it. */
  resume (): void {
    this.#internal.resumeFrom(PauseReason.Application)
  }

  /** True between `pause()` and `resume()`. */
  get isPaused (): boolean {
    return this.#internal.pausedFor(PauseReason.Application)
  }

  /**
   * @internal The transport, for ws's `createWebSocketStream(conn)`, which
   * reads `_socket` to learn when the closing handshake has ended it. Not
   * part of the API: write to the connection, never to its socket.
   */
  get _socket (): Duplex {
    return this.#internal.socket
  }

  /**
   * Iterates over messages. While the consumer is busy, reading from the
   * socket pauses; the iteration ends when the connection closes.
   */
  [Symbol.asyncIterator] (): AsyncIterableIterator<{ data: Buffer, isBinary: boolean }> {
    return this.#internal.openIterator()
  }

  /**
   * A `message` listener threw. Logged, and the connection closes with 1011;
   * on a server route, the route's `errorHandler` decides instead.
   */
  protected listenerFailed (error: unknown): void {
    this.log?.error({ err: error }, 'websocket message listener failed')
    if (this.#internal.canSend) this.close(CloseCode.InternalError, 'internal error')
  }
}

/** The topic table of the app that accepted `conn`; topics belong to an app, so a client connection has none. */
function topicHostOf (conn: WebSocketConnection): TopicHost {
  const host = conn[kInternal].topicHost
  if (host === null) throw webSocketError('WS_ERR_NO_TOPICS', 'topics belong to the app that accepted a connection: this one was not accepted by the plugin (a client connection)')
  return host
}

function onNewListener (this: WebSocketConnection, event: string | symbol): void {
  // The listener is added right after this event: deliver held messages (and a
  // held-back close) once it is, and once the rest of the caller's code has run.
  if (event === 'message' || event === 'close') this[kInternal].releaseHeldSoon()
}

function onSocketData (this: BoundSocket, chunk: Buffer): void {
  this[kOwner].onData(chunk)
}

function onSocketEnd (this: BoundSocket): void {
  // The peer will send nothing more: finish our side too (upgrade sockets allow half-open).
  this[kOwner].flush()
  if (this.writable) this.end()
}

function onSocketClose (this: BoundSocket): void {
  this[kOwner].onClosed()
}

function onSocketError (this: BoundSocket, err: Error): void {
  const conn = this[kOwner].conn
  // Resets and timeouts are part of life on the network: they end in `close` with 1006.
  conn.log?.debug({ err }, 'websocket socket error')
  if (conn.listenerCount('error') > 0) emitSafely(conn, 'error', err)
}

function onSocketDrain (this: BoundSocket): void {
  this[kOwner].checkDrain()
}
