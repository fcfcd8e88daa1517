// Counting the server's messages for the load generator, on the frame reader
// the tests use (test/helpers/wire.cjs): data payloads are skipped unless
// captured, so counting costs next to nothing per message.

import { FrameReader, OPCODE } from '../../test/helpers/wire.cjs'

/**
 * Counts complete data messages in a byte stream. Control frames go to
 * `onControl(opcode, payload)` (to answer pings and notice closes); captured
 * data messages, reassembled, to `onCapture(opcode, bytes)` so the run can
 * check the echo is byte-identical. Masked frames are read too: the raw
 * server echoes the generator's own frames back unchanged.
 */
export class MessageReader {
  #reader
  #captureAll
  #completed = 0
  #messageOpcode = 0
  #parts = []

  /** `capture`: false, 'first' (the first data message) or 'all' messages. */
  constructor ({ capture = false, onCapture = () => {}, onControl = () => {} } = {}) {
    this.#captureAll = capture === 'all'
    this.#reader = new FrameReader((opcode, fin, payload) => {
      if (opcode >= 0x8) {
        onControl(opcode, payload)
        return
      }
      if (opcode !== OPCODE.continuation) this.#messageOpcode = opcode
      if (payload !== null) this.#parts.push(payload)
      if (!fin) return
      this.#completed++
      if (payload === null) return
      // The first capture ends here unless every message is captured; a
      // message already being kept is kept to its end.
      this.#reader.keepData = this.#captureAll
      const message = this.#parts.length === 1 ? this.#parts[0] : Buffer.concat(this.#parts)
      this.#parts = []
      onCapture(this.#messageOpcode, message)
    }, { keepData: capture !== false })
  }

  /**
   * Captures from the next message on as `capture` says (the constructor's
   * values). Called from `onCapture`, it applies to the message after the
   * one just captured: a Socket.IO connection captures its handshake
   * messages, then only what the job checks.
   */
  recapture (capture) {
    this.#captureAll = capture === 'all'
    this.#reader.keepData = capture !== false
  }

  /** Feeds one chunk; returns how many data messages it completed. */
  push (chunk) {
    this.#completed = 0
    this.#reader.push(chunk)
    return this.#completed
  }
}
