/*
 * How a publish travels between instances: a 16-byte header, then the
 * payload's bytes exactly as published (no JSON, no base64, so binary
 * messages cost their size and text is not re-encoded):
 *
 *   byte 0       version (1)
 *   byte 1       flags: bit 0 set for a binary message, clear for text
 *   bytes 2–9    the publishing instance's id (random, per adapter)
 *   bytes 10–15  the publishing instance's sequence number, 48-bit big-endian
 *
 * The id lets an instance skip its own publishes (already delivered locally);
 * the sequence number lets a receiver drop a publish it already delivered
 * (a client resending a command after a reconnect) without coordination.
 */

export const ENVELOPE_VERSION = 1
export const HEADER_SIZE = 16
export const ORIGIN_SIZE = 8
const FLAG_BINARY = 1
// 2^48 publishes: at ten million a second, about a year before wrapping; the adapter starts a new id then.
export const MAX_SEQUENCE = 2 ** 48 - 1

export interface Envelope {
  binary: boolean
  /** The publisher's id, as a latin1 string: cheap to compare and to use as a Map key. */
  origin: string
  sequence: number
  payload: Buffer
}

/** One allocation: the header, then the payload (a string written straight in as UTF-8). */
export function encodeEnvelope (origin: Buffer, sequence: number, payload: string | Buffer, binary: boolean): Buffer {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
  const out = Buffer.allocUnsafe(HEADER_SIZE + size)
  out[0] = ENVELOPE_VERSION
  out[1] = binary ? FLAG_BINARY : 0
  origin.copy(out, 2)
  out.writeUIntBE(sequence, 10, 6)
  if (typeof payload === 'string') out.write(payload, HEADER_SIZE)
  else payload.copy(out, HEADER_SIZE)
  return out
}

/** The envelope in `message`, or null when it is not one of ours (another version, or another publisher on the channel). */
export function decodeEnvelope (message: Buffer): Envelope | null {
  if (message.length < HEADER_SIZE || message[0] !== ENVELOPE_VERSION) return null
  return {
    binary: (message[1]! & FLAG_BINARY) !== 0,
    origin: message.toString('latin1', 2, 2 + ORIGIN_SIZE),
    sequence: message.readUIntBE(10, 6),
    payload: message.subarray(HEADER_SIZE)
  }
}
