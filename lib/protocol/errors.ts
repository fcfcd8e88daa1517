import { ERROR_CODES, type ClosingErrorCode, type ErrorCode } from './error-codes.js'

/**
 * An error the connection or the plugin raises about a peer, a limit or a
 * call it cannot carry out: `code` is stable (applications branch and alert
 * on it; error-codes.ts lists them all), `closeCode` is the close code the
 * connection ended with, when the error ended it.
 */
export class WebSocketError extends Error {
  readonly code: string
  readonly closeCode: number | undefined

  constructor (code: string, message: string, closeCode?: number, options?: ErrorOptions) {
    super(message, options)
    this.name = 'WebSocketError'
    this.code = code
    this.closeCode = closeCode
  }
}

/**
 * A violation by the peer (or an extension's failure) that fails the
 * connection. `closeCode` is what the close frame sent in response carries;
 * `message` names the rule; `code` is one of error-codes.ts, or an
 * extension's own.
 */
export class ProtocolError extends WebSocketError {
  declare readonly closeCode: number

  constructor (code: string, message: string, closeCode: number, options?: ErrorOptions) {
    // The order before codes was (closeCode, message): refuse it loudly rather than carry a number as the code.
    if (typeof code !== 'string' || !Number.isInteger(closeCode)) {
      throw invalidArgument(new TypeError('ProtocolError takes (code: string, message: string, closeCode: number)'))
    }
    super(code, message, closeCode, options)
    this.name = 'ProtocolError'
  }
}

/** The ProtocolError for `code`, with its close code from the table; `message` defaults to the code's meaning. */
export function protocolError (code: ClosingErrorCode, message?: string, options?: ErrorOptions): ProtocolError {
  const info = ERROR_CODES[code]
  return new ProtocolError(code, message ?? info.meaning, info.closeCode, options)
}

/** A WebSocketError for `code`, with no close code; `message` defaults to the code's meaning. */
export function webSocketError (code: ErrorCode, message?: string, closeCode?: number): WebSocketError {
  return new WebSocketError(code, message ?? ERROR_CODES[code].meaning, closeCode)
}

/**
 * A built-in error (TypeError, RangeError…) given a code from the table: its
 * class stays what callers test with `instanceof`, and it has a code like
 * every error of this library.
 */
export function withCode<E extends Error, C extends ErrorCode> (error: E, code: C): E & { code: C } {
  return Object.assign(error, { code })
}

/** An error about an argument (a RangeError for a close code that may not be sent, a SyntaxError for a header…), coded `WS_ERR_INVALID_ARGUMENT`. */
export function invalidArgument<E extends Error> (error: E): E & { code: 'WS_ERR_INVALID_ARGUMENT' } {
  return withCode(error, 'WS_ERR_INVALID_ARGUMENT')
}
