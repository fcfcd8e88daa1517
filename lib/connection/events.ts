import type { EventEmitter } from 'node:events'
import type { ConnectionLogger } from './types.js'

/** What the machinery sees of the public connection: the emitter of its events, and its logger. */
export interface ConnectionEmitter extends EventEmitter {
  readonly log: ConnectionLogger | undefined
}

type ListenerFailed = (conn: ConnectionEmitter, error: unknown) => void

// Set once by connection.ts: it calls the connection's own protected
// `listenerFailed`, so a subclass's override (the JSON connection hands the
// error to the route's errorHandler) decides what a failing listener does.
let listenerFailed: ListenerFailed = () => {}

/** Called once, by WebSocketConnection's static block. */
export function bindListenerFailed (hook: ListenerFailed): void {
  listenerFailed = hook
}

/** A listener of `conn` threw: the connection's `listenerFailed` deals with it. */
export function reportListenerFailure (conn: ConnectionEmitter, error: unknown): void {
  listenerFailed(conn, error)
}

/**
 * Emits an event on the connection. A listener that throws is handled like a
 * failing `message` listener instead of escaping into the socket's event
 * handlers, where it would take the process (and every other connection) down.
 */
export function emitSafely (conn: ConnectionEmitter, event: string | symbol, a?: unknown, b?: unknown): void {
  try {
    conn.emit(event, a, b)
  } catch (error) {
    listenerFailed(conn, error)
  }
}
