import * as crypto from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { invalidArgument, webSocketError } from './errors.js'
import { type ExtensionOffer, formatExtensions, headerHasToken, parseExtensions, parseSubprotocols } from './header-lists.js'

/** RFC 6455 §1.3: appended to the client's key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
export const WEBSOCKET_VERSION = '13'

/** Node's one-shot digest, `crypto.hash` (Node 20.12 and 21.7 on). */
export type OneShotHash = (algorithm: string, data: string, outputEncoding: 'base64') => string

/**
 * Makes the `Sec-WebSocket-Accept` function: with `hash`, one call per
 * handshake, without the Hash object (and its update/digest round trips)
 * that `createHash` makes; on a runtime without it, `createHash`.
 */
export function acceptKeyHasher (hash: OneShotHash | undefined): (key: string) => string {
  if (typeof hash === 'function') return (key) => hash('sha1', key + WEBSOCKET_GUID, 'base64')
  return (key) => crypto.createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64')
}

/** `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`. */
export const computeAccept: (key: string) => string = acceptKeyHasher((crypto as { hash?: OneShotHash }).hash)

/** The parts of an HTTP request the handshake looks at. */
export interface HandshakeRequest {
  method?: string
  httpVersion?: string
  headers: IncomingHttpHeaders
}

export interface HandshakeAccepted {
  ok: true
  key: string
  accept: string
  /** Subprotocols the client offered, in its order of preference. */
  protocols: string[]
  /** Extensions the client offered, in its order. */
  extensions: ExtensionOffer[]
}

export interface HandshakeRefused {
  ok: false
  /** HTTP status to answer with: 400, 405 or 426. */
  status: number
  /** Which rule failed, for the response body and logs. */
  reason: string
  /** Headers the refusal must carry (`Sec-WebSocket-Version` on 426, `Allow` on 405). */
  headers: Record<string, string>
}

export type HandshakeResult = HandshakeAccepted | HandshakeRefused

function refuse (status: number, reason: string, headers: Record<string, string> = {}): HandshakeRefused {
  return { ok: false, status, reason, headers }
}

function isHttp11OrLater (version: string | undefined): boolean {
  if (version === undefined) return false
  const dot = version.indexOf('.')
  const major = Number(dot === -1 ? version : version.slice(0, dot))
  const minor = dot === -1 ? 0 : Number(version.slice(dot + 1))
  return major > 1 || (major === 1 && minor >= 1)
}

/** Whether the request announces a body: any Transfer-Encoding, or a Content-Length other than 0. */
export function hasBody (headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true
  const length = headers['content-length']
  return length !== undefined && !/^0+$/.test(length)
}

const BASE64_CHARS = new Uint8Array(128)
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') BASE64_CHARS[ch.charCodeAt(0)] = 1

/** A base64 string of exactly 16 bytes: 22 alphabet characters and "==". */
export function isValidKey (key: string | undefined): key is string {
  if (typeof key !== 'string' || key.length !== 24) return false
  if (key.charCodeAt(22) !== 0x3d || key.charCodeAt(23) !== 0x3d) return false
  for (let i = 0; i < 22; i++) {
    const c = key.charCodeAt(i)
    if (c >= 128 || BASE64_CHARS[c] !== 1) return false
  }
  return true
}

/**
 * Checks a client's opening handshake against RFC 6455 §4.2.1, in the order
 * the rules are listed there, and reports the first that fails.
 */
export function validateHandshake (req: HandshakeRequest): HandshakeResult {
  const headers = req.headers
  if (req.method !== 'GET') {
    return refuse(405, `the opening handshake must be a GET request, not ${req.method ?? 'none'}`, { Allow: 'GET' })
  }
  if (hasBody(headers)) {
    // RFC 9110 §9.3.1 gives content in a GET no meaning, and a server that switches
    // protocols after the head would read the body as frames; Node, where it can,
    // parses such a request as plain HTTP instead of handing it over.
    return refuse(400, 'the opening handshake must not have a body (Content-Length above 0 or Transfer-Encoding)')
  }
  if (!isHttp11OrLater(req.httpVersion)) {
    return refuse(400, `the opening handshake needs HTTP/1.1 or later, not HTTP/${req.httpVersion ?? '?'}`)
  }
  if (headers.host === undefined || headers.host === '') {
    return refuse(400, 'missing Host header')
  }
  if (!headerHasToken(headers.upgrade, 'websocket')) {
    return refuse(400, 'the Upgrade header must contain "websocket"')
  }
  if (!headerHasToken(headers.connection, 'upgrade')) {
    return refuse(400, 'the Connection header must contain "Upgrade"')
  }
  const key = headers['sec-websocket-key']
  if (!isValidKey(key)) {
    return refuse(400, 'Sec-WebSocket-Key must be the base64 encoding of 16 bytes')
  }
  if (headers['sec-websocket-version'] !== WEBSOCKET_VERSION) {
    return refuse(426, 'unsupported Sec-WebSocket-Version: only 13 is supported', { 'Sec-WebSocket-Version': WEBSOCKET_VERSION })
  }
  const protocols = parseSubprotocols(headers['sec-websocket-protocol'])
  if (protocols === null) {
    return refuse(400, 'Sec-WebSocket-Protocol must be a list of distinct tokens')
  }
  let extensions: ExtensionOffer[]
  try {
    extensions = parseExtensions(headers['sec-websocket-extensions'])
  } catch (err) {
    return refuse(400, (err as Error).message)
  }
  return { ok: true, key, accept: computeAccept(key), protocols, extensions }
}

/**
 * Chooses the subprotocol: with a list, the first of the server's protocols
 * that the client offered (server preference); with a function, whatever it
 * returns, which must be one of the offered protocols. Returns undefined for
 * none (the response then carries no `Sec-WebSocket-Protocol`).
 */
export type SubprotocolSelector = readonly string[] | ((offered: string[]) => string | undefined | null | false)

export function selectSubprotocol (offered: string[], selector: SubprotocolSelector | undefined): string | undefined {
  if (selector === undefined || offered.length === 0) return undefined
  if (typeof selector === 'function') {
    const chosen = selector(offered)
    if (chosen === undefined || chosen === null || chosen === false) return undefined
    if (!offered.includes(chosen)) {
      throw webSocketError('WS_ERR_INVALID_SUBPROTOCOL', `subprotocol selector returned "${chosen}", which the client did not offer`)
    }
    return chosen
  }
  return selector.find((name) => offered.includes(name))
}

export interface UpgradeResponseOptions {
  accept: string
  protocol?: string
  extensions?: ExtensionOffer[]
  /** Additional headers, e.g. from `onRequest` hooks. */
  headers?: Record<string, string | number | readonly string[]>
}

const FORBIDDEN_HEADER_CHARS = /[\r\n]/

/** The `101 Switching Protocols` response, as bytes ready for the socket. */
export function buildUpgradeResponse (options: UpgradeResponseOptions): string {
  let out = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${options.accept}\r\n`
  if (options.protocol !== undefined) out += `Sec-WebSocket-Protocol: ${options.protocol}\r\n`
  if (options.extensions !== undefined && options.extensions.length > 0) {
    out += `Sec-WebSocket-Extensions: ${formatExtensions(options.extensions)}\r\n`
  }
  if (options.headers !== undefined) {
    for (const name of Object.keys(options.headers)) {
      const value = options.headers[name]
      for (const v of Array.isArray(value) ? value : [value]) {
        const text = String(v)
        if (FORBIDDEN_HEADER_CHARS.test(name) || FORBIDDEN_HEADER_CHARS.test(text)) {
          throw invalidArgument(new TypeError(`header ${JSON.stringify(name)} contains a line break`))
        }
        out += `${name}: ${text}\r\n`
      }
    }
  }
  return out + '\r\n'
}
