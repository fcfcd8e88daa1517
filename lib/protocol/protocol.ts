import { CloseCode, isValidWireCloseCode } from './close-codes.js'
import { truncateReason } from './close-payload.js'
import { ProtocolError, webSocketError } from './errors.js'
import type { MessageExtension } from './extension.js'
import { DecodeQueue, EncodeQueue } from './extension-queues.js'
import { FrameParser, type FrameParserSink, type Role } from './frame-parser.js'
import { encodeCloseFrame, encodeControlFrame, encodeFrame, INLINE_PAYLOAD_LIMIT, toBuffer } from './frame-writer.js'
import { Opcode } from './opcodes.js'
import type { PieceLimitOptions } from './piece-limit.js'

export const ReadyState = {
  CONNECTING: 0,
  OPEN: 1,
  CLOSING: 2,
  CLOSED: 3
} as const
export type ReadyState = typeof ReadyState[keyof typeof ReadyState]

/** What the protocol asks of the I/O layer that drives it. */
export interface ProtocolHandler {
  /** Bytes to put on the transport, in order. */
  write (data: Buffer): void
  /**
   * Optional: puts a final, unmasked data frame of at most
   * INLINE_PAYLOAD_LIMIT payload bytes on the transport, in order with
   * `write`, encoding it (with encodeFrameInto) wherever the I/O layer
   * gathers its writes. Saves a buffer per small message; used only when no
   * extension transforms messages.
   */
  writeFrame? (opcode: number, payload: Buffer | string, byteLength: number): void
  onMessage (data: Buffer, isBinary: boolean): void
  onPing (data: Buffer): void
  onPong (data: Buffer): void
  /** The peer sent a close frame (the reply, if one was owed, is already written). */
  onCloseFrame? (code: number, reason: string): void
  /**
   * With an asynchronous extension: true once messages waiting to be decoded
   * hold more than `maxDecodeBacklog` bytes (stop reading from the transport),
   * false once they are down to half of it (read again).
   */
  onDecodeBacklog? (backlogged: boolean): void
  /** The peer broke the protocol (or an extension failed); a close frame with `error.closeCode` is written next. */
  onError (error: Error): void
  /**
   * The transport should be closed now: the closing handshake is complete
   * on a server, or the connection failed. A client is never told to close
   * after a clean handshake: RFC 6455 §7.1.1 has it wait for the server,
   * which the I/O layer bounds with a timeout.
   */
  closeTransport (): void
}

/** `maxMessagePieces` / `minAveragePieceSize`: a message cut into too many pieces fails with 1008 (see piece-limit.ts). */
export interface ProtocolOptions extends PieceLimitOptions {
  role: Role
  /** Largest incoming message in bytes (after any extension's decoding). */
  maxMessageSize: number
  /** Reply to pings with pongs automatically (default true). */
  autoPong?: boolean
  /** The negotiated per-message extension, if any. */
  extension?: MessageExtension | null
  /** Bytes of received messages waiting for the extension to decode before `onDecodeBacklog(true)`; default `maxMessageSize`. */
  maxDecodeBacklog?: number
}

// WebSocketProtocol#bits. The three close facts only ever become true.
const MASK = 1
const AUTO_PONG = 2
const SENT_CLOSE = 4
const CLOSE_WRITTEN = 8
const RECEIVED_CLOSE = 16

/**
 * The RFC 6455 state machine for one open connection: frames in through
 * `receive`, application calls in through `send`/`ping`/`close`, bytes and
 * events out through the handler. It owns the closing handshake rules;
 * it owns no timers and no sockets.
 */
export class WebSocketProtocol implements FrameParserSink {
  readonly role: Role
  private readonly handler: ProtocolHandler
  private readonly parser: FrameParser
  private readonly extension: MessageExtension | null
  // Only with an extension (extension-queues.ts): they keep messages, and the
  // frames and close around them, in order across asynchronous transforms.
  // Without one they stay null and nothing goes through them.
  private readonly inbound: DecodeQueue | null = null
  private readonly outbound: EncodeQueue | null = null

  private state: ReadyState = ReadyState.OPEN
  // The five yes/no facts below (accessors), as bits of one field: a field
  // is 8 bytes on every connection for as long as it lives, idle or not.
  private bits = 0
  private code: number = CloseCode.Abnormal
  private reason = ''

  constructor (options: ProtocolOptions, handler: ProtocolHandler) {
    this.role = options.role
    this.handler = handler
    if (options.role === 'client') this.bits |= MASK
    if (options.autoPong ?? true) this.bits |= AUTO_PONG
    this.extension = options.extension ?? null
    if (this.extension !== null) {
      this.inbound = new DecodeQueue(this.extension, options.maxMessageSize, options.maxDecodeBacklog ?? options.maxMessageSize, {
        onMessage: (data, isBinary) => { handler.onMessage(data, isBinary) },
        onDecodeError: (error) => { this.onProtocolError(error) },
        onClose: (code, reason) => { this.handlePeerClose(code, reason) },
        onDecodeBacklog: (backlogged) => { handler.onDecodeBacklog?.(backlogged) }
      })
      this.outbound = new EncodeQueue(this.extension, this.mask, {
        write: (frames) => { this.writeFrames(frames) },
        onEncodeError: (error) => {
          handler.onError(error)
          this.fail(CloseCode.InternalError, 'extension failed to encode a message')
        },
        writeClose: (frames) => { this.writeClose(frames) }
      })
    }
    this.parser = new FrameParser({
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      allowRsv1: this.extension !== null,
      maxEncodedMessageSize: this.extension?.encodedSizeLimit?.(options.maxMessageSize),
      maxMessagePieces: options.maxMessagePieces,
      minAveragePieceSize: options.minAveragePieceSize
    }, this)
  }

  /** Outgoing frames are masked: the client side. */
  private get mask (): boolean {
    return (this.bits & MASK) !== 0
  }

  private get autoPong (): boolean {
    return (this.bits & AUTO_PONG) !== 0
  }

  /** A close was committed: send() is refused from then on. */
  private get sentClose (): boolean {
    return (this.bits & SENT_CLOSE) !== 0
  }

  private set sentClose (value: true) {
    this.bits |= SENT_CLOSE
  }

  /** The close frame is on the wire: nothing may follow it. */
  private get closeWritten (): boolean {
    return (this.bits & CLOSE_WRITTEN) !== 0
  }

  private set closeWritten (value: true) {
    this.bits |= CLOSE_WRITTEN
  }

  private get receivedClose (): boolean {
    return (this.bits & RECEIVED_CLOSE) !== 0
  }

  private set receivedClose (value: true) {
    this.bits |= RECEIVED_CLOSE
  }
  get readyState (): ReadyState {
    return this.state
  }

  /** The code of the close frame received (1005 if it had none, 1006 if none came). */
  get closeCode (): number {
    return this.code
  }

  get closeReason (): string {
    return this.reason
  }

  get closeSent (): boolean {
    return this.sentClose
  }

  get closeReceived (): boolean {
    return this.receivedClose
  }

  /** Both close frames were exchanged. */
  get wasClean (): boolean {
    return this.sentClose && this.receivedClose
  }

  /** Bytes sent but not yet handed to `write`: messages the extension is still encoding and frames queued behind them. */
  get pendingOutboundBytes (): number {
    return this.outbound === null ? 0 : this.outbound.pendingBytes
  }

  /** Memory held by received messages waiting for the extension to decode them. */
  get decodeBacklog (): number {
    return this.inbound === null ? 0 : this.inbound.backlog
  }

  /** Feeds bytes from the transport. May modify `chunk` (in-place unmasking). */
  receive (chunk: Buffer): void {
    this.parser.push(chunk)
  }

  /** Sends a text (string) or binary message. Throws (`WS_ERR_NOT_OPEN`) if a close frame was already sent. */
  send (data: string | Uint8Array | ArrayBuffer | ArrayBufferView, isBinary?: boolean, done?: (err?: Error | null) => void): void {
    if (this.sentClose || this.state === ReadyState.CLOSED) {
      throw webSocketError('WS_ERR_NOT_OPEN', `cannot send: the connection is ${this.sentClose ? 'closing' : 'closed'}`)
    }
    const binary = isBinary ?? typeof data !== 'string'
    if (this.outbound !== null) {
      this.outbound.send(typeof data === 'string' ? Buffer.from(data) : toBuffer(data), binary, done)
      return
    }
    const payload = typeof data === 'string' ? data : toBuffer(data)
    // A string longer than the limit in UTF-16 units is longer in UTF-8 bytes too: not measured twice.
    if (!this.mask && this.handler.writeFrame !== undefined && payload.length <= INLINE_PAYLOAD_LIMIT) {
      const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
      if (length <= INLINE_PAYLOAD_LIMIT) {
        this.handler.writeFrame(binary ? Opcode.Binary : Opcode.Text, payload, length)
        done?.(null)
        return
      }
    }
    this.writeFrames(encodeFrame(binary ? Opcode.Binary : Opcode.Text, payload, this.mask ? MASKED : UNMASKED))
    done?.(null)
  }

  ping (data: string | Uint8Array = EMPTY): void {
    this.assertCanSendControl()
    this.writeInOrder(encodeControlFrame(Opcode.Ping, data, this.mask))
  }

  pong (data: string | Uint8Array = EMPTY): void {
    this.assertCanSendControl()
    this.writeInOrder(encodeControlFrame(Opcode.Pong, data, this.mask))
  }

  /**
   * Sends a complete frame encoded elsewhere (a broadcast's, encoded once
   * for many connections). It goes out after the messages sent before it,
   * even those the extension is still encoding.
   */
  sendFrame (frame: Buffer): void {
    if (this.sentClose || this.state === ReadyState.CLOSED) {
      throw webSocketError('WS_ERR_NOT_OPEN', `cannot send: the connection is ${this.sentClose ? 'closing' : 'closed'}`)
    }
    this.writeInOrder([frame])
  }

  /**
   * Starts the closing handshake (or completes it, if the peer's close came
   * first). Does nothing if a close frame was already sent. The close frame
   * follows any message still being encoded by the extension.
   */
  close (code?: number, reason?: string): void {
    if (this.sentClose || this.state === ReadyState.CLOSED) return
    const frames = encodeCloseFrame(code, reason, this.mask) // validates before any state changes
    this.sentClose = true
    this.state = ReadyState.CLOSING
    if (this.outbound !== null && this.outbound.busy) {
      // Messages sent before close() must reach the wire before the close frame.
      this.outbound.holdClose(frames)
      return
    }
    this.writeClose(frames)
  }

  /**
   * Fails the connection (RFC 6455 §7.1.7): sends a close frame with `code`
   * if none was sent yet, then asks for the transport to be closed.
   */
  fail (code: number, reason = ''): void {
    if (this.state === ReadyState.CLOSED) return
    this.inbound?.halt()
    if (!this.closeWritten) {
      this.sentClose = true
      // 1005, 1006 and 1015 only describe a closure and may not go on the wire:
      // the first becomes a close frame without a status, the others none at all.
      if (isValidWireCloseCode(code)) this.writeClose(encodeCloseFrame(code, truncateReason(reason), this.mask))
      else if (code === CloseCode.NoStatusReceived) this.writeClose(encodeCloseFrame(undefined, '', this.mask))
      else this.outbound?.reject()
    }
    this.state = ReadyState.CLOSING
    this.parser.stop()
    // A failed connection reads again (the decode backlog is released), so that its end can still be read.
    this.inbound?.checkBacklog()
    this.handler.closeTransport()
  }

  /**
   * Ends the connection without a closing handshake, because the transport
   * is to be dropped at once (the I/O layer found the peer not reading what
   * it is sent, so a close frame would never reach it). `code` and `reason`
   * are what the closure reports locally; nothing is written.
   */
  abort (code: number, reason: string): void {
    if (this.state === ReadyState.CLOSED) return
    this.inbound?.halt()
    this.sentClose = true
    this.code = code
    this.reason = reason
    this.state = ReadyState.CLOSING
    this.parser.stop()
    this.outbound?.reject()
  }

  /** The transport is gone; nothing more can be sent or received. */
  transportClosed (): void {
    if (this.state === ReadyState.CLOSED) return
    this.state = ReadyState.CLOSED
    // Both queues stop before the extension closes: closing it may call a
    // pending transform back at once, which must find the connection closed.
    this.inbound?.clear()
    this.outbound?.stop()
    this.parser.stop()
    this.extension?.close?.()
    this.outbound?.reject()
  }

  // FrameParserSink

  onMessage (data: Buffer, isBinary: boolean, compressed: boolean): void {
    if (this.inbound === null) {
      this.handler.onMessage(data, isBinary)
      return
    }
    this.inbound.push(data, isBinary, compressed)
  }

  onPing (data: Buffer): void {
    if (this.autoPong && !this.sentClose && this.state === ReadyState.OPEN) {
      this.writeInOrder(encodeControlFrame(Opcode.Pong, data, this.mask))
    }
    this.handler.onPing(data)
  }

  onPong (data: Buffer): void {
    this.handler.onPong(data)
  }

  onClose (code: number, reason: string): void {
    if (this.inbound !== null && this.inbound.busy) {
      // After the messages that preceded it on the wire, still being decoded.
      this.inbound.holdClose(code, reason)
      return
    }
    this.handlePeerClose(code, reason)
  }

  private handlePeerClose (code: number, reason: string): void {
    this.receivedClose = true
    this.code = code
    this.reason = reason
    if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING
    const heldClose = this.outbound === null ? null : this.outbound.takeHeldClose()
    if (heldClose !== null) {
      // Our close() was waiting on encodes; the peer is done, so stop waiting.
      this.writeClose(heldClose)
    } else if (!this.sentClose) {
      // Echo the status code (RFC 6455 §5.5.1); a close without one is answered without one.
      this.sentClose = true
      this.writeClose(encodeCloseFrame(code === CloseCode.NoStatusReceived ? undefined : code, '', this.mask))
    }
    this.handler.onCloseFrame?.(code, reason)
    if (this.role === 'server') this.handler.closeTransport()
  }

  onProtocolError (error: ProtocolError): void {
    this.code = error.closeCode
    this.reason = error.message
    this.handler.onError(error)
    this.fail(error.closeCode, error.message)
  }

  private assertCanSendControl (): void {
    if (this.sentClose || this.state === ReadyState.CLOSED) {
      throw webSocketError('WS_ERR_NOT_OPEN', 'cannot send a control frame: the connection is closing')
    }
  }

  private writeFrames (frames: Buffer[]): void {
    this.handler.write(frames[0])
    if (frames.length > 1) this.handler.write(frames[1])
  }

  /** Writes frames now, or after the messages the extension is still encoding. */
  private writeInOrder (frames: Buffer[]): void {
    if (this.outbound !== null && this.outbound.busy) {
      this.outbound.sendFrames(frames)
      return
    }
    this.writeFrames(frames)
  }

  private writeClose (frames: Buffer[]): void {
    this.closeWritten = true
    this.outbound?.stop()
    this.writeFrames(frames)
    // No data frame may follow a close frame (RFC 6455 §5.5.1).
    this.outbound?.reject()
  }
}

const EMPTY = Buffer.alloc(0)
// Shared frame options, so sending a message allocates no options object.
const MASKED = Object.freeze({ mask: true })
const UNMASKED = Object.freeze({ mask: false })
