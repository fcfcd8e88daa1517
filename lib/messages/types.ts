import type { FastifyRequest, FastifyTypeProvider } from 'fastify'
import type { InvalidMessageError } from './errors.js'
import type { JsonWebSocketConnection } from './connection.js'

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

// Fastify's CallValidatorTypeProvider / CallSerializerTypeProvider, which it does not export.
type CallValidator<TypeProvider extends FastifyTypeProvider, Schema> = (TypeProvider & { schema: Schema })['validator']
type CallSerializer<TypeProvider extends FastifyTypeProvider, Schema> = (TypeProvider & { schema: Schema })['serializer']
type UndefinedToUnknown<T> = [T] extends [undefined] ? unknown : T

/**
 * The type of incoming messages: the route generic's `Message`, else what
 * the type provider infers from `schema.message`, else `unknown`.
 */
export type IncomingMessageOf<RouteGeneric, TypeProvider extends FastifyTypeProvider, Schema> =
  RouteGeneric extends { Message: infer M }
    ? M
    : Schema extends { message: infer S } ? UndefinedToUnknown<CallValidator<TypeProvider, S>> : unknown

/**
 * The type `sendJson` accepts: the route generic's `Outgoing`, else what
 * the type provider infers from `schema.outgoing`, else `unknown`.
 */
export type OutgoingMessageOf<RouteGeneric, TypeProvider extends FastifyTypeProvider, Schema> =
  RouteGeneric extends { Outgoing: infer O }
    ? O
    : Schema extends { outgoing: infer S } ? UndefinedToUnknown<CallSerializer<TypeProvider, S>> : unknown

/** A handler of JSON messages; it may return a promise, whose rejection is handled like a throwing route handler. */
export type JsonMessageHandler<In, Conn> = (message: In, conn: Conn) => unknown

/** Properties that may discriminate the incoming messages. */
export type DiscriminatorOf<In> = unknown extends In ? string : keyof In & string

/** The tag values of `In` at `K`, usable as handler names. */
type TagOf<In, K extends PropertyKey> = In extends { readonly [P in K]: infer V } ? V & (string | number) : never

/**
 * The variants of `In` whose `K` is `V`, compared as property names: when
 * TypeScript types a handler from the object literal, `V` is the key as
 * written, the string `"1"` for the variant tagged with the number `1`.
 */
type VariantOf<In, K extends PropertyKey, V> = In extends { readonly [P in K]: infer T }
  ? `${T & (string | number)}` extends `${V & (string | number)}` ? In : never
  : never

/**
 * One handler per variant of `In`, keyed by the value of its `K` property;
 * each receives its variant. All variants must be handled.
 */
export type VariantHandlers<In, K extends PropertyKey, Conn> = unknown extends In
  ? Record<string, JsonMessageHandler<Record<string, unknown>, Conn>>
  : { [V in TagOf<In, K>]: JsonMessageHandler<VariantOf<In, K, V>, Conn> }
