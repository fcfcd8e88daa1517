import type { FastifyTypeProvider } from 'fastify'

/*
 * The types that give JSON messages their TypeScript types: from the route
 * generic or the type provider, down to each variant's handler. They name
 * no class, so every module here may import them; the settings types,
 * which name the connection, are in settings.ts.
 */

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
