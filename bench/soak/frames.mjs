// Frames for the soak run's raw TCP peers: an encoder that can also write the
// frames RFC 6455 forbids, and a reader of the server's frames that keeps
// control frames and skips data payloads (the peers never need them).

import { randomBytes } from 'node:crypto'

export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa }

/**
 * One frame. `masked: false` writes an unmasked client frame (a protocol
 * error); `rsv` sets the reserved bits (1–7); `length` overrides the length
 * field (with `payload` then being only what follows the header).
 */
export function encodeFrame (opcode, payload = Buffer.alloc(0), { fin = true, rsv = 0, masked = true, length } = {}) {
  const size = length ?? payload.length
  const lengthBytes = size < 126 ? 0 : size < 65536 ? 2 : 8
  const header = Buffer.alloc(2 + lengthBytes + (masked ? 4 : 0))
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)
  header[1] = (masked ? 0x80 : 0) | (lengthBytes === 0 ? size : lengthBytes === 2 ? 126 : 127)
  if (lengthBytes === 2) header.writeUInt16BE(size, 2)
  else if (lengthBytes === 8) header.writeBigUInt64BE(BigInt(size), 2)
  if (!masked) return Buffer.concat([header, payload])
  const key = randomBytes(4)
  key.copy(header, 2 + lengthBytes)
  const body = Buffer.allocUnsafe(payload.length)
  for (let i = 0; i < payload.length; i++) body[i] = payload[i] ^ key[i & 3]
  return Buffer.concat([header, body])
}

/** A close frame's payload: the code, then the reason's bytes. */
export function closePayload (code, reason = Buffer.alloc(0)) {
  const payload = Buffer.alloc(2 + reason.length)
  payload.writeUInt16BE(code, 0)
  Buffer.from(reason).copy(payload, 2)
  return payload
}

/**
 * Reads the server's frames from a byte stream. `onFrame({ opcode, fin,
 * length, payload })` gets every frame; `payload` is set for control frames
 * only. Data payloads are counted, not kept.
 */
export class FrameReader {
  #pending = null
  #skip = 0
  #onFrame

  constructor (onFrame) {
    this.#onFrame = onFrame
  }

  push (chunk) {
    if (this.#skip > 0) {
      const skipped = Math.min(this.#skip, chunk.length)
      this.#skip -= skipped
      chunk = chunk.subarray(skipped)
      if (chunk.length === 0) return
    }
    let buffer = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk])
    this.#pending = null
    while (buffer.length >= 2) {
      const opcode = buffer[0] & 0x0f
      const fin = (buffer[0] & 0x80) !== 0
      const masked = (buffer[1] & 0x80) !== 0
      let length = buffer[1] & 0x7f
      let offset = 2
      if (length === 126) {
        if (buffer.length < 4) break
        length = buffer.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (buffer.length < 10) break
        length = Number(buffer.readBigUInt64BE(2))
        offset = 10
      }
      if (masked) offset += 4 // a server must not mask; read past the key anyway
      if (buffer.length < offset) break
      const control = opcode >= 0x8
      if (control) {
        if (buffer.length < offset + length) break
        this.#onFrame({ opcode, fin, length, payload: buffer.subarray(offset, offset + length) })
        buffer = buffer.subarray(offset + length)
        continue
      }
      this.#onFrame({ opcode, fin, length, payload: null })
      const available = buffer.length - offset
      if (available < length) {
        this.#skip = length - available
        return
      }
      buffer = buffer.subarray(offset + length)
    }
    // Copy: a view would keep the whole socket chunk alive.
    if (buffer.length > 0) this.#pending = Buffer.from(buffer)
  }
}
