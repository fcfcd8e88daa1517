import { IncomingMessage, type IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyRequest } from 'fastify'
import { shared, shareHeaderStrings } from './shared-strings.js'

/**
 * What `request.raw` is once an HTTP/1.1 upgrade is accepted: the parts of
 * the request that still mean something (its head and its socket), without
 * the IncomingMessage around them. That is a readable stream whose body will
 * never come (the socket now carries frames): its stream state, listener
 * table, trailer fields and the plugin's per-upgrade bookkeeping are about
 * 0.6 KiB that `conn.request` would otherwise keep for the connection's life.
 * Swapped before the handler runs, the IncomingMessage dies young, so a
 * connection with the default `retainRequest: true` no longer promotes it to
 * the old generation.
 *
 * Everything Fastify's request reads through `raw` keeps working: url,
 * method, headers, socket (and so ip, host, hostname, port, protocol),
 * routeOptions, and the proxy addresses with `trustProxy`. Fields that
 * hooks or plugins added to the raw request are carried over.
 */
export class UpgradedRequest {
  readonly url: string
  readonly method: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly httpVersion: string
  readonly socket: Socket

  constructor (raw: IncomingMessage) {
    const url = raw.url ?? '/'
    // The strings every upgrade repeats are kept once (shared-strings.ts). Not a
    // URL with a query: it may carry a token, which must not outlive its connection.
    this.url = url.includes('?') ? url : shared(url)
    this.method = raw.method ?? 'GET'
    this.headers = raw.headers
    this.rawHeaders = raw.rawHeaders
    shareHeaderStrings(this.rawHeaders, this.headers)
    this.httpVersion = shared(raw.httpVersion)
    this.socket = raw.socket
  }

  // What follows is the same for every upgrade, or follows from the fields
  // above: getters rather than fields, 8 bytes each on every kept request.

  /** The head was read in full, and there is no body: as on the IncomingMessage. */
  get complete (): boolean {
    return true
  }

  get upgrade (): boolean {
    return true
  }

  get httpVersionMajor (): number {
    return Number(this.httpVersion.slice(0, this.httpVersion.indexOf('.')))
  }

  get httpVersionMinor (): number {
    return Number(this.httpVersion.slice(this.httpVersion.indexOf('.') + 1))
  }

  /** The socket under its older name, as IncomingMessage has it (`req.connection`). */
  get connection (): Socket {
    return this.socket
  }

  /**
   * `close` listeners go to the socket: the request ends with the
   * connection, so Fastify's `request.signal` (which listens here) aborts
   * when the WebSocket's transport closes. No other event can come from a
   * request whose body is never read; those listeners are not kept.
   */
  on (event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'close') this.socket.on('close', listener)
    return this
  }

  once (event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'close') this.socket.once('close', listener)
    return this
  }

  removeListener (event: string | symbol, listener: (...args: any[]) => void): this {
    if (event === 'close') this.socket.removeListener('close', listener)
    return this
  }

  off (event: string | symbol, listener: (...args: any[]) => void): this {
    return this.removeListener(event, listener)
  }
}

// The own properties every IncomingMessage has, read once from an empty one:
// anything else on an upgrade request was put there by a hook or a plugin.
let standardKeys: Set<string | symbol> | undefined

/**
 * Replaces `request.raw` (an HTTP/1.1 upgrade request), and any other field
 * of the request that holds it, with its UpgradedRequest. `skip` lists the plugin's own keys, which are not carried.
 */
export function compactUpgradeRequest (request: FastifyRequest, skip: ReadonlySet<string | symbol>): void {
  const raw = request.raw as IncomingMessage
  const upgraded = new UpgradedRequest(raw) as UpgradedRequest & Record<string | symbol, unknown>
  standardKeys ??= new Set(Reflect.ownKeys(new IncomingMessage(undefined as unknown as Socket)))
  for (const key of Reflect.ownKeys(raw)) {
    if (!standardKeys.has(key) && !skip.has(key)) upgraded[key] = (raw as unknown as Record<string | symbol, unknown>)[key]
  }
  // Fastify keeps the raw request under a symbol of its own as well (the body
  // stream its preParsing hooks may replace): every reference moves over.
  const fields = request as unknown as Record<string | symbol, unknown>
  for (const key of Reflect.ownKeys(request)) {
    if (fields[key] === raw) fields[key] = upgraded
  }
}
