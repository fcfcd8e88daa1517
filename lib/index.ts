import type {
  ContextConfigDefault, FastifyBaseLogger, FastifyInstance, FastifyRequest, FastifySchema, FastifyTypeProvider,
  FastifyTypeProviderDefault, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerBase, RawServerDefault,
  RouteGenericInterface, RouteOptions
} from 'fastify'
import plugin, {
  type BroadcastOptions, type WebSocketErrorHandler, type WebSocketPluginOptions, type WebSocketPreClose, type WebSocketRegistry, type WebSocketRouteSettings
} from './fastify/plugin.js'
import type { WebSocketConnection } from './connection/connection.js'
import type { InjectWSHooks, InjectWSOptions } from './fastify/inject.js'
import type { IncomingMessageOf, JsonWebSocketConnection, OutgoingMessageOf } from './messages/index.js'

export { WebSocketConnection, type BufferFullPolicy, type SendOptions, type SendCallback, type WebSocketData, type WebSocketEventMap } from './connection/connection.js'
// The public name of the protocol's message-frame encoder: one encoding for `conn.sendFrame` on many connections.
export { encodeMessageFrame as encodeBroadcastFrame } from './protocol/frame-writer.js'
export { createWebSocketStream, type WebSocketStreamOptions } from './stream.js'
export { connectOverHttp2, type Http2WebSocketOptions } from './client/http2.js'
export { WebSocketError } from './errors.js'
export type { CompressionOptions } from './compression/types.js'
export type {
  AsyncApiChannel, AsyncApiDocument, AsyncApiInfo, AsyncApiMessage, AsyncApiOperation, AsyncApiOptions, AsyncApiParameter,
  AsyncApiPluginOptions, AsyncApiReference, AsyncApiServer
} from './asyncapi/types.js'
export type { TopicAdapter, TopicAdapterHost } from './topics/adapter.js'
export { WebSocketUpgradeError, type InjectWSHooks, type InjectWSOptions } from './fastify/inject.js'
export { CloseCode } from './protocol/close-codes.js'
export { ProtocolError } from './protocol/errors.js'
export type { BroadcastOptions, WebSocketErrorHandler, WebSocketPluginOptions, WebSocketPreClose, WebSocketRegistry, WebSocketRouteSettings }
export { JsonWebSocketConnection, InvalidMessageError, InvalidMessageCode } from './messages/index.js'
export type {
  BinaryMessagePolicy, DiscriminatorOf, IncomingMessageOf, InvalidMessageBody, InvalidMessagePolicy, JsonMessageHandler,
  JsonMessageSettings, MessageValidationIssue, OutgoingMessageOf, VariantHandlers
} from './messages/index.js'

/** The handler of a WebSocket route: runs once per connection, after every hook. */
export type WebSocketHandler<
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  SchemaCompiler extends FastifySchema = FastifySchema,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  ContextConfig = ContextConfigDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger,
  Request = FastifyRequest<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>
> = (
  this: FastifyInstance,
  conn: JsonWebSocketConnection<Request, IncomingMessageOf<RouteGeneric, TypeProvider, SchemaCompiler>, OutgoingMessageOf<RouteGeneric, TypeProvider, SchemaCompiler>>,
  request: Request
) => unknown

/**
 * `app.route` options of a WebSocket-only route: with `websocket` set and no
 * `wsHandler`, `handler` is the WebSocket handler.
 */
export type WebSocketRouteOptions<
  RawServer extends RawServerBase = RawServerDefault,
  RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
  RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
  RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
  ContextConfig = ContextConfigDefault,
  SchemaCompiler extends FastifySchema = FastifySchema,
  TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
  Logger extends FastifyBaseLogger = FastifyBaseLogger
> = Omit<RouteOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>, 'handler' | 'websocket' | 'wsHandler'> & {
  websocket: true | WebSocketRouteSettings
  handler: WebSocketHandler<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>
  // With a wsHandler, `handler` serves plain HTTP: Fastify's own overload types that.
  wsHandler?: undefined
}

declare module 'fastify' {
  interface FastifyInstance<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    Logger extends FastifyBaseLogger = FastifyBaseLogger,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault
  > {
    /** Open connections and broadcast. */
    websocket: WebSocketRegistry
    /**
     * Connects to a WebSocket route in memory, without listening, running
     * the real handshake and hooks. Rejects with a `WebSocketUpgradeError`
     * (carrying `statusCode`) if the server answers with anything but 101.
     */
    injectWS (path?: string, options?: InjectWSOptions, hooks?: InjectWSHooks): Promise<WebSocketConnection<undefined>>

    // With `websocket` set (and no `wsHandler`), `handler` is the WebSocket handler.
    route<
      RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
      ContextConfig = ContextConfigDefault,
      const SchemaCompiler extends FastifySchema = FastifySchema
    >(
      opts: WebSocketRouteOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, Logger>
    ): FastifyInstance<RawServer, RawRequest, RawReply, Logger, TypeProvider>
  }

  interface FastifyRequest {
    /** True for a valid WebSocket upgrade request on a WebSocket route. */
    ws: boolean
  }

  interface FastifySchema {
    /** WebSocket routes: schema of incoming JSON messages (`conn.onJson`, `conn.messages()`). */
    message?: unknown
    /** WebSocket routes: schema of outgoing JSON messages (`conn.sendJson`); only declared fields are sent. */
    outgoing?: unknown
    // What the AsyncAPI document reads (README, "AsyncAPI"); declared exactly as
    // @fastify/swagger declares them, so the two declarations merge.
    /** Leave the route out of the AsyncAPI document (and of @fastify/swagger's). */
    hide?: boolean
    /** Marks the route's channel, operations and messages deprecated. */
    deprecated?: boolean
    /** Tags of the route's channel and operations. */
    tags?: readonly string[]
    /** The route's channel description (CommonMark). */
    description?: string
    /** The route's channel summary. */
    summary?: string
  }

  interface RouteGenericInterface {
    /** WebSocket routes: the type of incoming JSON messages, when not inferred from `schema.message`. */
    Message?: unknown
    /** WebSocket routes: the type `conn.sendJson` accepts, when not inferred from `schema.outgoing`. */
    Outgoing?: unknown
  }

  interface RouteShorthandOptions<RawServer extends RawServerBase = RawServerDefault> {
    /** Make this a WebSocket route: `true`, or per-route settings. */
    websocket?: boolean | WebSocketRouteSettings
  }

  interface RouteShorthandMethod<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    Logger extends FastifyBaseLogger = FastifyBaseLogger
  > {
    // With `websocket` set, the handler is the WebSocket handler.
    <RouteGeneric extends RouteGenericInterface = RouteGenericInterface, ContextConfig = ContextConfigDefault, const SchemaCompiler extends FastifySchema = FastifySchema, InnerLogger extends Logger = Logger>(
      path: string,
      opts: RouteShorthandOptions<RawServer, RawRequest, RawReply, RouteGeneric, ContextConfig, SchemaCompiler, TypeProvider, InnerLogger> & { websocket: true | WebSocketRouteSettings },
      handler: WebSocketHandler<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, InnerLogger>
    ): FastifyInstance<RawServer, RawRequest, RawReply, InnerLogger, TypeProvider>
  }

  interface RouteOptions<
    RawServer extends RawServerBase = RawServerDefault,
    RawRequest extends RawRequestDefaultExpression<RawServer> = RawRequestDefaultExpression<RawServer>,
    RawReply extends RawReplyDefaultExpression<RawServer> = RawReplyDefaultExpression<RawServer>,
    RouteGeneric extends RouteGenericInterface = RouteGenericInterface,
    ContextConfig = ContextConfigDefault,
    SchemaCompiler extends FastifySchema = FastifySchema,
    TypeProvider extends FastifyTypeProvider = FastifyTypeProviderDefault,
    Logger extends FastifyBaseLogger = FastifyBaseLogger
  > {
    /** Handles WebSocket upgrades on this route; `handler` keeps serving plain HTTP. */
    wsHandler?: WebSocketHandler<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger>
  }
}

export { plugin as fastifyRfc6455 }
export default plugin
