// Frames for the soak run's raw TCP peers, in the shape hostile.mjs uses, on
// the codec the tests and the load generator share (test/helpers/wire.cjs):
// an encoder that can also write the frames RFC 6455 forbids, and a reader of
// the server's frames that keeps control frames and skips data payloads.

import { closePayload, encodeFrame as encode, FrameReader as Reader, OPCODE } from '../../test/helpers/wire.cjs'

export { closePayload, OPCODE }

/**
 * One frame. `masked: false` writes an unmasked client frame (a protocol
 * error); `rsv` sets the reserved bits (1–7, RSV1 = 4); `length` overrides
 * the length field (with `payload` then being only what follows the header).
 */
export function encodeFrame (opcode, payload, { fin = true, rsv = 0, masked = true, length } = {}) {
  return encode(opcode, payload, { fin, rsv1: (rsv & 4) !== 0, rsv2: (rsv & 2) !== 0, rsv3: (rsv & 1) !== 0, mask: masked, length })
}

/**
 * Reads the server's frames from a byte stream. `onFrame({ opcode, fin,
 * length, payload })` gets every frame once it has fully arrived; `payload`
 * is set for control frames only. Data payloads are counted, not kept.
 */
export class FrameReader {
  #reader

  constructor (onFrame) {
    this.#reader = new Reader((opcode, fin, payload, length) => onFrame({ opcode, fin, length, payload }))
  }

  push (chunk) {
    this.#reader.push(chunk)
  }
}
