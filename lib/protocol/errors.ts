/**
 * A violation by the peer that ends the connection. `closeCode` is what the
 * close frame sent in response carries; `message` names the rule; `code`,
 * where set, is a stable identifier that applications can branch on.
 */
export class ProtocolError extends Error {
  readonly closeCode: number
  readonly code: string | undefined

  constructor (closeCode: number, message: string, code?: string) {
    super(message)
    this.name = 'ProtocolError'
    this.closeCode = closeCode
    this.code = code
  }
}
