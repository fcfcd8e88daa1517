import { randomBytes } from 'node:crypto'
import { invalidArgument, webSocketError, type WebSocketError } from './errors.js'
import { computeAccept, WEBSOCKET_VERSION } from './handshake.js'
import { headerHasToken, isToken, parseSubprotocols } from './header-lists.js'

/** A fresh random `Sec-WebSocket-Key`. */
export function generateKey (): string {
  return randomBytes(16).toString('base64')
}

export interface ClientRequestOptions {
  path: string
  host: string
  key: string
  protocols?: string[]
  headers?: Record<string, string>
}

/** The client's opening handshake request, as text for the transport. */
export function buildClientRequest (options: ClientRequestOptions): string {
  if (/[\r\n\s]/.test(options.path)) throw invalidArgument(new SyntaxError('the request path must not contain whitespace or line breaks'))
  if (/[\r\n]/.test(options.host)) throw invalidArgument(new SyntaxError('the host must not contain line breaks'))
  let out = `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${options.key}\r\nSec-WebSocket-Version: ${WEBSOCKET_VERSION}\r\n`
  if (options.protocols !== undefined && options.protocols.length > 0) {
    for (const p of options.protocols) {
      if (!isToken(p)) throw invalidArgument(new SyntaxError(`invalid subprotocol name ${JSON.stringify(p)}`))
    }
    out += `Sec-WebSocket-Protocol: ${options.protocols.join(', ')}\r\n`
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw invalidArgument(new TypeError(`header ${JSON.stringify(name)} contains a line break`))
    out += `${name}: ${value}\r\n`
  }
  return out + '\r\n'
}

export interface ResponseHead {
  statusCode: number
  statusMessage: string
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>
  /** Bytes of the head, including the blank line. */
  length: number
}

const HEAD_END = Buffer.from('\r\n\r\n')

/**
 * Parses an HTTP/1.1 response head from the start of `data`. Returns null if
 * the blank line has not arrived yet; throws (`WS_ERR_INVALID_UPGRADE_RESPONSE`)
 * on a malformed head or one larger than `maxSize`.
 */
export function parseResponseHead (data: Buffer, maxSize = 16384): ResponseHead | null {
  const end = data.indexOf(HEAD_END)
  // Checked for a complete head too, so the verdict does not depend on how the bytes were chunked.
  if (end === -1 ? data.length > maxSize : end + HEAD_END.length > maxSize) {
    throw invalidResponse(`response head exceeds ${maxSize} bytes`)
  }
  if (end === -1) return null
  const lines = data.subarray(0, end).toString('latin1').split('\r\n')
  const status = lines[0]
  if (!status.startsWith('HTTP/1.')) throw invalidResponse(`not an HTTP/1.x response: ${JSON.stringify(status.slice(0, 40))}`)
  const firstSpace = status.indexOf(' ')
  const secondSpace = status.indexOf(' ', firstSpace + 1)
  const codeText = status.slice(firstSpace + 1, secondSpace === -1 ? undefined : secondSpace)
  // status-code is exactly three digits (RFC 9112 §4): Number() alone also takes "0x65" or "1e2".
  if (!/^[1-9][0-9][0-9]$/.test(codeText)) throw invalidResponse('malformed status line')
  const statusCode = Number(codeText)
  const headers: Record<string, string> = {}
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(':')
    if (colon <= 0) throw invalidResponse(`malformed header line: ${JSON.stringify(lines[i].slice(0, 40))}`)
    const name = lines[i].slice(0, colon).trim().toLowerCase()
    const value = lines[i].slice(colon + 1).trim()
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
  }
  return {
    statusCode,
    statusMessage: secondSpace === -1 ? '' : status.slice(secondSpace + 1),
    headers,
    length: end + HEAD_END.length
  }
}

/**
 * Checks the server's answer to our handshake (RFC 6455 §4.1, client side).
 * Returns the negotiated subprotocol, or throws (`WS_ERR_INVALID_UPGRADE_RESPONSE`) naming the failed rule.
 */
export function validateServerResponse (head: ResponseHead, key: string, offeredProtocols: string[] = [], offeredExtensions = false): { protocol: string | undefined } {
  if (head.statusCode !== 101) throw invalidResponse(`expected status 101, got ${head.statusCode}`)
  if (!headerHasToken(head.headers.upgrade, 'websocket')) throw invalidResponse('response Upgrade header is not "websocket"')
  if (!headerHasToken(head.headers.connection, 'upgrade')) throw invalidResponse('response Connection header does not contain "Upgrade"')
  if (head.headers['sec-websocket-accept'] !== computeAccept(key)) throw invalidResponse('Sec-WebSocket-Accept does not match the key')
  // With extensions offered, the caller checks the server's choice against its offer.
  if (!offeredExtensions && head.headers['sec-websocket-extensions'] !== undefined) {
    throw invalidResponse('the server chose an extension the client did not offer')
  }
  const chosen = head.headers['sec-websocket-protocol']
  if (chosen === undefined) return { protocol: undefined }
  const list = parseSubprotocols(chosen)
  if (list === null || list.length !== 1 || !offeredProtocols.includes(list[0])) {
    throw invalidResponse(`the server chose subprotocol ${JSON.stringify(chosen)}, which the client did not offer`)
  }
  return { protocol: list[0] }
}

/** What the client-side checks throw: the server's answer is not a valid WebSocket upgrade. */
export function invalidResponse (message: string): WebSocketError {
  return webSocketError('WS_ERR_INVALID_UPGRADE_RESPONSE', message)
}
