'use strict'
// The WebSocket wire format (RFC 6455 §5), for the tests and the bench alike:
// frames built and read byte by byte, written independently of lib/ on
// purpose, so that neither shares a bug with the code it checks or measures.
// It can also write what the RFC forbids (unmasked client frames, reserved
// bits, a length field that lies), for the tests of refusals.
//
// Plain CommonJS, so that both load it as it is: the TypeScript tests (CommonJS
// under tsx) and the bench (ESM run by node). Types: wire.d.cts.

const { randomBytes } = require('node:crypto')

const OPCODE = Object.freeze({ continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa })

const EMPTY = Buffer.alloc(0)

function toBuffer (data) {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (Buffer.isBuffer(data)) return data
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  return Buffer.from(data)
}

/**
 * One frame. `mask`: true (the default, as a client sends) masks with a
 * random key, a 4-byte key masks with that key, false writes the frame
 * unmasked (as a server sends). `lengthBits` forces the 7-, 16- or 64-bit
 * length form; `length` writes that value in the length field whatever the
 * payload (a frame that announces more than follows).
 */
function encodeFrame (opcode, payload = EMPTY, options = {}) {
  const { fin = true, rsv1 = false, rsv2 = false, rsv3 = false, mask = true, lengthBits, length } = options
  const data = toBuffer(payload)
  const size = length ?? data.length
  const bits = lengthBits ?? (size < 126 ? 7 : size < 65536 ? 16 : 64)
  const key = mask === true ? randomBytes(4) : mask === false ? null : mask
  const start = 2 + (bits === 7 ? 0 : bits === 16 ? 2 : 8)
  const headerSize = start + (key === null ? 0 : 4)
  const out = Buffer.allocUnsafe(headerSize + data.length)
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (rsv2 ? 0x20 : 0) | (rsv3 ? 0x10 : 0) | (opcode & 0x0f)
  const maskBit = key === null ? 0 : 0x80
  if (bits === 7) {
    out[1] = maskBit | size
  } else if (bits === 16) {
    out[1] = maskBit | 126
    out.writeUInt16BE(size, 2)
  } else {
    out[1] = maskBit | 127
    out.writeBigUInt64BE(BigInt(size), 2)
  }
  if (key === null) {
    data.copy(out, headerSize)
  } else {
    for (let i = 0; i < 4; i++) out[start + i] = key[i]
    for (let i = 0; i < data.length; i++) out[headerSize + i] = data[i] ^ key[i & 3]
  }
  return out
}

/** `data` XORed with `key` (a new buffer), starting at byte `phase` of the key. */
function applyMask (data, key, phase = 0) {
  const out = Buffer.allocUnsafe(data.length)
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(phase + i) & 3]
  return out
}

/** A close frame's payload: the code, then the reason (text or bytes, not checked). */
function closePayload (code, reason = EMPTY) {
  const bytes = toBuffer(reason)
  const out = Buffer.allocUnsafe(2 + bytes.length)
  out.writeUInt16BE(code, 0)
  bytes.copy(out, 2)
  return out
}

/** The code and reason of a close frame; 1005 when it has no payload. */
function parseClose (frame) {
  if (frame.opcode !== OPCODE.close) throw new Error(`expected a close frame, got opcode ${frame.opcode}`)
  if (frame.payload.length < 2) return { code: 1005, reason: '' }
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') }
}

/** Bytes in the header whose second byte is `second`: 2, the extended length, the key. */
function headerSizeOf (second) {
  const length7 = second & 0x7f
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + ((second & 0x80) !== 0 ? 4 : 0)
}

/** The payload length in the header at `offset` (whole, see headerSizeOf). */
function lengthAt (data, offset) {
  const length7 = data[offset + 1] & 0x7f
  if (length7 === 126) return data.readUInt16BE(offset + 2)
  if (length7 === 127) return data.readUInt32BE(offset + 2) * 0x100000000 + data.readUInt32BE(offset + 6)
  return length7
}

/**
 * The frame at `offset` in `data`, or null if it is not complete yet. Checks
 * nothing: it reads whatever the bits say. The payload is unmasked (a copy).
 */
function decodeFrame (data, offset = 0) {
  if (data.length - offset < 2) return null
  const header = headerSizeOf(data[offset + 1])
  if (data.length - offset < header) return null
  const length = lengthAt(data, offset)
  if (data.length - offset < header + length) return null
  const b0 = data[offset]
  const masked = (data[offset + 1] & 0x80) !== 0
  const key = masked ? Buffer.from(data.subarray(offset + header - 4, offset + header)) : null
  const raw = data.subarray(offset + header, offset + header + length)
  return {
    frame: {
      fin: (b0 & 0x80) !== 0,
      rsv1: (b0 & 0x40) !== 0,
      rsv2: (b0 & 0x20) !== 0,
      rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f,
      masked,
      key,
      payload: key === null ? Buffer.from(raw) : applyMask(raw, key)
    },
    size: header + length
  }
}

/** Every frame in `data`; throws if it ends inside one. */
function decodeFrames (data) {
  const out = []
  for (let offset = 0; offset < data.length;) {
    const decoded = decodeFrame(data, offset)
    if (decoded === null) throw new Error(`truncated frame at byte ${offset} of ${data.length}`)
    out.push(decoded.frame)
    offset += decoded.size
  }
  return out
}

/**
 * Reads frames from a stream of chunks, cheaply enough for a load generator:
 * a payload is kept (and unmasked) only for control frames, and for data
 * frames while `keepData` is true; otherwise its bytes are skipped, never
 * copied. `onFrame(opcode, fin, payload, length)` is called once per frame,
 * when its last byte has arrived; `payload` is null for a skipped one.
 */
class FrameReader {
  constructor (onFrame, { keepData = false } = {}) {
    this.keepData = keepData
    this.onFrame = onFrame
    this.header = Buffer.allocUnsafe(14)
    this.headerLength = 0
    this.remaining = 0
    this.inPayload = false
    this.fin = false
    this.opcode = 0
    this.length = 0
    this.key = null
    this.parts = null
  }

  push (chunk) {
    const end = chunk.length
    let i = 0
    while (i < end) {
      if (this.inPayload) {
        const take = Math.min(this.remaining, end - i)
        if (this.parts !== null) this.parts.push(chunk.subarray(i, i + take))
        i += take
        this.remaining -= take
        if (this.remaining === 0) this.finishFrame()
        continue
      }
      // The usual case: the whole header is in this chunk.
      if (this.headerLength === 0 && end - i >= 2) {
        const size = headerSizeOf(chunk[i + 1])
        if (end - i >= size) {
          this.startFrame(chunk, i, size)
          i += size
          continue
        }
      }
      // A header split across chunks is gathered byte by byte: it is rare.
      this.header[this.headerLength++] = chunk[i++]
      if (this.headerLength >= 2 && this.headerLength === headerSizeOf(this.header[1])) {
        this.startFrame(this.header, 0, this.headerLength)
        this.headerLength = 0
      }
    }
  }

  startFrame (data, offset, size) {
    this.fin = (data[offset] & 0x80) !== 0
    this.opcode = data[offset] & 0x0f
    this.length = lengthAt(data, offset)
    const keep = this.opcode >= 0x8 || this.keepData
    // Copied: the header may sit in the reused scratch buffer.
    this.key = keep && (data[offset + 1] & 0x80) !== 0 ? Buffer.from(data.subarray(offset + size - 4, offset + size)) : null
    this.parts = keep ? [] : null
    this.remaining = this.length
    this.inPayload = this.length > 0
    if (!this.inPayload) this.finishFrame()
  }

  finishFrame () {
    this.inPayload = false
    let payload = null
    if (this.parts !== null) {
      payload = this.parts.length === 1 ? Buffer.from(this.parts[0]) : Buffer.concat(this.parts)
      this.parts = null
      if (this.key !== null) for (let i = 0; i < payload.length; i++) payload[i] ^= this.key[i & 3]
    }
    this.onFrame(this.opcode, this.fin, payload, this.length)
  }
}

module.exports = { OPCODE, encodeFrame, applyMask, closePayload, parseClose, decodeFrame, decodeFrames, FrameReader }
