import { constants as bufferConstants, isUtf8 } from 'node:buffer'
import { CloseCode, isValidWireCloseCode } from './close-codes.js'
import { ProtocolError } from './errors.js'
import { maskInto } from './mask.js'
import { Opcode, isKnownOpcode } from './opcodes.js'
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

export interface FrameParserOptions {
  /** Which end of the connection we are; decides which masking rule applies to incoming frames. */
  role: Role
  /** Largest message (sum of its fragments' payloads) accepted, in bytes. */
  maxMessageSize: number
  /** Set when a negotiated extension gives RSV1 a meaning. */
  allowRsv1?: boolean
}

const MAX_HEADER = 14
// Frames up to this size that span chunks get their whole buffer at once (one
// copy, unmasked on the way); larger ones are collected piece by piece.
const EAGER_PAYLOAD_LIMIT = 64 * 1024
// 2^53 - 1 split as a 64-bit big-endian number: the high word may be at most 0x1fffff.
const MAX_SAFE_HIGH_WORD = 0x1fffff

/**
 * Incremental RFC 6455 frame parser: feed it chunks of any size with `push`.
 *
 * Payloads that arrive whole inside one chunk are unmasked in place and
 * handed on as views of that chunk (the chunk is modified: the parser owns
 * what it is given). A payload spread over several chunks is copied once,
 * unmasked on the way, into a buffer of exactly its size.
 */
export class FrameParser {
  private readonly sink: FrameParserSink
  private readonly expectMasked: boolean
  private readonly maxMessageSize: number
  private readonly allowRsv1: boolean

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
  private partial: Buffer | null = null
  private pieces: Buffer[] | null = null
  private partialFilled = 0

  // The data message being assembled from fragments.
  private messageOpcode = 0
  private messageCompressed = false
  private messageLength = 0
  private fragments: Buffer[] | null = null
  private utf8: Utf8Validator | null = null

  constructor (options: FrameParserOptions, sink: FrameParserSink) {
    this.sink = sink
    this.expectMasked = options.role === 'server'
    // A message larger than the biggest possible Buffer could never be
    // assembled: refuse it with 1009 rather than throw out of push().
    this.maxMessageSize = Math.min(options.maxMessageSize, bufferConstants.MAX_LENGTH)
    this.allowRsv1 = options.allowRsv1 === true
  }

  /** True once a close frame or a protocol error ended parsing. */
  get done (): boolean {
    return this.stopped
  }

  /** Stops parsing; later input is ignored. */
  stop (): void {
    this.stopped = true
    this.fragments = null
    this.partial = null
    this.pieces = null
  }

  push (chunk: Buffer): void {
    const length = chunk.length
    let offset = 0
    while (offset < length && !this.stopped) {
      if (this.partial !== null || this.pieces !== null) {
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
      return this.fail(CloseCode.ProtocolError, 'RSV2 and RSV3 must be 0: no negotiated extension defines them')
    }
    if (!isKnownOpcode(opcode)) {
      return this.fail(CloseCode.ProtocolError, `reserved opcode 0x${opcode.toString(16)}`)
    }
    if (opcode >= 0x8) {
      if (!fin) return this.fail(CloseCode.ProtocolError, 'control frames must not be fragmented (FIN = 0)')
      if (payloadLength > 125) return this.fail(CloseCode.ProtocolError, 'control frame payload exceeds 125 bytes')
      if (rsv1) return this.fail(CloseCode.ProtocolError, 'RSV1 must be 0 on control frames')
    } else if (opcode === Opcode.Continuation) {
      if (this.messageOpcode === 0) return this.fail(CloseCode.ProtocolError, 'continuation frame with no message in progress')
      if (rsv1) return this.fail(CloseCode.ProtocolError, 'RSV1 must be 0 on continuation frames')
    } else {
      if (this.messageOpcode !== 0) {
        return this.fail(CloseCode.ProtocolError, 'new data frame while a fragmented message is still open')
      }
      if (rsv1 && !this.allowRsv1) {
        return this.fail(CloseCode.ProtocolError, 'RSV1 must be 0: no extension was negotiated')
      }
    }
    if (masked !== this.expectMasked) {
      return this.fail(CloseCode.ProtocolError, masked
        ? 'frames from a server must not be masked'
        : 'frames from a client must be masked')
    }

    let cursor = offset + 2
    if (payloadLength === 126) {
      payloadLength = buf.readUInt16BE(cursor)
      cursor += 2
    } else if (payloadLength === 127) {
      const high = buf.readUInt32BE(cursor)
      if (high > 0x7fffffff) {
        return this.fail(CloseCode.ProtocolError, 'the most significant bit of a 64-bit payload length must be 0')
      }
      if (high > MAX_SAFE_HIGH_WORD) {
        return this.fail(CloseCode.MessageTooBig, 'payload length exceeds 2^53 - 1 bytes')
      }
      payloadLength = high * 0x100000000 + buf.readUInt32BE(cursor + 4)
      cursor += 8
    }
    if (opcode < 0x8 && this.messageLength + payloadLength > this.maxMessageSize) {
      return this.fail(CloseCode.MessageTooBig, `message exceeds the limit of ${this.maxMessageSize} bytes`)
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
    if (chunk.length - offset >= length) {
      const payload = chunk.subarray(offset, offset + length)
      if (this.expectMasked && length > 0) maskInto(payload, 0, payload, 0, length, this.maskKey!, 0)
      this.onFrame(payload)
      return offset + length
    }
    this.partialFilled = 0
    if (length <= EAGER_PAYLOAD_LIMIT) {
      this.partial = Buffer.allocUnsafe(length)
    } else {
      // A large frame is kept as the pieces that arrive, so memory follows what
      // the peer actually sent, not what its header claims.
      this.pieces = []
    }
    return this.fillPayload(chunk, offset)
  }

  private fillPayload (chunk: Buffer, offset: number): number {
    const length = this.payloadLength
    const filled = this.partialFilled
    const count = Math.min(length - filled, chunk.length - offset)
    const target = this.partial
    if (target !== null) {
      if (this.expectMasked) {
        maskInto(chunk, offset, target, filled, count, this.maskKey!, filled & 3)
      } else {
        chunk.copy(target, filled, offset, offset + count)
      }
    } else {
      // Unmasked as it arrives, while the bytes are still in cache: deferring that
      // to the end of a large frame adds its whole cost to the message's latency.
      const piece = chunk.subarray(offset, offset + count)
      if (this.expectMasked) maskInto(piece, 0, piece, 0, count, this.maskKey!, filled & 3)
      this.pieces!.push(piece)
    }
    this.partialFilled = filled + count
    if (this.partialFilled === length) {
      let payload: Buffer
      if (target !== null) {
        payload = target
        this.partial = null
      } else {
        payload = Buffer.concat(this.pieces!, length)
        this.pieces = null
      }
      this.onFrame(payload)
    }
    return offset + count
  }

  private onFrame (payload: Buffer): void {
    const opcode = this.opcode
    if (opcode >= 0x8) {
      this.onControlFrame(opcode, payload)
      return
    }
    if (opcode !== Opcode.Continuation) {
      this.messageOpcode = opcode
      this.messageCompressed = this.rsv1
      if (this.fin) {
        // Whole message in one frame: the common case, kept free of bookkeeping.
        this.messageOpcode = 0
        if (opcode === Opcode.Text && !this.rsv1 && !isUtf8(payload)) {
          this.fail(CloseCode.InvalidPayload, 'text message is not valid UTF-8')
          return
        }
        this.sink.onMessage(payload, opcode === Opcode.Binary, this.rsv1)
        return
      }
    }
    if (this.messageOpcode === Opcode.Text && !this.messageCompressed) {
      let validator = this.utf8
      if (validator === null) validator = this.utf8 = new Utf8Validator()
      if (!validator.push(payload) || (this.fin && !validator.complete)) {
        this.fail(CloseCode.InvalidPayload, 'text message is not valid UTF-8')
        return
      }
    }
    this.messageLength += payload.length
    if (this.fragments === null) this.fragments = []
    this.fragments.push(payload)
    if (!this.fin) return

    const data = this.fragments.length === 1
      ? this.fragments[0]
      : Buffer.concat(this.fragments, this.messageLength)
    const isBinary = this.messageOpcode === Opcode.Binary
    const compressed = this.messageCompressed
    this.fragments = null
    this.messageLength = 0
    this.messageOpcode = 0
    this.utf8?.reset()
    this.sink.onMessage(data, isBinary, compressed)
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
    let code: number = CloseCode.NoStatusReceived
    let reason = ''
    if (payload.length === 1) {
      this.fail(CloseCode.ProtocolError, 'close frame payload of 1 byte: a status code needs 2')
      return
    }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0)
      if (!isValidWireCloseCode(code)) {
        this.fail(CloseCode.ProtocolError, `invalid close code ${code}`)
        return
      }
      const reasonBytes = payload.subarray(2)
      if (!isUtf8(reasonBytes)) {
        this.fail(CloseCode.InvalidPayload, 'close reason is not valid UTF-8')
        return
      }
      reason = reasonBytes.toString('utf8')
    }
    // Nothing may follow a close frame (RFC 6455 §5.5.1).
    this.stop()
    this.sink.onClose(code, reason)
  }

  private fail (code: number, message: string): false {
    this.stop()
    this.sink.onProtocolError(new ProtocolError(code, message))
    return false
  }
}

/** Header size implied by the second header byte: 2, 4 or 10, plus 4 if masked. */
function frameHeaderLength (b1: number): number {
  const length7 = b1 & 0x7f
  return (length7 < 126 ? 2 : length7 === 126 ? 4 : 10) + ((b1 & 0x80) !== 0 ? 4 : 0)
}
