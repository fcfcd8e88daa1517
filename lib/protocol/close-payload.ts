import { isUtf8 } from 'node:buffer'
import { CloseCode, MAX_CLOSE_REASON_BYTES, isValidWireCloseCode } from './close-codes.js'
import { invalidArgument, protocolError, type ProtocolError } from './errors.js'

/**
 * A close frame's payload as a value (RFC 6455 §5.5.1): the status code
 * (1005 when the frame carried none) and the reason. Parsing, encoding and
 * truncating it live here, so the parser, the writer and the state machine
 * share one reading of the rules.
 */
export interface ClosePayload {
  code: number
  reason: string
}

/** Reads a received close payload; a payload that breaks the rules comes back as the ProtocolError to fail with. */
export function parseClosePayload (payload: Buffer): ClosePayload | ProtocolError {
  if (payload.length === 0) return { code: CloseCode.NoStatusReceived, reason: '' }
  if (payload.length === 1) return protocolError('WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH', 'close frame payload of 1 byte: a status code needs 2')
  const code = payload.readUInt16BE(0)
  if (!isValidWireCloseCode(code)) return protocolError('WS_ERR_INVALID_CLOSE_CODE', `invalid close code ${code}`)
  const reasonBytes = payload.subarray(2)
  if (!isUtf8(reasonBytes)) return protocolError('WS_ERR_INVALID_UTF8', 'close reason is not valid UTF-8')
  return { code, reason: reasonBytes.toString('utf8') }
}

/**
 * The payload of a close frame to send: empty without `code`. Throws a
 * RangeError (code `WS_ERR_INVALID_ARGUMENT`) for a code that may not be
 * sent, or a reason over 123 bytes.
 */
export function encodeClosePayload (code?: number, reason = ''): Buffer {
  if (code === undefined) {
    if (reason !== '') throw invalidArgument(new RangeError('a close reason needs a close code'))
    return EMPTY
  }
  if (!isValidWireCloseCode(code)) throw invalidArgument(new RangeError(`close code ${code} may not be sent`))
  const reasonLength = Buffer.byteLength(reason)
  if (reasonLength > MAX_CLOSE_REASON_BYTES) {
    throw invalidArgument(new RangeError(`close reason is ${reasonLength} bytes; at most ${MAX_CLOSE_REASON_BYTES} are allowed`))
  }
  const payload = Buffer.allocUnsafe(2 + reasonLength)
  payload.writeUInt16BE(code, 0)
  payload.write(reason, 2, 'utf8')
  return payload
}

/** Cuts a reason to the 123 bytes a close frame can carry, on a code point boundary. */
export function truncateReason (reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason
  let out = ''
  let bytes = 0
  for (const ch of reason) {
    const size = Buffer.byteLength(ch)
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break
    out += ch
    bytes += size
  }
  return out
}

const EMPTY = Buffer.alloc(0)
