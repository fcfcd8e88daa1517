import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { HandshakeAccepted, HandshakeRefused } from '../protocol/handshake.js'

/*
 * How an upgrade request travels through Fastify. Node hands the `upgrade`
 * event a request and a raw socket; the plugin runs the request through
 * Fastify's router and hooks (upgrade.ts), and what the later stages need is
 * carried on the request itself, under these symbols, from stage to stage:
 *
 *   kSocket      set by the upgrade listener; cleared when the upgrade is
 *                accepted, or when the route answers a non-WebSocket Upgrade
 *                (h2c) as plain HTTP. Its presence is how a hook or handler
 *                knows the request came through the `upgrade` event.
 *   kHead        the bytes that came after the head in the same read: frames
 *                already sent by an eager client, fed to the connection on accept.
 *   kBodySocket  where the body of a request answered as plain HTTP is read
 *                from (Node stopped parsing after the head); taken by the
 *                preParsing hook, once.
 *   kHandshake   the validated handshake (accept key, offered subprotocols),
 *                set by the first check so later ones do not repeat it.
 *   kHttp2       set on an HTTP/2 extended CONNECT (RFC 8441, http2.ts): kSocket
 *                is then the request's HTTP/2 stream, and the request is
 *                routed as a GET.
 *   kRefusal     an extended CONNECT that failed its checks before routing (they
 *                need its :method, which routing as a GET replaces): the
 *                handshake check answers with it.
 */
export const kSocket = Symbol('fastify-rfc6455.socket')
export const kHead = Symbol('fastify-rfc6455.head')
export const kBodySocket = Symbol('fastify-rfc6455.bodySocket')
export const kHandshake = Symbol('fastify-rfc6455.handshake')
export const kHttp2 = Symbol('fastify-rfc6455.http2')
export const kRefusal = Symbol('fastify-rfc6455.refusal')
/** The symbols above: bookkeeping of the upgrade, not carried to the accepted request (upgraded-request.ts). */
export const UPGRADE_KEYS: ReadonlySet<symbol> = new Set([kSocket, kHead, kBodySocket, kHandshake, kHttp2, kRefusal])

export interface UpgradeRequest extends IncomingMessage {
  [kSocket]?: Duplex
  [kBodySocket]?: Duplex
  [kHead]?: Buffer
  [kHandshake]?: HandshakeAccepted
  [kHttp2]?: true
  [kRefusal]?: HandshakeRefused
}

/** The body of every refusal: Fastify's own error shape. */
export function errorBody (status: number, message: string): { statusCode: number, error: string, message: string } {
  return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message }
}

/**
 * A socket listener that destroys it: on `finish` of a refusal (the client may
 * never end its side), and on `error` before the upgrade completes (a client
 * that vanishes then concerns nobody else).
 */
export function destroySocket (this: Duplex): void {
  this.destroy()
}
