import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2'
import { WebSocketConnection } from '../connection/connection.js'
import { createDeflateExtension } from '../compression/deflate.js'
import { resolveCompression } from '../compression/settings.js'
import type { CompressionOptions, ResolvedCompression } from '../compression/types.js'
import { DEFAULTS } from '../defaults.js'
import { WebSocketUpgradeError } from './upgrade-error.js'
import { webSocketError } from '../protocol/errors.js'
import { extendedConnectRequestHeaders, validateExtendedConnectResponse } from '../protocol/extended-connect.js'
import { parseExtensions } from '../protocol/header-lists.js'
import { acceptDeflateResponse, deflateOffer } from '../protocol/permessage-deflate.js'

export interface Http2WebSocketOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string[]
  /** More request headers (lowercase names, as HTTP/2 requires), e.g. `authorization`. */
  headers?: Record<string, string>
  /** `:authority`. Default: the session's origin (TLS), else the address it is connected to. */
  authority?: string
  /** Offer permessage-deflate: `true` or preferences (the `compression` setting's). Default false. */
  compression?: boolean | CompressionOptions
  /** Largest incoming message. Default 1 MiB, the server's default. */
  maxMessageSize?: number
  /** Milliseconds to wait for the server's half of the closing handshake. Default 5000. */
  closeTimeout?: number
  /**
   * Milliseconds to wait for the server's SETTINGS to allow extended CONNECT
   * and for its answer. Default 10 s, the server's handshakeTimeout.
   */
  timeout?: number
}

/**
 * Opens a WebSocket on a new stream of an HTTP/2 session (RFC 8441), the
 * client side of what the plugin serves: `http2.connect(origin)` once, then
 * as many WebSockets as needed on it, next to ordinary requests. Resolves
 * with the open connection; a refusal rejects with a `WebSocketUpgradeError`
 * carrying the status, headers and body, as `app.injectWS` does.
 */
export async function connectOverHttp2 (session: ClientHttp2Session, path: string, options: Http2WebSocketOptions = {}): Promise<WebSocketConnection<undefined>> {
  const timeout = options.timeout ?? DEFAULTS.handshakeTimeout
  await extendedConnectAllowed(session, timeout)
  const compression = resolveCompression(options.compression ?? false, false)
  const protocols = options.protocols ?? []
  const stream = session.request(extendedConnectRequestHeaders({
    path,
    authority: options.authority ?? authorityOf(session),
    scheme: session.encrypted === true ? 'https' : 'http',
    protocols,
    extensions: compression === false ? undefined : [deflateOffer(compression)],
    headers: options.headers
  }), { endStream: false })

  const headers = await responseOf(stream, timeout)
  const status = Number(headers[':status'])
  if (!(status >= 200 && status < 300)) throw await refusal(stream, status, headers)
  let accepted
  let deflate = null
  try {
    accepted = validateExtendedConnectResponse(headers, protocols, compression !== false)
    const answer = headers['sec-websocket-extensions']
    if (compression !== false && answer !== undefined) deflate = acceptDeflateResponse(parseExtensions(answer), compression)
  } catch (error) {
    stream.close()
    throw error
  }
  return new WebSocketConnection<undefined>(stream, undefined, {
    role: 'client',
    maxMessageSize: options.maxMessageSize ?? DEFAULTS.maxMessageSize,
    closeTimeout: options.closeTimeout ?? DEFAULTS.closeTimeout,
    protocol: accepted.protocol,
    extension: deflate === null ? null : createDeflateExtension(deflate, 'client', compression as ResolvedCompression),
    extensions: deflate === null ? '' : String(headers['sec-websocket-extensions'])
  })
}

/** Where the session goes: its TLS origin, or the address its socket is connected to. */
function authorityOf (session: ClientHttp2Session): string {
  const origin = session.originSet?.[0]
  if (origin !== undefined) return new URL(origin).host
  const { remoteAddress, remotePort } = session.socket
  if (remoteAddress === undefined) return 'localhost' // not a TCP socket (an in-memory pipe)
  return `${remoteAddress.includes(':') ? `[${remoteAddress}]` : remoteAddress}:${remotePort}`
}

/**
 * Node refuses to send `:protocol` until the server's SETTINGS allowed it,
 * and those arrive just after the session connects: waits for them (a
 * session whose server never allows it fails after `timeout`).
 */
async function extendedConnectAllowed (session: ClientHttp2Session, timeout: number): Promise<void> {
  if (session.remoteSettings?.enableConnectProtocol === true) return
  await new Promise<void>((resolve, reject) => {
    const done = (error?: Error): void => {
      clearTimeout(timer)
      session.off('remoteSettings', onSettings)
      session.off('close', onClose)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onSettings = (settings: { enableConnectProtocol?: boolean }): void => {
      if (settings.enableConnectProtocol === true) done()
    }
    const onClose = (): void => done(webSocketError('WS_ERR_UPGRADE_ABORTED', 'the HTTP/2 session closed before the server allowed extended CONNECT'))
    const timer = setTimeout(() => done(webSocketError('WS_ERR_NO_EXTENDED_CONNECT',
      `the server did not allow extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441) within ${timeout} ms`)), timeout)
    session.on('remoteSettings', onSettings)
    session.once('close', onClose)
  })
}

async function responseOf (stream: ClientHttp2Stream, timeout: number): Promise<IncomingHttpHeaders> {
  return await new Promise((resolve, reject) => {
    const done = (error: Error | null, headers?: IncomingHttpHeaders): void => {
      clearTimeout(timer)
      stream.off('response', onResponse)
      stream.off('error', onError)
      stream.off('close', onClose)
      if (error === null) resolve(headers!)
      else {
        stream.destroy()
        reject(error)
      }
    }
    const onResponse = (headers: IncomingHttpHeaders): void => done(null, headers)
    const onError = (error: Error): void => done(error)
    const onClose = (): void => done(webSocketError('WS_ERR_UPGRADE_ABORTED', `the server reset the stream (code ${stream.rstCode ?? '?'}) before answering`))
    const timer = setTimeout(() => done(webSocketError('WS_ERR_UPGRADE_ABORTED', `no answer to the extended CONNECT within ${timeout} ms`)), timeout)
    stream.once('response', onResponse)
    stream.once('error', onError)
    stream.once('close', onClose)
  })
}

/** A refusal's body, read to its end, as the rejection. */
async function refusal (stream: ClientHttp2Stream, status: number, headers: IncomingHttpHeaders): Promise<WebSocketUpgradeError> {
  const chunks: Buffer[] = []
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer)
  } catch {
    // A body cut short is reported as far as it came.
  }
  // The request side was left open for frames: nothing will be sent on it now.
  if (!stream.closed) stream.close()
  const flat: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith(':') && value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : String(value)
  }
  return new WebSocketUpgradeError(status, flat, Buffer.concat(chunks).toString('utf8'))
}
