/**
 * An error the connection or the plugin raises about a peer or a limit:
 * `code` is stable (applications branch and alert on it), `closeCode` is the
 * close code the connection ended with, when it ended.
 */
export class WebSocketError extends Error {
  readonly code: string
  readonly closeCode: number | undefined

  constructor (code: string, message: string, closeCode?: number) {
    super(message)
    this.name = 'WebSocketError'
    this.code = code
    this.closeCode = closeCode
  }
}
