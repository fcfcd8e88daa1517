import { randomFillSync } from 'node:crypto'
import { encodeClosePayload } from './close-payload.js'
import { invalidArgument } from './errors.js'
import { maskInto } from './mask.js'
import { Opcode } from './opcodes.js'

// Payloads up to this size are copied behind their header into one buffer:
// one small allocation is cheaper than a second write for the I/O layer.
export const INLINE_PAYLOAD_LIMIT = 1024

// Mask keys are cut from a block of random bytes refilled in bulk, so a
// client frame costs no system call of its own.
const RANDOM_POOL_SIZE = 8192
let randomPool: Buffer | null = null
let randomOffset = RANDOM_POOL_SIZE

function nextMaskKey (): Buffer {
  if (randomOffset === RANDOM_POOL_SIZE) {
    if (randomPool === null) randomPool = Buffer.allocUnsafe(RANDOM_POOL_SIZE)
    randomFillSync(randomPool)
    randomOffset = 0
  }
  const key = randomPool!.subarray(randomOffset, randomOffset + 4)
  randomOffset += 4
  return key
}

export interface FrameOptions {
  /** Last frame of its message. Default true. */
  fin?: boolean
  /** Set RSV1 (for a negotiated extension's transformed message). */
  rsv1?: boolean
  /** Mask the payload with a fresh random key: required for frames a client sends. */
  mask?: boolean
}

function headerSize (payloadLength: number, mask: boolean): number {
  return (payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10) + (mask ? 4 : 0)
}

/**
 * Writes a frame header for `payloadLength` bytes at `target[offset]` and
 * returns the offset just past it. If `maskKey` is given it is written too.
 */
function writeHeader (
  target: Buffer, offset: number, opcode: number, payloadLength: number,
  fin: boolean, rsv1: boolean, maskKey: Uint8Array | null
): number {
  target[offset] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode
  const maskBit = maskKey !== null ? 0x80 : 0
  if (payloadLength < 126) {
    target[offset + 1] = maskBit | payloadLength
    offset += 2
  } else if (payloadLength < 65536) {
    target[offset + 1] = maskBit | 126
    target.writeUInt16BE(payloadLength, offset + 2)
    offset += 4
  } else {
    target[offset + 1] = maskBit | 127
    target.writeUInt32BE(Math.floor(payloadLength / 0x100000000), offset + 2)
    target.writeUInt32BE(payloadLength >>> 0, offset + 6)
    offset += 10
  }
  if (maskKey !== null) {
    target[offset] = maskKey[0]
    target[offset + 1] = maskKey[1]
    target[offset + 2] = maskKey[2]
    target[offset + 3] = maskKey[3]
    offset += 4
  }
  return offset
}

/**
 * Encodes one frame. Returns the bytes to write, in order: either a single
 * buffer, or a header followed by `payload` itself (never copied) when the
 * payload is large and needs no masking.
 */
export function encodeFrame (opcode: number, payload: Uint8Array | string, options?: FrameOptions): Buffer[] {
  const fin = options?.fin ?? true
  const rsv1 = options?.rsv1 ?? false
  const mask = options?.mask ?? false

  if (typeof payload === 'string') {
    const length = Buffer.byteLength(payload)
    const out = Buffer.allocUnsafe(headerSize(length, mask) + length)
    const key = mask ? nextMaskKey() : null
    const start = writeHeader(out, 0, opcode, length, fin, rsv1, key)
    out.write(payload, start, 'utf8')
    if (key !== null) maskInto(out, start, out, start, length, key)
    return [out]
  }

  const length = payload.byteLength
  if (mask) {
    const key = nextMaskKey()
    const out = Buffer.allocUnsafe(headerSize(length, true) + length)
    const start = writeHeader(out, 0, opcode, length, fin, rsv1, key)
    maskInto(payload, 0, out, start, length, key)
    return [out]
  }
  if (length <= INLINE_PAYLOAD_LIMIT) {
    const out = Buffer.allocUnsafe(headerSize(length, false) + length)
    const start = writeHeader(out, 0, opcode, length, fin, rsv1, null)
    out.set(payload, start)
    return [out]
  }
  const header = Buffer.allocUnsafe(headerSize(length, false))
  writeHeader(header, 0, opcode, length, fin, rsv1, null)
  return [header, toBuffer(payload)]
}

/** Bytes an unmasked frame of `payloadLength` takes: its header plus its payload. */
export function unmaskedFrameSize (payloadLength: number): number {
  return headerSize(payloadLength, false) + payloadLength
}

/**
 * Encodes a final, unmasked data frame of `byteLength` payload bytes into
 * `target` at `offset`, which must have `unmaskedFrameSize(byteLength)` bytes
 * of room, and returns the offset past it. For an I/O layer that gathers a
 * batch of small frames in a buffer of its own instead of one buffer each.
 */
export function encodeFrameInto (target: Buffer, offset: number, opcode: number, payload: Buffer | string, byteLength: number): number {
  const start = writeHeader(target, offset, opcode, byteLength, true, false, null)
  if (typeof payload === 'string') target.write(payload, start, byteLength, 'utf8')
  // set(), not copy(): for the small payloads this serves, the typed-array copy skips Buffer#copy's argument handling.
  else target.set(payload, start)
  return start + byteLength
}

/**
 * Encodes a whole message as one unmasked frame in a single buffer, so one
 * encoding can be queued on many server connections (broadcast, and
 * `encodeBroadcastFrame` in the package entry). Strings become text frames,
 * bytes binary ones unless `binary` says otherwise. Not for a client's
 * frames: each must be masked with its own key.
 */
export function encodeMessageFrame (data: string | Uint8Array | ArrayBuffer | ArrayBufferView, binary?: boolean): Buffer {
  const payload = typeof data === 'string' ? data : toBuffer(data)
  const frames = encodeFrame((binary ?? typeof data !== 'string') ? Opcode.Binary : Opcode.Text, payload)
  return frames.length === 1 ? frames[0] : Buffer.concat(frames)
}

/** Views any byte container as a Buffer without copying. */
export function toBuffer (data: Uint8Array | ArrayBuffer | ArrayBufferView): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (data instanceof ArrayBuffer) return Buffer.from(data)
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

/**
 * Encodes a close frame. Without `code` the frame has an empty payload.
 * Throws a RangeError (code `WS_ERR_INVALID_ARGUMENT`) for a code that may not be sent, or a reason over 123 bytes.
 */
export function encodeCloseFrame (code?: number, reason = '', mask = false): Buffer[] {
  return encodeFrame(Opcode.Close, encodeClosePayload(code, reason), { mask })
}

/** Encodes a ping or pong; throws a RangeError (code `WS_ERR_INVALID_ARGUMENT`) if the payload exceeds 125 bytes. */
export function encodeControlFrame (opcode: typeof Opcode.Ping | typeof Opcode.Pong, payload: Uint8Array | string, mask = false): Buffer[] {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
  if (length > 125) throw invalidArgument(new RangeError(`control frame payload is ${length} bytes; at most 125 are allowed`))
  return encodeFrame(opcode, payload, { mask })
}

