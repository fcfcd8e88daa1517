import type { FastifyRequest } from 'fastify'
import type { InvalidMessageError } from './errors.js'
import type { JsonWebSocketConnection } from './json-connection.js'

/*
 * The public types of the JSON-message settings (plugin options and
 * `websocket: { … }` on a route). Only index.ts imports this module: the
 * policy function names the connection class, so a module the connection
 * imports cannot import these without a cycle. policies.ts, which runs the
 * policies, works on local types these are assignable to.
 */

/**
 * What happens to an incoming message that is not valid JSON or fails the
 * route's `schema.message`:
 * - `'reply'` (default): the client gets an `InvalidMessageBody` (Fastify's
 *   error shape plus `validation`) and the connection stays open;
 * - `'close'`: the connection is closed with `error.closeCode` (1007 for
 *   unparsable JSON, 1008 for a schema violation or unknown message type);
 * - `'ignore'`: the message is dropped;
 * - a function, called with the error and the connection, decides.
 */
export type InvalidMessagePolicy =
  | 'reply'
  | 'close'
  | 'ignore'
  | ((error: InvalidMessageError, conn: JsonWebSocketConnection<FastifyRequest>) => void)

/**
 * What a JSON consumer (`onJson`, `messages()`) does with a binary message:
 * - `'close'` (default): close the connection with 1003 (unsupported data);
 * - `'error'`: treat it as an invalid message (`FST_ERR_WS_BINARY_MESSAGE`,
 *   status 415, close code 1003) under the `onInvalidMessage` policy;
 * - `'ignore'`: drop it;
 * - `'json'`: decode it as UTF-8 JSON, like a text message.
 */
export type BinaryMessagePolicy = 'close' | 'error' | 'ignore' | 'json'

/** The JSON-message settings of the plugin and of `websocket: { … }` on a route. */
export interface JsonMessageSettings {
  /** Invalid JSON / schema violations. Default `'reply'`. */
  onInvalidMessage?: InvalidMessagePolicy
  /** Binary messages reaching a JSON consumer. Default `'close'`. */
  onBinaryMessage?: BinaryMessagePolicy
}
