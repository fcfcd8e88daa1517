import { Duplex, addAbortSignal, type DuplexOptions } from 'node:stream'
import type { WebSocketConnection, WebSocketData } from './connection/connection.js'
import { PauseReason } from './connection/inbox.js'
import { kInternal, type ConnectionInternals } from './connection/internal.js'
import { WebSocketError } from './errors.js'
import { invalidArgument } from './protocol/errors.js'
import { CloseCode } from './protocol/close-codes.js'
import { ReadyState } from './protocol/protocol.js'

// The Duplex options that mean something for a connection. The rest
// (read/write/final/destroy, autoDestroy, emitClose…) belong to the adapter.
const STREAM_OPTIONS = [
  'allowHalfOpen', 'decodeStrings', 'defaultEncoding', 'encoding', 'highWaterMark', 'objectMode', 'readableHighWaterMark',
  'readableObjectMode', 'signal', 'writableHighWaterMark', 'writableObjectMode'
] as const

/**
 * Options of `createWebSocketStream`: those of Node's `Duplex` that apply.
 * `allowHalfOpen` defaults to false: a WebSocket cannot send once the peer has closed.
 */
export type WebSocketStreamOptions = Pick<DuplexOptions, typeof STREAM_OPTIONS[number]>

const AS_TEXT = { binary: false }
const AS_BINARY = { binary: true }

/**
 * A connection as a Node.js `Duplex`, for `pipeline()` and other stream code.
 *
 * - Reading: the bytes of each message, text and binary alike, as a byte
 *   stream (message boundaries are not kept); with `readableObjectMode`, one
 *   chunk per message, text as a string and binary as a Buffer. While the
 *   readable buffer is full, reading from the socket pauses.
 * - Writing: one message per chunk; a string chunk goes as text, bytes as
 *   binary. With the default `decodeStrings: true` Node turns written
 *   strings into Buffers first, so everything goes as binary, as with ws's
 *   helper; `decodeStrings: false` or `writableObjectMode` keeps strings (in
 *   UTF-8) as text. A write waits for the connection's `drain` when `send`
 *   returns false.
 * - `end()`: a close with 1000 after the data written; 'finish' once the
 *   closing handshake is done.
 * - The connection's close: the end of the readable side after a close with
 *   1000 or 1005; any other code (1001, 1006 when it dropped, 4xxx…) destroys
 *   the stream with a `WebSocketError` coded `WS_ERR_CLOSED_ABNORMALLY`
 *   carrying it as `closeCode`, so cut-off data never looks complete. The
 *   connection's `error` (a protocol violation, a socket error) destroys the
 *   stream with that error.
 * - `destroy()` closes the connection with 1001, `destroy(err)` with 1011
 *   (a closing handshake, not a reset); the stream's 'close' follows the
 *   connection's.
 *
 * An error that comes from the connection is emitted only if the stream has
 * an `error` listener (pipeline and `for await` add one); otherwise the
 * stream is destroyed without it, so a misbehaving peer cannot crash the
 * process — as the connection itself emits `error` only to listeners.
 */
export function createWebSocketStream (conn: WebSocketConnection<any>, options: WebSocketStreamOptions = {}): Duplex {
  for (const key of Object.keys(options)) {
    if (!(STREAM_OPTIONS as readonly string[]).includes(key)) {
      throw new WebSocketError('WS_ERR_UNKNOWN_OPTION', `createWebSocketStream: unknown option "${key}"; the options are ${STREAM_OPTIONS.join(', ')}`)
    }
  }
  return new WebSocketStream(conn, options)
}

type WriteCallback = (err?: Error | null) => void

class WebSocketStream extends Duplex {
  readonly #conn: WebSocketConnection<any>
  readonly #internal: ConnectionInternals
  // The write whose `send` returned false: released by the connection's
  // `drain`, by its own failure, or by the close. Writes are numbered so a
  // late failure of an earlier write is not taken for this one's.
  #waiting: { id: number, callback: WriteCallback } | null = null
  #writes = 0
  // A write already acknowledged (queued under the high-water mark) that the
  // connection then failed to send: reported when the close is handled.
  #lost: Error | null = null
  // `_final`'s callback, run once the closing handshake it started is done.
  #finishing: WriteCallback | null = null
  // `_destroy`'s callback, run once the connection has closed.
  #destroying: (() => void) | null = null
  // The connection emitted `error`: it closes by itself (with the error's
  // code), so destroying the stream must not start a close of its own.
  #failed = false

  constructor (conn: WebSocketConnection<any>, { signal, ...options }: WebSocketStreamOptions) {
    super({ allowHalfOpen: false, ...options })
    this.#conn = conn
    this.#internal = conn[kInternal]
    if (conn.closeEmitted) {
      // Nothing will come; writes fail as sends on a closed connection do.
      this.push(null)
    } else {
      conn.on('message', this.#onMessage)
      conn.on('close', this.#onClose)
      conn.on('error', this.#onError)
      conn.on('drain', this.#onDrain)
    }
    // Not given to Duplex: an aborted signal would destroy the stream before it is set up.
    if (signal !== undefined) addAbortSignal(signal, this)
  }

  override _read (): void {
    this.#internal.resumeFrom(PauseReason.Stream)
  }

  override _write (chunk: unknown, encoding: string | null | undefined, callback: WriteCallback): void {
    let data: WebSocketData
    let binary = true
    if (typeof chunk === 'string') {
      // In object mode, a string written without an encoding comes with none.
      if (encoding == null || /^utf-?8$/i.test(encoding)) {
        data = chunk
        binary = false
      } else {
        data = Buffer.from(chunk, encoding as BufferEncoding)
      }
    } else if (ArrayBuffer.isView(chunk) || chunk instanceof ArrayBuffer) {
      data = chunk
    } else {
      const err = new TypeError(`createWebSocketStream: a chunk must be a string, a Buffer, a TypedArray, a DataView or an ArrayBuffer (got ${chunk === null ? 'null' : typeof chunk})`)
      callback(invalidArgument(err))
      return
    }
    const id = ++this.#writes
    const queued = this.#conn.send(data, binary ? AS_BINARY : AS_TEXT, (err) => {
      if (err) this.#writeFailed(id, err)
    })
    // Under the connection's high-water mark: take the next chunk now, so
    // that many messages go out in one write. Above it: wait for `drain`.
    if (queued) callback()
    else this.#waiting = { id, callback }
  }

  override _final (callback: WriteCallback): void {
    const conn = this.#conn
    if (conn.closeEmitted) {
      callback()
      return
    }
    this.#finishing = callback
    // The peer's close frame comes after whatever it still sends: keep
    // reading, even if nobody reads the stream, or the handshake cannot end.
    this.#internal.resumeFrom(PauseReason.Stream)
    if (conn.readyState === ReadyState.OPEN) conn.close(CloseCode.Normal)
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    const conn = this.#conn
    this.#waiting = null
    this.#finishing = null
    if (conn.closeEmitted) {
      this.#detach()
      callback(err)
      return
    }
    // A closing handshake rather than a reset, so the peer learns why; the
    // stream's 'close' waits for the connection's (at most closeTimeout).
    this.#destroying = () => callback(err)
    this.#internal.resumeFrom(PauseReason.Stream)
    if (conn.readyState === ReadyState.OPEN && !this.#failed) conn.close(err == null ? CloseCode.GoingAway : CloseCode.InternalError)
  }

  readonly #onMessage = (data: Buffer, isBinary: boolean): void => {
    // Once destroyed, what arrives before the peer's close frame is dropped.
    if (this.destroyed) return
    const chunk = !isBinary && this.readableObjectMode ? data.toString('utf8') : data
    // Pausing while closing would keep the peer's close frame unread.
    if (!this.push(chunk) && this.#conn.readyState === ReadyState.OPEN) this.#internal.pauseFor(PauseReason.Stream)
  }

  readonly #onDrain = (): void => {
    const waiting = this.#waiting
    if (waiting === null) return
    this.#waiting = null
    waiting.callback()
  }

  readonly #onError = (err: Error): void => {
    // Emitted before the connection sends its close frame (readyState is still OPEN).
    this.#failed = true
    this.#fail(err)
  }

  readonly #onClose = (code: number, reason: string): void => {
    this.#detach()
    const destroying = this.#destroying
    if (destroying !== null) {
      this.#destroying = null
      destroying()
      return
    }
    if (this.destroyed) return
    if (code !== CloseCode.Normal && code !== CloseCode.NoStatusReceived) {
      const why = reason === '' ? '' : ` (${reason})`
      this.#fail(new WebSocketError('WS_ERR_CLOSED_ABNORMALLY', `the WebSocket connection closed with ${code}${why} before the stream ended`, code))
      return
    }
    if (this.#lost !== null) {
      this.#fail(this.#lost)
      return
    }
    this.push(null)
    // A write still waiting was written (one that was not failed before the
    // close); a closing handshake `end()` started is done.
    this.#onDrain()
    const finishing = this.#finishing
    this.#finishing = null
    finishing?.()
  }

  #writeFailed (id: number, err: Error): void {
    const waiting = this.#waiting
    if (waiting === null || waiting.id !== id) {
      this.#lost ??= err
      return
    }
    this.#waiting = null
    this.#fail(err)
    // Its own callback hears of it too; the stream is destroyed by now, so no second 'error'.
    waiting.callback(err)
  }

  /** An error from the connection: emitted if someone listens, else the stream is only destroyed. */
  #fail (err: Error): void {
    if (this.destroyed) return
    if (this.listenerCount('error') > 0) {
      this.destroy(err)
      return
    }
    this.#conn.log?.debug({ err }, 'websocket stream destroyed; it has no error listener')
    this.destroy()
  }

  #detach (): void {
    const conn = this.#conn
    conn.off('message', this.#onMessage)
    conn.off('close', this.#onClose)
    conn.off('error', this.#onError)
    conn.off('drain', this.#onDrain)
    this.#internal.resumeFrom(PauseReason.Stream)
  }
}
