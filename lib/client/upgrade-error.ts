import { WebSocketError } from '../protocol/errors.js'

/**
 * A refused handshake: the HTTP response the server sent instead of 101.
 * Its message and name are those of the error `ws` and @fastify/websocket's
 * `injectWS` reject with (`Error: Unexpected server response: 401`), so
 * assertions written for them hold; `instanceof` and `code` tell it apart.
 */
export class WebSocketUpgradeError extends WebSocketError {
  readonly statusCode: number
  readonly headers: Record<string, string>
  readonly body: string

  constructor (statusCode: number, headers: Record<string, string>, body: string) {
    super('WS_ERR_UPGRADE_REFUSED', `Unexpected server response: ${statusCode}`)
    this.name = 'Error'
    this.statusCode = statusCode
    this.headers = headers
    this.body = body
  }

  /** The body parsed as JSON, or undefined if it is not JSON. */
  get json (): unknown {
    try {
      return JSON.parse(this.body)
    } catch {
      return undefined
    }
  }
}
