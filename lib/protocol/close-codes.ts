/** Close status codes (RFC 6455 §7.4.1 and the IANA registry). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Reserved: never sent on the wire; reported when a close frame had no status. */
  NoStatusReceived: 1005,
  /** Reserved: never sent on the wire; reported when the connection dropped without a close frame. */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  /** Reserved: never sent on the wire. */
  TlsHandshake: 1015
} as const

/** Largest close reason in bytes: 125-byte control payload minus the 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = 123

/**
 * Whether `code` may appear in a close frame on the wire: 1000–1003,
 * 1007–1014 (registered), 3000–4999 (libraries/applications).
 * 1004 is reserved, 1005/1006/1015 must never be sent, 1016–2999 are unassigned.
 */
export function isValidWireCloseCode (code: number): boolean {
  // Non-integers would pass the ranges and then be truncated when written.
  return Number.isInteger(code) && (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  )
}
