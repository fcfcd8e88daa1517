import { isUtf8 } from 'node:buffer'
import { CloseCode, isValidWireCloseCode } from './close-codes.js'
import { truncateReason } from './close-payload.js'
import { ProtocolError, WebSocketError, protocolError, webSocketError } from './errors.js'
import type { MessageExtension } from './extension.js'
import { FrameParser, type FrameParserSink, type Role } from './frame-parser.js'
import { encodeCloseFrame, encodeControlFrame, encodeFrame, toBuffer } from './frame-writer.js'
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

/** A message to encode, or frames already encoded (`frames`) that keep their place behind the messages before them. */
interface Outgoing {
  data: Buffer
  isBinary: boolean
  frames: Buffer[] | null
  /** Bytes it holds, for pendingOutboundBytes. */
  size: number
  done?: (err?: Error | null) => void
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
 * The RFC 6455 state machine for one open connection: frames in through
 * `receive`, application calls in through `send`/`ping`/`close`, bytes and
 * events out through the handler. It owns the closing handshake rules;
 * it owns no timers and no sockets.
 */
export class WebSocketProtocol implements FrameParserSink {
  readonly role: Role
  private readonly handler: ProtocolHandler
  private readonly parser: FrameParser
  private readonly mask: boolean
  private readonly autoPong: boolean
  private readonly maxMessageSize: number
  private readonly extension: MessageExtension | null

  private state: ReadyState = ReadyState.OPEN
  // sentClose: a close was committed (send() refused from then on);
  // closeWritten: its frame is on the wire, and nothing may follow it.
  private sentClose = false
  private closeWritten = false
  private receivedClose = false
  private failed = false
  private code: number = CloseCode.Abnormal
  private reason = ''

  // Only used with an extension: keeps messages in order around asynchronous transforms.
  private inbound: Incoming[] | null = null
  private decoding = false
  // What the queued messages (and the one being decoded) hold; past maxDecodeBacklog, reading pauses.
  private inboundBytes = 0
  private inboundBuffer: ArrayBufferLike | null = null
  private backlogged = false
  private readonly maxDecodeBacklog: number
  private outbound: Outgoing[] | null = null
  private encoding = false
  private outboundBytes = 0
  // A close() that waits for messages sent before it to finish encoding.
  private pendingCloseFrame: Buffer[] | null = null
  // The peer's close, held until the messages received before it are decoded.
  private pendingPeerClose: { code: number, reason: string } | null = null

  constructor (options: ProtocolOptions, handler: ProtocolHandler) {
    this.role = options.role
    this.handler = handler
    this.mask = options.role === 'client'
    this.autoPong = options.autoPong ?? true
    this.maxMessageSize = options.maxMessageSize
    this.extension = options.extension ?? null
    this.maxDecodeBacklog = options.maxDecodeBacklog ?? options.maxMessageSize
    this.parser = new FrameParser({
      role: options.role,
      maxMessageSize: options.maxMessageSize,
      allowRsv1: this.extension !== null,
      maxEncodedMessageSize: this.extension?.encodedSizeLimit?.(options.maxMessageSize),
      maxMessagePieces: options.maxMessagePieces,
      minAveragePieceSize: options.minAveragePieceSize
    }, this)
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
    return this.outboundBytes
  }

  /** Memory held by received messages waiting for the extension to decode them. */
  get decodeBacklog (): number {
    return this.inboundBytes
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
    if (this.extension !== null) {
      const bytes = typeof data === 'string' ? Buffer.from(data) : toBuffer(data)
      this.enqueueOutgoing({ data: bytes, isBinary: binary, frames: null, size: bytes.length, done })
      return
    }
    const payload = typeof data === 'string' ? data : toBuffer(data)
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
    if (this.encoding || (this.outbound !== null && this.outbound.length > 0)) {
      // Messages sent before close() must reach the wire before the close frame.
      this.pendingCloseFrame = frames
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
    this.failed = true
    if (!this.closeWritten) {
      this.sentClose = true
      // 1005, 1006 and 1015 only describe a closure and may not go on the wire:
      // the first becomes a close frame without a status, the others none at all.
      if (isValidWireCloseCode(code)) this.writeClose(encodeCloseFrame(code, truncateReason(reason), this.mask))
      else if (code === CloseCode.NoStatusReceived) this.writeClose(encodeCloseFrame(undefined, '', this.mask))
      else this.rejectOutbound()
    }
    this.state = ReadyState.CLOSING
    this.parser.stop()
    this.checkBacklog()
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
    this.failed = true
    this.sentClose = true
    this.code = code
    this.reason = reason
    this.state = ReadyState.CLOSING
    this.parser.stop()
    this.rejectOutbound()
  }

  /** The transport is gone; nothing more can be sent or received. */
  transportClosed (): void {
    if (this.state === ReadyState.CLOSED) return
    this.state = ReadyState.CLOSED
    this.parser.stop()
    this.inbound = null
    this.inboundBytes = 0
    this.inboundBuffer = null
    this.backlogged = false
    this.pendingPeerClose = null
    this.extension?.close?.()
    this.rejectOutbound()
  }

  // FrameParserSink

  onMessage (data: Buffer, isBinary: boolean, compressed: boolean): void {
    if (this.extension === null) {
      this.handler.onMessage(data, isBinary)
      return
    }
    if (this.inbound === null) this.inbound = []
    // A message may be a view of a larger read buffer that queueing it keeps
    // alive: that buffer is counted, once, so tiny messages cannot pin much.
    let cost = data.length + ENTRY_COST
    if (data.buffer !== this.inboundBuffer) {
      this.inboundBuffer = data.buffer
      cost += data.buffer.byteLength - data.length
    }
    this.inboundBytes += cost
    this.inbound.push({ data, isBinary, compressed, cost })
    this.drainInbound()
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
    if (this.decoding || (this.inbound !== null && this.inbound.length > 0)) {
      // Reporting it now would put it before messages that preceded it on the
      // wire, and a server would close the transport before delivering them.
      this.pendingPeerClose = { code, reason }
      return
    }
    this.handlePeerClose(code, reason)
  }

  private handlePeerClose (code: number, reason: string): void {
    this.receivedClose = true
    this.code = code
    this.reason = reason
    if (this.state === ReadyState.OPEN) this.state = ReadyState.CLOSING
    if (this.pendingCloseFrame !== null) {
      // Our close() was waiting on encodes; the peer is done, so stop waiting.
      this.writeClose(this.pendingCloseFrame)
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
    if (this.encoding || (this.outbound !== null && this.outbound.length > 0)) {
      let size = 0
      for (const frame of frames) size += frame.length
      this.enqueueOutgoing({ data: EMPTY, isBinary: false, frames, size })
      return
    }
    this.writeFrames(frames)
  }

  private writeClose (frames: Buffer[]): void {
    this.closeWritten = true
    this.pendingCloseFrame = null
    this.writeFrames(frames)
    // No data frame may follow a close frame (RFC 6455 §5.5.1).
    this.rejectOutbound()
  }

  private rejectOutbound (): void {
    if (this.outbound === null || this.outbound.length === 0) return
    const pending = this.outbound
    this.outbound = []
    for (const item of pending) {
      this.outboundBytes -= item.size
      item.done?.(webSocketError('WS_ERR_CLOSED_BEFORE_SENT'))
    }
  }

  private drainInbound (): void {
    const queue = this.inbound
    // After a failure nothing more is processed (RFC 6455 §7.1.7), even what was already queued.
    while (!this.decoding && queue !== null && queue.length > 0 && this.state !== ReadyState.CLOSED && !this.failed) {
      const item = queue.shift()!
      if (!item.compressed) {
        this.inboundBytes -= item.cost
        this.handler.onMessage(item.data, item.isBinary)
        continue
      }
      this.decoding = true
      let sync = true
      let finished = false
      this.extension!.decode(item.data, this.maxMessageSize, (err, result) => {
        this.decoding = false
        finished = true
        if (this.state === ReadyState.CLOSED || this.failed) return
        this.inboundBytes -= item.cost
        if (err) {
          this.onProtocolError(err instanceof ProtocolError ? err : protocolError('WS_ERR_EXTENSION_DECODE', err.message, { cause: err }))
          return
        }
        const data = result!
        if (!item.isBinary && !isUtf8(data)) {
          this.onProtocolError(protocolError('WS_ERR_INVALID_UTF8'))
          return
        }
        this.handler.onMessage(data, item.isBinary)
        if (!sync) this.drainInbound()
      })
      sync = false
      if (!finished) {
        this.checkBacklog()
        return
      }
    }
    this.checkBacklog()
    const peerClose = this.pendingPeerClose
    if (peerClose !== null && !this.decoding && (queue === null || queue.length === 0) && !this.failed && this.state !== ReadyState.CLOSED) {
      this.pendingPeerClose = null
      this.handlePeerClose(peerClose.code, peerClose.reason)
    }
  }

  /**
   * Tells the handler when the decode backlog crosses its bounds: reading
   * should pause while an asynchronous decode is pending and the queue holds
   * more than maxDecodeBacklog, and resume at half of it (or once the
   * connection failed, so its end can still be read).
   */
  private checkBacklog (): void {
    if (!this.backlogged) {
      if (this.decoding && this.inboundBytes > this.maxDecodeBacklog && !this.failed) {
        this.backlogged = true
        this.handler.onDecodeBacklog?.(true)
      }
    } else if (this.inboundBytes <= this.maxDecodeBacklog / 2 || this.failed) {
      this.backlogged = false
      this.handler.onDecodeBacklog?.(false)
    }
  }

  private enqueueOutgoing (item: Outgoing): void {
    if (this.outbound === null) this.outbound = []
    this.outboundBytes += item.size
    this.outbound.push(item)
    this.drainOutbound()
  }

  private drainOutbound (): void {
    while (!this.encoding && this.outbound !== null && this.outbound.length > 0 && !this.closeWritten) {
      const item = this.outbound.shift()!
      if (item.frames !== null) {
        this.outboundBytes -= item.size
        this.writeFrames(item.frames)
        continue
      }
      this.encoding = true
      let sync = true
      let finished = false
      this.extension!.encode(item.data, (err, result, transformed) => {
        this.encoding = false
        finished = true
        this.outboundBytes -= item.size
        if (this.state === ReadyState.CLOSED || this.closeWritten) {
          item.done?.(webSocketError('WS_ERR_CLOSED_BEFORE_SENT'))
          return
        }
        if (err) {
          const error = err instanceof WebSocketError ? err : protocolError('WS_ERR_EXTENSION_ENCODE', err.message, { cause: err })
          item.done?.(error)
          this.handler.onError(error)
          this.fail(CloseCode.InternalError, 'extension failed to encode a message')
          return
        }
        const opcode = item.isBinary ? Opcode.Binary : Opcode.Text
        this.writeFrames(encodeFrame(opcode, result!, { mask: this.mask, rsv1: transformed === true }))
        item.done?.(null)
        if (!sync) this.drainOutbound()
      })
      sync = false
      if (!finished) return
    }
    if (this.pendingCloseFrame !== null && !this.encoding && !this.closeWritten) this.writeClose(this.pendingCloseFrame)
  }
}

const EMPTY = Buffer.alloc(0)
// Shared frame options, so sending a message allocates no options object.
const MASKED = Object.freeze({ mask: true })
const UNMASKED = Object.freeze({ mask: false })
