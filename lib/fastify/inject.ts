import { connect } from 'node:http2'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { connectOverHttp2 } from '../client/http2.js'
import type { Server } from 'node:http'
import { Server as TlsServer } from 'node:tls'
import { ChunkedDecoder } from './chunked-decoder.js'
import { WebSocketConnection } from '../connection/connection.js'
import { kInternal } from '../connection/internal.js'
import { createDuplexPair } from '../duplex-pair.js'
import { buildClientRequest, generateKey, parseResponseHead, validateServerResponse } from '../protocol/client-handshake.js'
import { DEFAULTS } from '../defaults.js'
import { webSocketError } from '../protocol/errors.js'
import { WebSocketUpgradeError } from '../client/upgrade-error.js'
import { createDeflateExtension } from '../compression/deflate.js'
import { resolveCompression } from '../compression/settings.js'
import type { CompressionOptions, ResolvedCompression } from '../compression/types.js'
import { formatExtensions, parseExtensions } from '../protocol/header-lists.js'
import { acceptDeflateResponse, deflateOffer } from '../protocol/permessage-deflate.js'

// The in-memory test client accepts 64 times the server's default message size:
// it exists to see what a route sends, so a test of a large reply should not
// need a setting, and it only ever talks to the app under test.
const INJECT_MAX_MESSAGE_SIZE = 64 * DEFAULTS.maxMessageSize

export interface InjectWSOptions {
  /** Request headers to add to the handshake (e.g. authorization). */
  headers?: Record<string, string>
  /** Subprotocols to offer. */
  protocols?: string[]
  /** Host header. Default 'localhost'. */
  host?: string
  /** Largest message the client accepts. Default 64 MiB. */
  maxMessageSize?: number
  /** Close timeout of the client connection in ms. Default: the server's default, 5000. */
  closeTimeout?: number
  /**
   * Offer permessage-deflate, as browsers do: `true` or preferences (the
   * `compression` setting's). Default false. `conn.extensions` tells what the server agreed to.
   */
  compression?: boolean | CompressionOptions
}

/**
 * What `injectWS` calls on the client connection, as @fastify/websocket's
 * third argument does: `onInit` once the connection exists, before it has
 * read any message, and `onOpen` right after, both before the promise
 * resolves. Messages the server sends on open are held until listeners are
 * added, so neither is needed to catch them; they are for code written so.
 */
export interface InjectWSHooks {
  onInit?: (conn: WebSocketConnection<undefined>) => void
  onOpen?: (conn: WebSocketConnection<undefined>) => void
}

/**
 * Connects a client to `server` through an in-memory pipe: the server sees
 * an ordinary connection (on an HTTPS server, one whose TLS handshake is
 * done), parses the request with its own HTTP parser and runs the upgrade
 * exactly as for a socket.
 */
export function injectWebSocket (server: Server | TlsServer, path: string, options: InjectWSOptions = {}, hooks: InjectWSHooks = {}): Promise<WebSocketConnection<undefined>> {
  if (typeof (server as { updateSettings?: unknown }).updateSettings === 'function') return injectOverHttp2(server, path, options, hooks)
  const [client, serverEnd] = createDuplexPair()
  if (server instanceof TlsServer) {
    // A TLS server's 'connection' listener starts a TLS handshake the pipe never
    // answers; its HTTP parser listens to 'secureConnection', for sockets past it.
    // The pipe then has to pass for a TLS socket (request.protocol reads `encrypted`).
    presentAsTlsSocket(serverEnd)
    server.emit('secureConnection', serverEnd)
  } else {
    server.emit('connection', serverEnd)
  }
  const key = generateKey()
  const protocols = options.protocols ?? []
  const compression = resolveCompression(options.compression ?? false, false)
  const headers = compression === false
    ? options.headers
    : { ...options.headers, 'Sec-WebSocket-Extensions': formatExtensions([deflateOffer(compression)]) }
  client.write(buildClientRequest({
    path,
    host: options.host ?? 'localhost',
    key,
    protocols,
    headers
  }))

  return new Promise((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0)
    let refusal: { statusCode: number, headers: Record<string, string>, bodyStart: number } | null = null

    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      if (refusal !== null) return
      let head
      try {
        head = parseResponseHead(received)
      } catch (err) {
        fail(err as Error)
        return
      }
      if (head === null) return
      if (head.statusCode !== 101) {
        // Read the body until the server ends the connection.
        refusal = { statusCode: head.statusCode, headers: head.headers, bodyStart: head.length }
        return
      }
      let accepted
      let deflate = null
      try {
        accepted = validateServerResponse(head, key, protocols, compression !== false)
        const answer = head.headers['sec-websocket-extensions']
        if (compression !== false && answer !== undefined) deflate = acceptDeflateResponse(parseExtensions(answer), compression)
      } catch (err) {
        fail(err as Error)
        return
      }
      detach()
      const conn = new WebSocketConnection<undefined>(client, undefined, {
        role: 'client',
        maxMessageSize: options.maxMessageSize ?? INJECT_MAX_MESSAGE_SIZE,
        closeTimeout: options.closeTimeout ?? DEFAULTS.closeTimeout,
        protocol: accepted.protocol,
        extension: deflate === null ? null : createDeflateExtension(deflate, 'client', compression as ResolvedCompression),
        extensions: deflate === null ? '' : head.headers['sec-websocket-extensions']
      })
      conn[kInternal].startAfterCurrentTask(received.subarray(head.length))
      try {
        hooks.onInit?.(conn)
        hooks.onOpen?.(conn)
      } catch (err) {
        conn.terminate()
        reject(err)
        return
      }
      resolve(conn)
    }
    const onEnd = (): void => {
      if (refusal === null) {
        fail(webSocketError('WS_ERR_UPGRADE_ABORTED'))
        return
      }
      detach()
      client.destroy()
      reject(new WebSocketUpgradeError(refusal.statusCode, refusal.headers, decodeBody(received.subarray(refusal.bodyStart), refusal.headers)))
    }
    const fail = (err: Error): void => {
      detach()
      client.destroy()
      reject(err)
    }
    const detach = (): void => {
      client.off('data', onData)
      client.off('end', onEnd)
      client.off('close', onEnd)
    }
    client.on('data', onData)
    client.on('end', onEnd)
    client.on('close', onEnd)
  })
}

/**
 * On an HTTP/2 app, the in-memory pipe carries an HTTP/2 session and the
 * WebSocket is an extended CONNECT on it (RFC 8441), as a browser's would
 * be; the session ends with the WebSocket.
 */
async function injectOverHttp2 (server: Server | TlsServer, path: string, options: InjectWSOptions, hooks: InjectWSHooks): Promise<WebSocketConnection<undefined>> {
  const [client, serverEnd] = createDuplexPair()
  const secure = server instanceof TlsServer
  if (secure) {
    presentAsTlsSocket(serverEnd)
    ;(serverEnd as unknown as { alpnProtocol: string }).alpnProtocol = 'h2'
    server.emit('secureConnection', serverEnd)
  } else {
    server.emit('connection', serverEnd)
  }
  const host = options.host ?? 'localhost'
  const session = connect(`${secure ? 'https' : 'http'}://${host}`, { createConnection: () => client as unknown as Socket })
  let conn: WebSocketConnection<undefined>
  try {
    conn = await connectOverHttp2(session, path, {
      authority: host,
      protocols: options.protocols,
      // HTTP/2 header names are lowercase.
      headers: options.headers === undefined ? undefined : Object.fromEntries(Object.entries(options.headers).map(([name, value]) => [name.toLowerCase(), value])),
      compression: options.compression,
      maxMessageSize: options.maxMessageSize ?? INJECT_MAX_MESSAGE_SIZE,
      closeTimeout: options.closeTimeout
    })
  } catch (error) {
    session.destroy()
    throw error
  }
  conn[kInternal].onTransportClosed(() => { session.close() })
  try {
    hooks.onInit?.(conn)
    hooks.onOpen?.(conn)
  } catch (error) {
    conn.terminate()
    throw error
  }
  return conn
}

/**
 * What a server-side TLS socket shows once its handshake is done with a client
 * that offered no ALPN protocol and no certificate, for code that inspects it
 * (Fastify's request.protocol, an auth hook reading `authorized`).
 */
function presentAsTlsSocket (socket: Duplex): void {
  Object.assign(socket, {
    encrypted: true,
    authorized: false,
    authorizationError: null,
    alpnProtocol: false,
    // Node returns an empty object when the peer sent no certificate.
    getPeerCertificate: () => ({})
  })
}

function decodeBody (body: Buffer, headers: Record<string, string>): string {
  if (!/chunked/i.test(headers['transfer-encoding'] ?? '')) return body.toString('utf8')
  const parts: Buffer[] = []
  try {
    new ChunkedDecoder().decode(body, parts)
  } catch {
    // A refusal whose framing is broken is still reported, with its bytes as they came.
    return body.toString('utf8')
  }
  return Buffer.concat(parts).toString('utf8')
}

export { WebSocketUpgradeError }
export type { Duplex }
