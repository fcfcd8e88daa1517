import type { Duplex } from 'node:stream'
import { DEFAULTS, PENDING_BYTES_FLOOR } from '../defaults.js'
import { publishLimit } from '../diagnostics.js'
import { CloseCode } from '../protocol/close-codes.js'
import { ProtocolError, webSocketError, type WebSocketError } from '../protocol/errors.js'
import { ReadyState, WebSocketProtocol, type ProtocolHandler } from '../protocol/protocol.js'
import { emitSafely, type ConnectionEmitter } from './events.js'
import { AUTO_PONG, AWAITING_PEER, READING } from './flags.js'
import { Inbox, PauseReason } from './inbox.js'
import type { ConnectionOptions, TopicHost } from './types.js'

/**
 * The key of a connection's internal surface: `conn[kInternal]` is its
 * ConnectionInternals. The plugin, injectWS and tests reach the machinery
 * only through it; it is left out of the published declarations.
 */
export const kInternal = Symbol('fastify-rfc6455.internal')

// Emitted on the connection once the transport is gone, even while the
// public `close` is held back for a handler that has not started listening
// yet: the plugin's bookkeeping (open connections, shutdown) must not wait for
// user code. A symbol, so no listener of the application can take it.
const kTransportClosed = Symbol('fastify-rfc6455.transportClosed')

/** Called with the connection as `this` once its transport is gone. */
export type TransportClosedListener = (code: number, reason: string) => void

/**
 * Everything about one connection that is not its public API: the protocol
 * handler that ties the state machine to the socket, the write side
 * (Outbox), the read side (Inbox), the closing-handshake timer, and the
 * calls the plugin makes (handler gating, the upgrade's head bytes,
 * broadcast, heartbeat, transport-closed bookkeeping).
 *
 * One object per connection, made by WebSocketConnection's constructor, and
 * itself the protocol's handler: an idle connection is the public
 * connection, this object and the protocol core, nothing more.
 */
export class ConnectionInternals extends Inbox implements ProtocolHandler {
  readonly core: WebSocketProtocol
  private readonly closeTimeout: number
  private closeTimer: NodeJS.Timeout | null = null
  /** The app's topic table, set by the plugin on the connections it accepts; null on client connections. */
  topicHost: TopicHost | null = null
  /**
   * The topics this connection is subscribed to, kept by the topic table:
   * made on the first subscribe, so a connection that never subscribes holds
   * no Set; null again once it has left every topic.
   */
  topics: Set<string> | null = null

  constructor (conn: ConnectionEmitter, socket: Duplex, options: ConnectionOptions) {
    super(conn, socket, options)
    this.closeTimeout = options.closeTimeout
    // Pongs are answered here rather than by the core, so they can be
    // coalesced while the transport is backed up (Outbox#answerPing).
    if (options.autoPong ?? DEFAULTS.autoPong) this.flags |= AUTO_PONG
    this.core = new WebSocketProtocol({
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      maxMessagePieces: options.maxMessagePieces,
      minAveragePieceSize: options.minAveragePieceSize,
      autoPong: false,
      extension: options.extension,
      // Messages waiting to be decompressed get the budget of messages held
      // for a handler that is not listening yet, for the same reason.
      maxDecodeBacklog: options.maxPendingBytes ?? Math.max(options.maxMessageSize, PENDING_BYTES_FLOOR)
    }, this)
  }

  // --- what the plugin and injectWS call

  /** Feeds bytes that arrived with the upgrade request, after its head. */
  receiveHead (head: Buffer): void {
    if (head.length > 0) this.onData(head)
  }

  /**
   * Feeds `head` and starts reading only after the current task, so code
   * that awaited this (client) connection attaches its listeners before any
   * event, even `close`, can fire.
   */
  startAfterCurrentTask (head: Buffer): void {
    this.pauseFor(PauseReason.Starting)
    setImmediate(() => {
      this.receiveHead(head)
      this.resumeFrom(PauseReason.Starting)
    })
  }

  /** Runs `listener` once the transport is gone, whether or not `close` is held back. */
  onTransportClosed (listener: TransportClosedListener): void {
    this.conn.on(kTransportClosed, listener)
  }

  /**
   * One heartbeat: terminates the connection if nothing came from the peer
   * since the previous one, else pings it.
   */
  heartbeat (): void {
    if ((this.flags & AWAITING_PEER) !== 0) {
      this.terminateWith(webSocketError('WS_ERR_HEARTBEAT_TIMEOUT', 'the peer sent nothing since the last heartbeat ping', this.core.closeCode))
      return
    }
    if (!this.canSend) return
    this.flags |= AWAITING_PEER
    this.core.ping()
  }

  // --- what the public connection and its socket listeners call

  /** Starts the closing handshake; the socket is destroyed if the peer does not finish it in time. */
  close (code?: number, reason?: string): void {
    if (this.core.readyState === ReadyState.CLOSED) return
    this.core.close(code, reason)
    this.flush()
    this.armCloseTimer()
  }

  /** A chunk from the socket. */
  onData (chunk: Buffer): void {
    // Anything from the peer shows it is alive, not only the pong.
    this.flags = (this.flags | READING) & ~AWAITING_PEER
    try {
      this.core.receive(chunk)
    } finally {
      this.flags &= ~READING
    }
    this.flushQueued()
  }

  /** The socket closed. */
  onClosed (): void {
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer)
      this.closeTimer = null
    }
    this.core.transportClosed()
    this.discardUnwritten()
    if (this.closeHandled) return
    emitSafely(this.conn, kTransportClosed, this.core.closeCode, this.core.closeReason)
    this.closeAfterHeld()
  }

  /** The closing handshake took longer than `closeTimeout`. */
  closeTimedOut (): void {
    this.closeTimer = null
    this.terminateWith(webSocketError('WS_ERR_CLOSE_TIMEOUT', `the closing handshake did not finish within ${this.closeTimeout} ms`, this.core.closeCode))
  }

  /**
   * A timer ran out on the peer: the socket is destroyed and `close` reports
   * `error.closeCode`. The error, coded, goes to the debug log only: like a
   * reset, a vanished peer is part of life on the network, and an `error`
   * event here would reject an `await once(conn, 'close')` after a clean
   * closing handshake whose TCP close came late.
   */
  private terminateWith (error: WebSocketError): void {
    this.conn.log?.debug({ err: error }, 'websocket connection terminated')
    this.socket.destroy()
  }

  // --- ProtocolHandler: what the protocol state machine asks for

  write (data: Buffer): void {
    this.queue(data)
  }

  writeFrame (opcode: number, payload: Buffer | string, byteLength: number): void {
    this.appendFrame(opcode, payload, byteLength)
  }

  onMessage (data: Buffer, isBinary: boolean): void {
    this.receive(data, isBinary)
  }

  onPing (data: Buffer): void {
    if ((this.flags & AUTO_PONG) !== 0) this.answerPing(data)
    emitSafely(this.conn, 'ping', data)
  }

  onPong (data: Buffer): void {
    emitSafely(this.conn, 'pong', data)
  }

  onError (error: Error): void {
    const conn = this.conn
    conn.log?.debug({ err: error }, 'websocket protocol error')
    const limit = error instanceof ProtocolError ? limitOf(error) : undefined
    if (limit !== undefined) {
      conn.log?.info({ err: error, limit }, 'websocket connection closed at a limit')
      publishLimit(limit, conn, error)
    }
    if (conn.listenerCount('error') > 0) emitSafely(conn, 'error', error)
  }

  onDecodeBacklog (backlogged: boolean): void {
    if (backlogged) this.pauseFor(PauseReason.Decoding)
    else this.resumeFrom(PauseReason.Decoding)
  }

  onCloseFrame (): void {
    // A client waits for the server to close TCP (RFC 6455 §7.1.1), but not forever.
    this.armCloseTimer()
  }

  closeTransport (): void {
    this.flush()
    this.socket.end()
    this.armCloseTimer()
  }

  /** Bounds the wait for the peer's part of the closing handshake. */
  private armCloseTimer (): void {
    if (this.closeTimer !== null || this.socket.destroyed) return
    this.closeTimer = setTimeout(onCloseTimeout, this.closeTimeout, this)
  }
}

function onCloseTimeout (internals: ConnectionInternals): void {
  internals.closeTimedOut()
}

/** The setting a peer's protocol error ran into, if it was a resource limit. */
function limitOf (error: ProtocolError): string | undefined {
  if (error.closeCode === CloseCode.MessageTooBig) return 'maxMessageSize'
  if (error.code === 'WS_ERR_MESSAGE_TOO_FRAGMENTED') return 'maxMessagePieces'
  return undefined
}
