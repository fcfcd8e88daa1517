/**
 * A violation by the peer that ends the connection. `closeCode` is what the
 * close frame sent in response carries; `message` names the rule.
 */
export class ProtocolError extends Error {
  readonly closeCode: number

  constructor (closeCode: number, message: string) {
    super(message)
    this.name = 'ProtocolError'
    this.closeCode = closeCode
  }
}
