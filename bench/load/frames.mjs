// Client-side framing for the load generator. It is written independently of
// lib/ on purpose: the generator must not share bugs with the code it measures.

import { randomBytes } from 'node:crypto'

export const OPCODE_TEXT = 0x1
export const OPCODE_BINARY = 0x2
export const OPCODE_CLOSE = 0x8
export const OPCODE_PING = 0x9
export const OPCODE_PONG = 0xa

/**
 * One masked client frame. A load generator may reuse a frame (and so its
 * masking key) for every send: servers unmask each frame independently, and
 * pre-encoding keeps the generator's per-message cost near zero.
 */
export function encodeMaskedFrame (opcode, payload) {
  const length = payload.length
  const extended = length < 126 ? 0 : length < 65536 ? 2 : 8
  const headerSize = 2 + extended + 4
  const frame = Buffer.allocUnsafe(headerSize + length)
  frame[0] = 0x80 | opcode
  if (extended === 0) {
    frame[1] = 0x80 | length
  } else if (extended === 2) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  const key = randomBytes(4)
  key.copy(frame, headerSize - 4)
  for (let i = 0; i < length; i++) frame[headerSize + i] = payload[i] ^ key[i & 3]
  return frame
}

/** `count` copies of `frame` back to back, so a refill is a single write. */
export function repeatFrame (frame, count) {
  return Buffer.concat(new Array(count).fill(frame))
}

export function encodeClose (code = 1000) {
  const payload = Buffer.allocUnsafe(2)
  payload.writeUInt16BE(code, 0)
  return encodeMaskedFrame(OPCODE_CLOSE, payload)
}

function headerSizeOf (secondByte) {
  const length7 = secondByte & 0x7f
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (secondByte & 0x80 ? 4 : 0)
}

function unmask (data, key) {
  for (let i = 0; i < data.length; i++) data[i] ^= key[i & 3]
  return data
}

/**
 * Counts complete data messages in a byte stream by reading frame headers
 * only. Payload bytes are skipped, except for control frames (needed to answer
 * pings and notice closes) and for captured data messages, which are handed
 * to `onCapture` so the run can check the echo is byte-identical. Masked frames are accepted because the raw server echoes
 * the generator's own frames back unchanged.
 */
export class FrameReader {
  #capture
  #onCapture
  #onControl
  #scratch = Buffer.allocUnsafe(14)
  #scratchLength = 0
  #remaining = 0
  #inPayload = false
  #fin = false
  #opcode = 0
  #messageOpcode = 0
  #maskKey = null
  #frameParts = null
  #messageParts = []

  #captureAll

  /** `capture`: false, 'first' (the first data message) or 'all' messages. */
  constructor ({ capture = false, onCapture = () => {}, onControl = () => {} } = {}) {
    this.#capture = capture !== false
    this.#captureAll = capture === 'all'
    this.#onCapture = onCapture
    this.#onControl = onControl
  }

  /** Feeds one chunk; returns how many data messages it completed. */
  push (chunk) {
    let completed = 0
    let i = 0
    const end = chunk.length
    while (i < end) {
      if (this.#inPayload) {
        const take = Math.min(this.#remaining, end - i)
        if (this.#frameParts !== null) this.#frameParts.push(chunk.subarray(i, i + take))
        i += take
        this.#remaining -= take
        if (this.#remaining === 0) completed += this.#finishFrame()
        continue
      }
      // Fast path: the whole header is inside this chunk.
      if (this.#scratchLength === 0 && end - i >= 2) {
        const size = headerSizeOf(chunk[i + 1])
        if (end - i >= size) {
          this.#startFrame(chunk, i)
          i += size
          if (this.#remaining === 0) completed += this.#finishFrame()
          continue
        }
      }
      // A header split across reads is assembled byte by byte: it is rare.
      this.#scratch[this.#scratchLength++] = chunk[i++]
      if (this.#scratchLength >= 2 && this.#scratchLength === headerSizeOf(this.#scratch[1])) {
        this.#startFrame(this.#scratch, 0)
        this.#scratchLength = 0
        if (this.#remaining === 0) completed += this.#finishFrame()
      }
    }
    return completed
  }

  #startFrame (buffer, offset) {
    const first = buffer[offset]
    const second = buffer[offset + 1]
    this.#fin = (first & 0x80) !== 0
    this.#opcode = first & 0x0f
    let length = second & 0x7f
    let cursor = offset + 2
    if (length === 126) {
      length = buffer.readUInt16BE(cursor)
      cursor += 2
    } else if (length === 127) {
      length = buffer.readUInt32BE(cursor) * 0x100000000 + buffer.readUInt32BE(cursor + 4)
      cursor += 8
    }
    const control = this.#opcode >= 0x8
    if (this.#opcode !== 0 && !control) this.#messageOpcode = this.#opcode
    const collect = control || this.#capture
    // The key is copied only when the payload is kept: the scratch buffer is reused.
    this.#maskKey = collect && (second & 0x80) ? Buffer.from(buffer.subarray(cursor, cursor + 4)) : null
    this.#frameParts = collect ? [] : null
    this.#remaining = length
    this.#inPayload = length > 0
  }

  /** Returns 1 when the frame ended a data message. */
  #finishFrame () {
    this.#inPayload = false
    let payload = null
    if (this.#frameParts !== null) {
      // Each frame carries its own key, so unmasking happens per frame.
      payload = Buffer.concat(this.#frameParts)
      this.#frameParts = null
      if (this.#maskKey !== null) unmask(payload, this.#maskKey)
    }
    if (this.#opcode >= 0x8) {
      this.#onControl(this.#opcode, payload)
      return 0
    }
    if (payload !== null) this.#messageParts.push(payload)
    if (!this.#fin) return 0
    if (payload !== null) {
      this.#capture = this.#captureAll
      const message = Buffer.concat(this.#messageParts)
      this.#messageParts = []
      this.#onCapture(this.#messageOpcode, message)
    }
    return 1
  }
}
