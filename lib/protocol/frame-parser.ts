import { constants as bufferConstants, isUtf8 } from 'node:buffer'
import { parseClosePayload } from './close-payload.js'
import type { ClosingErrorCode } from './error-codes.js'
import { ProtocolError, protocolError } from './errors.js'
import { EAGER_PAYLOAD_LIMIT, FramePayload } from './frame-payload.js'
import { maskInto } from './mask.js'
import { Opcode, isKnownOpcode } from './opcodes.js'
import { pastPieceLimit, pieceLimits, tooFragmented, type PieceLimitOptions } from './piece-limit.js'
import { Utf8Validator } from './utf8.js'

export type Role = 'server' | 'client'

/** Receives what the parser finds, in order. Called synchronously from `push`. */
export interface FrameParserSink {
  /**
   * A complete data message. `compressed` means its first frame had RSV1
   * set: the payload still has to go through the negotiated extension, and
   * for text its UTF-8 has not been checked yet.
   */
  onMessage (data: Buffer, isBinary: boolean, compressed: boolean): void
  onPing (data: Buffer): void
  onPong (data: Buffer): void
  /** A valid close frame. `code` is 1005 when the frame carried no status. */
  onClose (code: number, reason: string): void
  /** The peer broke a rule. The parser ignores all input after this. */
  onProtocolError (error: ProtocolError): void
}

export interface FrameParserOptions extends PieceLimitOptions {
  /** Which end of the connection we are; decides which masking rule applies to incoming frames. */
  role: Role
  /** Largest message (sum of its fragments' payloads) accepted, in bytes. */
  maxMessageSize: number
  /** Set when a negotiated extension gives RSV1 a meaning. */
  allowRsv1?: boolean
  /** Largest RSV1 (extension-encoded) message on the wire; default `maxMessageSize` (see MessageExtension#encodedSizeLimit). */
  maxEncodedMessageSize?: number
}

const MAX_HEADER = 14
// 2^53 - 1 split as a 64-bit big-endian number: the high word may be at most 0x1fffff.
const MAX_SAFE_HIGH_WORD = 0x1fffff
// First allocation for a fragmented message whose first fragment is small.
const MIN_MESSAGE_BUFFER = 1024
const EMPTY = Buffer.alloc(0)

/**
 * Incremental RFC 6455 frame parser: feed it chunks of any size with `push`.
 *
 * Payloads that arrive whole inside one chunk are unmasked in place and
 * handed on as views of that chunk (the chunk is modified: the parser owns
 * what it is given). A payload spread over several chunks is collected by a
 * FramePayload (bounded memory per byte received, whatever the chunking).
 * Fragments of a message are copied once, unmasked on the way, into one
 * message buffer. A message cut into too many pieces fails with 1008
 * (see piece-limit.ts).
 */
export class FrameParser {
  private readonly sink: FrameParserSink
  private readonly expectMasked: boolean
  private readonly maxMessageSize: number
  private readonly maxEncodedMessageSize: number
  private readonly allowRsv1: boolean
  private readonly maxMessagePieces: number
  private readonly minAveragePieceSize: number

  private stopped = false

  // Header bytes split across chunks; allocated only when that happens.
  private headerBuf: Buffer | null = null
  private headerFilled = 0

  // The frame being read.
  private fin = false
  private rsv1 = false
  private opcode = 0
  private payloadLength = 0
  private maskKey: Uint8Array | null = null
  // A control frame or single-frame message that spans chunks.
  private payload: FramePayload | null = null
  // Bytes of the fragment being read that are in `message`.
  private partialFilled = 0
  // The frame being read spans chunks and is a single-frame text message: its
  // UTF-8 is checked piece by piece, so bad input fails before the frame ends.
  private checkTextPieces = false
  // The frame being read is a fragment whose payload goes straight into `message`.
  private assembling = false

  // The data message being assembled from fragments. Fragments are copied into
  // one growing buffer as they arrive (unmasked on the way) rather than kept as
  // views: a view would pin the whole chunk it came in, and a peer sending tiny
  // fragments padded with pongs could make a small message hold gigabytes.
  private messageOpcode = 0
  private messageCompressed = false
  private messageLength = 0
  private message: Buffer | null = null
  private utf8: Utf8Validator | null = null
  // Pieces of the data message being received, for the piece cap
  // (piece-limit.ts); reset when a message starts in more than one piece.
  private messagePieces = 0

  constructor (options: FrameParserOptions, sink: FrameParserSink) {
    this.sink = sink
    this.expectMasked = options.role === 'server'
    // A message larger than the biggest possible Buffer could never be
    // assembled: refuse it with 1009 rather than throw out of push().
    this.maxMessageSize = Math.min(options.maxMessageSize, bufferConstants.MAX_LENGTH)
    this.maxEncodedMessageSize = Math.min(options.maxEncodedMessageSize ?? options.maxMessageSize, bufferConstants.MAX_LENGTH)
    this.allowRsv1 = options.allowRsv1 === true
    ;[this.maxMessagePieces, this.minAveragePieceSize] = pieceLimits(options)
  }

  /** True once a close frame or a protocol error ended parsing. */
  get done (): boolean {
    return this.stopped
  }

  /** Stops parsing; later input is ignored. */
  stop (): void {
    this.stopped = true
    this.message = null
    this.payload = null
    this.assembling = false
  }

  push (chunk: Buffer): void {
    const length = chunk.length
    let offset = 0
    while (offset < length && !this.stopped) {
      if (this.assembling) {
        offset = this.fillFragment(chunk, offset)
        continue
      }
      if (this.payload !== null) {
        offset = this.fillPayload(chunk, offset)
        continue
      }
      if (this.headerFilled === 0) {
        const available = length - offset
        if (available >= 2) {
          const headerLength = frameHeaderLength(chunk[offset + 1])
          if (available >= headerLength) {
            if (!this.readHeader(chunk, offset)) return
            offset += headerLength
            offset = this.startPayload(chunk, offset)
            continue
          }
        }
      }
      offset = this.fillHeader(chunk, offset)
    }
  }

  /** Collects a header that straddles chunks into `headerBuf`. */
  private fillHeader (chunk: Buffer, offset: number): number {
    if (this.headerBuf === null) this.headerBuf = Buffer.allocUnsafe(MAX_HEADER)
    const header = this.headerBuf
    while (offset < chunk.length) {
      header[this.headerFilled++] = chunk[offset++]
      if (this.headerFilled >= 2 && this.headerFilled === frameHeaderLength(header[1])) {
        this.headerFilled = 0
        if (!this.readHeader(header, 0)) return chunk.length
        return this.startPayload(chunk, offset)
      }
    }
    return offset
  }

  /** Decodes and checks the header at `buf[offset]`, which must be complete. */
  private readHeader (buf: Buffer, offset: number): boolean {
    const b0 = buf[offset]
    const b1 = buf[offset + 1]
    const fin = (b0 & 0x80) !== 0
    const rsv1 = (b0 & 0x40) !== 0
    const opcode = b0 & 0x0f
    const masked = (b1 & 0x80) !== 0
    let payloadLength = b1 & 0x7f

    if ((b0 & 0x30) !== 0) {
      return this.fail('WS_ERR_UNEXPECTED_RSV_2_3')
    }
    if (!isKnownOpcode(opcode)) {
      return this.fail('WS_ERR_INVALID_OPCODE', `reserved opcode 0x${opcode.toString(16)}`)
    }
    if (opcode >= 0x8) {
      if (!fin) return this.fail('WS_ERR_EXPECTED_FIN')
      if (payloadLength > 125) return this.fail('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH')
      if (rsv1) return this.fail('WS_ERR_UNEXPECTED_RSV_1', 'RSV1 must be 0 on control frames')
    } else if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === 0) return this.fail('WS_ERR_INVALID_OPCODE', 'continuation frame with no message in progress')
      if (rsv1) return this.fail('WS_ERR_UNEXPECTED_RSV_1', 'RSV1 must be 0 on continuation frames')
    } else {
      if (this.messageOpcode !== 0) {
        return this.fail('WS_ERR_INVALID_OPCODE', 'new data frame while a fragmented message is still open')
      }
      if (rsv1 && !this.allowRsv1) {
        return this.fail('WS_ERR_UNEXPECTED_RSV_1')
      }
    }
    if (masked !== this.expectMasked) {
      return this.fail(masked ? 'WS_ERR_UNEXPECTED_MASK' : 'WS_ERR_EXPECTED_MASK')
    }

    let cursor = offset + 2
    if (payloadLength === 126) {
      payloadLength = buf.readUInt16BE(cursor)
      cursor += 2
    } else if (payloadLength === 127) {
      const high = buf.readUInt32BE(cursor)
      if (high > 0x7fffffff) {
        return this.fail('WS_ERR_UNEXPECTED_LENGTH_MSB')
      }
      if (high > MAX_SAFE_HIGH_WORD) {
        return this.fail('WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')
      }
      payloadLength = high * 0x100000000 + buf.readUInt32BE(cursor + 4)
      cursor += 8
    }
    if (opcode < 0x8) {
      // An extension-encoded message is limited on the wire by what its decoded limit allows.
      const limit = (opcode === Opcode.Continuation ? this.messageCompressed : rsv1) ? this.maxEncodedMessageSize : this.maxMessageSize
      if (this.messageLength + payloadLength > limit) {
        return this.fail('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', `message exceeds the limit of ${limit} bytes`)
      }
    }
    if (masked) {
      // Copied: the header may sit in the reusable headerBuf.
      let key = this.maskKey
      if (key === null) key = this.maskKey = new Uint8Array(4)
      key[0] = buf[cursor]
      key[1] = buf[cursor + 1]
      key[2] = buf[cursor + 2]
      key[3] = buf[cursor + 3]
    }
    this.fin = fin
    this.rsv1 = rsv1
    this.opcode = opcode
    this.payloadLength = payloadLength
    return true
  }

  private startPayload (chunk: Buffer, offset: number): number {
    const length = this.payloadLength
    const opcode = this.opcode
    if (opcode === Opcode.Continuation || (!this.fin && opcode < 0x8)) {
      if (opcode !== Opcode.Continuation) this.beginMessage(opcode)
      if (length > 0) this.reserve(this.messageLength + Math.min(length, EAGER_PAYLOAD_LIMIT))
      this.partialFilled = 0
      this.assembling = true
      return this.fillFragment(chunk, offset)
    }
    if (chunk.length - offset >= length) {
      const payload = chunk.subarray(offset, offset + length)
      if (this.expectMasked && length > 0) maskInto(payload, 0, payload, 0, length, this.maskKey!, 0)
      this.onFrame(payload, false)
      return offset + length
    }
    if (opcode < 0x8) this.messagePieces = 0
    this.checkTextPieces = opcode === Opcode.Text && !this.rsv1
    if (this.checkTextPieces) this.validator().reset()
    this.payload = new FramePayload(length)
    return this.fillPayload(chunk, offset)
  }

  /** Collects a control frame or a single-frame message that spans chunks. */
  private fillPayload (chunk: Buffer, offset: number): number {
    const payload = this.payload!
    const count = Math.min(payload.missing, chunk.length - offset)
    if (!payload.add(chunk, offset, count, this.expectMasked ? this.maskKey : null, this.checkTextPieces ? this.utf8 : null)) {
      this.fail('WS_ERR_INVALID_UTF8')
      return chunk.length
    }
    // Control frames are not pieces of a message; a header alone brings no bytes.
    if (count > 0 && this.opcode < 0x8 && this.tooFragmented(payload.received)) return chunk.length
    if (payload.missing === 0) {
      this.payload = null
      const checked = this.checkTextPieces
      this.checkTextPieces = false
      this.onFrame(payload.take(), checked)
    }
    return offset + count
  }

  /** Copies (unmasking) a fragment's bytes into the message buffer as they arrive. */
  private fillFragment (chunk: Buffer, offset: number): number {
    const filled = this.partialFilled
    const count = Math.min(this.payloadLength - filled, chunk.length - offset)
    if (count > 0) {
      const at = this.messageLength
      const target = this.reserve(at + count)
      if (this.expectMasked) {
        maskInto(chunk, offset, target, at, count, this.maskKey!, filled & 3)
      } else {
        chunk.copy(target, at, offset, offset + count)
      }
      this.messageLength = at + count
      this.partialFilled = filled + count
      if (this.messageOpcode === Opcode.Text && !this.messageCompressed && !this.utf8!.push(target.subarray(at, at + count))) {
        this.fail('WS_ERR_INVALID_UTF8')
        return chunk.length
      }
    }
    // An empty fragment is a piece too, or endless empty continuations would cost nothing to send.
    if ((count > 0 || this.payloadLength === 0) && this.tooFragmented(this.messageLength)) return chunk.length
    if (this.partialFilled === this.payloadLength) {
      this.assembling = false
      if (this.fin) this.finishMessage()
    }
    return offset + count
  }

  private beginMessage (opcode: number): void {
    this.messageOpcode = opcode
    this.messageCompressed = this.rsv1
    this.messageLength = 0
    this.messagePieces = 0
    if (opcode === Opcode.Text && !this.rsv1) this.validator().reset()
  }

  private finishMessage (): void {
    if (this.messageOpcode === Opcode.Text && !this.messageCompressed && !this.utf8!.complete) {
      this.fail('WS_ERR_INVALID_UTF8')
      return
    }
    const data = this.message === null ? EMPTY : this.message.subarray(0, this.messageLength)
    const isBinary = this.messageOpcode === Opcode.Binary
    const compressed = this.messageCompressed
    this.message = null
    this.messageLength = 0
    this.messageOpcode = 0
    this.sink.onMessage(data, isBinary, compressed)
  }

  /**
   * Makes room for `needed` bytes of the message being assembled. Capacity
   * doubles (up to the size limit), so a message in many fragments is copied
   * a bounded number of times.
   */
  private reserve (needed: number): Buffer {
    const current = this.message
    if (current !== null && current.length >= needed) return current
    const capacity = current === null ? 0 : current.length
    const size = Math.min(Math.max(needed, capacity * 2, MIN_MESSAGE_BUFFER), this.messageCompressed ? this.maxEncodedMessageSize : this.maxMessageSize)
    const grown = Buffer.allocUnsafe(size)
    if (current !== null) current.copy(grown, 0, 0, this.messageLength)
    this.message = grown
    return grown
  }

  /** Counts one more piece of the data message being received, which now has `received` bytes; fails it past the cap. */
  private tooFragmented (received: number): boolean {
    const pieces = ++this.messagePieces
    if (!pastPieceLimit(pieces, received, this.maxMessagePieces, this.minAveragePieceSize)) return false
    this.failWith(tooFragmented(pieces, received, this.maxMessagePieces, this.minAveragePieceSize))
    return true
  }

  private validator (): Utf8Validator {
    if (this.utf8 === null) this.utf8 = new Utf8Validator()
    return this.utf8
  }

  /** A control frame, or a data message in a single frame. */
  private onFrame (payload: Buffer, utf8Checked: boolean): void {
    const opcode = this.opcode
    if (opcode >= 0x8) {
      this.onControlFrame(opcode, payload)
      return
    }
    if (opcode === Opcode.Text && !this.rsv1 && !(utf8Checked ? this.utf8!.complete : isUtf8(payload))) {
      this.fail('WS_ERR_INVALID_UTF8')
      return
    }
    this.sink.onMessage(payload, opcode === Opcode.Binary, this.rsv1)
  }

  private onControlFrame (opcode: number, payload: Buffer): void {
    if (opcode === Opcode.Ping) {
      this.sink.onPing(payload)
    } else if (opcode === Opcode.Pong) {
      this.sink.onPong(payload)
    } else {
      this.onCloseFrame(payload)
    }
  }

  private onCloseFrame (payload: Buffer): void {
    const close = parseClosePayload(payload)
    if (close instanceof ProtocolError) {
      this.failWith(close)
      return
    }
    // Nothing may follow a close frame (RFC 6455 §5.5.1).
    this.stop()
    this.sink.onClose(close.code, close.reason)
  }

  /** The peer broke the rule `code` names; `message` (default: the code's meaning) says how. */
  private fail (code: ClosingErrorCode, message?: string): false {
    return this.failWith(protocolError(code, message))
  }

  private failWith (error: ProtocolError): false {
    this.stop()
    this.sink.onProtocolError(error)
    return false
  }
}

/** Header size implied by the second header byte: 2, 4 or 10, plus 4 if masked. */
function frameHeaderLength (b1: number): number {
  const length7 = b1 & 0x7f
  return (length7 < 126 ? 2 : length7 === 126 ? 4 : 10) + ((b1 & 0x80) !== 0 ? 4 : 0)
}
