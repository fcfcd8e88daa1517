import type { WebSocketError } from '../errors.js'
import type { MessageExtension } from '../protocol/extension.js'
import type { Role } from '../protocol/frame-parser.js'

// The connection's public types, in a file of their own so the machinery
// (outbox, inbox, internal) can name them without importing connection.ts.

export type WebSocketData = string | Buffer | ArrayBuffer | ArrayBufferView

export interface SendOptions {
  /** Send as a binary message. Default: binary for bytes, text for strings. */
  binary?: boolean
}

export type SendCallback = (err?: Error | null) => void

/**
 * The events of a connection and their arguments: `conn.on`, `once`, `off`
 * and `emit` are typed by it, so a listener with the wrong signature (say,
 * `close` with a `Buffer` reason) is a compile error. `newListener` and
 * `removeListener` are EventEmitter's own. For an event of your own, widen
 * first: `(conn as EventEmitter).on('joined', …)`.
 */
export interface WebSocketEventMap {
  /** A complete message: text (`isBinary` false, valid UTF-8) or binary. */
  message: [data: Buffer, isBinary: boolean]
  /** A ping from the peer (answered automatically unless `autoPong: false`). */
  ping: [data: Buffer]
  /** A pong from the peer. */
  pong: [data: Buffer]
  /** The connection is closed: the code the peer sent (1005 if none), the code of a protocol error detected here, or 1006 if the transport dropped. */
  close: [code: number, reason: string]
  /**
   * Why the connection is failing: a `WebSocketError` (a `ProtocolError` for
   * a violation by the peer, or a limit) with a stable `code`, or the
   * socket's own error (`ECONNRESET`…). The connection closes afterwards in any case.
   */
  error: [err: WebSocketError | NodeJS.ErrnoException]
  /** `bufferedAmount` fell below the high-water mark after `send` returned false. */
  drain: []
  newListener: [eventName: string | symbol, listener: (...args: any[]) => void]
  removeListener: [eventName: string | symbol, listener: (...args: any[]) => void]
}

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

/** Settings of one connection; those left out fall back to lib/defaults.ts. */
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
  /** The negotiated extensions as the handshake's Sec-WebSocket-Extensions said them, for `conn.extensions`. */
  extensions?: string
  autoPong?: boolean
  logger?: ConnectionLogger
}

/**
 * @internal What a server connection's topic calls go to: the topic table of
 * the app that accepted it (lib/topics/topics.ts). Declared here so the
 * connection does not import the table (which imports the connection).
 */
export interface TopicHost {
  subscribe (conn: object, topic: string): boolean
  unsubscribe (conn: object, topic: string): boolean
  isSubscribed (conn: object, topic: string): boolean
  topicsOf (conn: object): string[]
  publish (topic: string, data: WebSocketData, options: SendOptions | undefined, except: object | null): number
}
