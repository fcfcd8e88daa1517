import { invalidResponse } from './client-handshake.js'
import { WEBSOCKET_VERSION, type HandshakeResult } from './handshake.js'
import { formatExtensions, parseExtensions, parseSubprotocols, type ExtensionOffer } from './header-lists.js'

/*
 * RFC 8441: a WebSocket on one HTTP/2 stream. The client sends an extended
 * CONNECT (`:method CONNECT`, `:protocol websocket`, with `:scheme`, `:path`
 * and `:authority`), the server answers `:status 200`, and from then on the
 * stream's DATA frames carry WebSocket frames exactly as a TCP connection
 * would. There is no Upgrade/Connection exchange and no key: HTTP/2 already
 * proves both sides speak it (§5), so Sec-WebSocket-Key and -Accept are not
 * used. The subprotocol and extension headers are RFC 6455's.
 */

/** The `:protocol` of a WebSocket extended CONNECT. */
export const EXTENDED_CONNECT_PROTOCOL = 'websocket'

/** An HTTP/2 request's headers, pseudo-headers included, as Node gives them. */
export type Http2RequestHeaders = Record<string, string | string[] | undefined>

/**
 * Checks an extended CONNECT against RFC 8441 §4–5 and RFC 6455's header
 * rules. Accepted: the offered subprotocols and extensions (`key` and
 * `accept` are empty: HTTP/2 has none). Refused: a status for an ordinary
 * HTTP/2 response.
 */
export function validateExtendedConnect (headers: Http2RequestHeaders): HandshakeResult {
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== EXTENDED_CONNECT_PROTOCOL) {
    return refuse(400, 'a WebSocket over HTTP/2 is opened by an extended CONNECT with :protocol "websocket" (RFC 8441 §4)')
  }
  for (const pseudo of [':scheme', ':path', ':authority'] as const) {
    const value = headers[pseudo]
    if (typeof value !== 'string' || value === '') return refuse(400, `an extended CONNECT must carry ${pseudo} (RFC 8441 §4)`)
  }
  if (headers['sec-websocket-version'] !== WEBSOCKET_VERSION) {
    // 426 is HTTP/1.1's Upgrade Required; HTTP/2 has no Upgrade, so it is a 400 naming the version.
    return refuse(400, 'unsupported Sec-WebSocket-Version: only 13 is supported', { 'sec-websocket-version': WEBSOCKET_VERSION })
  }
  const protocols = parseSubprotocols(single(headers['sec-websocket-protocol']))
  if (protocols === null) return refuse(400, 'Sec-WebSocket-Protocol must be a list of distinct tokens')
  let extensions: ExtensionOffer[]
  try {
    extensions = parseExtensions(single(headers['sec-websocket-extensions']))
  } catch (err) {
    return refuse(400, (err as Error).message)
  }
  return { ok: true, key: '', accept: '', protocols, extensions }
}

/** The 200 that accepts an extended CONNECT, with what was negotiated and the hooks' headers. */
export function extendedConnectResponseHeaders (
  protocol: string | undefined,
  extensions: ExtensionOffer[] | undefined,
  headers: Record<string, string | number | readonly string[]> = {}
): Record<string, string | number | readonly string[]> {
  const out: Record<string, string | number | readonly string[]> = { ...headers, ':status': 200 }
  if (protocol !== undefined) out['sec-websocket-protocol'] = protocol
  if (extensions !== undefined && extensions.length > 0) out['sec-websocket-extensions'] = formatExtensions(extensions)
  return out
}

export interface ExtendedConnectOptions {
  /** The request target: path and query. */
  path: string
  /** `:authority`, the host (and port) the client is talking to. */
  authority: string
  /** `:scheme`: 'https', or 'http' over cleartext HTTP/2. */
  scheme: 'http' | 'https'
  protocols?: string[]
  extensions?: ExtensionOffer[]
  /** More request headers (names lowercase, as HTTP/2 requires). */
  headers?: Record<string, string>
}

/** The client's extended CONNECT request headers. */
export function extendedConnectRequestHeaders (options: ExtendedConnectOptions): Record<string, string> {
  const out: Record<string, string> = {
    ...options.headers,
    ':method': 'CONNECT',
    ':protocol': EXTENDED_CONNECT_PROTOCOL,
    ':scheme': options.scheme,
    ':path': options.path,
    ':authority': options.authority,
    'sec-websocket-version': WEBSOCKET_VERSION
  }
  if (options.protocols !== undefined && options.protocols.length > 0) out['sec-websocket-protocol'] = options.protocols.join(', ')
  if (options.extensions !== undefined && options.extensions.length > 0) out['sec-websocket-extensions'] = formatExtensions(options.extensions)
  return out
}

/**
 * Checks the server's answer to an extended CONNECT: a 2xx (RFC 9110 §9.3.6:
 * any 2xx to a CONNECT opens the tunnel), and a subprotocol the client offered.
 * Extensions are for the caller to check against its own offer.
 */
export function validateExtendedConnectResponse (headers: Http2RequestHeaders, offeredProtocols: string[] = [], offeredExtensions = false): { protocol: string | undefined } {
  const status = Number(headers[':status'])
  if (!(status >= 200 && status < 300)) throw invalidResponse(`expected a 2xx status, got ${String(headers[':status'])}`)
  if (!offeredExtensions && headers['sec-websocket-extensions'] !== undefined) {
    throw invalidResponse('the server chose an extension the client did not offer')
  }
  const chosen = single(headers['sec-websocket-protocol'])
  if (chosen === undefined) return { protocol: undefined }
  const list = parseSubprotocols(chosen)
  if (list === null || list.length !== 1 || !offeredProtocols.includes(list[0]!)) {
    throw invalidResponse(`the server chose subprotocol ${JSON.stringify(chosen)}, which the client did not offer`)
  }
  return { protocol: list[0] }
}

// HTTP/2 gives a repeated header as an array; the list headers are comma-joined, as in HTTP/1.1.
function single (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value
}

function refuse (status: number, reason: string, headers: Record<string, string> = {}): HandshakeResult {
  return { ok: false, status, reason, headers }
}
