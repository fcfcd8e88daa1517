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
  autoPong?: boolean
  logger?: ConnectionLogger
}
