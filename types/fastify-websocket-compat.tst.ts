// What @fastify/websocket's own type tests check, asked of this plugin: the
// handler forms, route generics, type providers, injectWS and the connection's
// events, so code typed against @fastify/websocket keeps its types here.
// errorHandler and preClose in depth: error-handler.tst.ts, pre-close.tst.ts.

import type { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, {
  type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchema,
  type RawRequestDefaultExpression, type RawServerDefault, type RouteGenericInterface, type RouteOptions
} from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket, {
  fastifyRfc6455, JsonWebSocketConnection, WebSocketConnection, WebSocketError, type WebSocketEventMap, type WebSocketHandler,
  type WebSocketRouteOptions
} from '../lib/index.js'

type Conn<Request = FastifyRequest> = JsonWebSocketConnection<Request, unknown, unknown>

const app = Fastify()

interface Typed {
  Params: { room: string }
  Body: { note: string }
  Querystring: { since: number }
  Headers: { 'x-user': string }
}

describe('registration', () => {
  test('with and without options; the named export is the default one', () => {
    expect(app.register).type.toBeCallableWith(websocket)
    expect(app.register).type.toBeCallableWith(websocket, {})
    expect(fastifyRfc6455).type.toBe(websocket)
  })

  test('an errorHandler written for @fastify/websocket, with its parameters annotated', () => {
    app.register(websocket, {
      errorHandler: function (error: Error, conn: WebSocketConnection, request: FastifyRequest, reply: FastifyReply): void {
        expect(this).type.toBe<FastifyInstance>()
        expect(error).type.toBe<Error>()
        expect(conn).type.toBe<WebSocketConnection>()
        expect(request).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
      }
    })
  })

  test('preClose, either form, with the instance as `this`', () => {
    app.register(websocket, { preClose: function syncPreClose (done) { expect(this).type.toBe<FastifyInstance>(); done() } })
    app.register(websocket, { preClose: async function asyncPreClose () { expect(this).type.toBe<FastifyInstance>() } })
    expect(app.register).type.not.toBeCallableWith(websocket, { preClose: 'now' })
  })
})

describe('app.get with { websocket: true }', () => {
  test('the handler gets the connection and the request, with the instance as `this`', () => {
    app.get('/inferred', { websocket: true }, async function (conn, req) {
      expect(this).type.toBe<FastifyInstance>()
      expect(conn).type.toBe<Conn>()
      expect(req).type.toBe<FastifyRequest<RouteGenericInterface>>()
      expect(req.ws).type.toBe<boolean>()
      expect(req.log).type.toBe<FastifyBaseLogger>()
    })
  })

  test('a handler annotated with WebSocketHandler, declared apart', () => {
    const handler: WebSocketHandler = (conn, req) => {
      expect(conn).type.toBe<Conn>()
      expect(req).type.toBe<FastifyRequest<RouteGenericInterface>>()
    }
    expect(app.get).type.toBeCallableWith('/annotated', { websocket: true }, handler)
  })

  test('without websocket, or with websocket: false, the handler stays an HTTP handler', () => {
    app.get('/plain', async (req, reply) => {
      expect(req).type.toBe<FastifyRequest>()
      expect(reply).type.toBe<FastifyReply>()
      expect(req.ws).type.toBe<boolean>()
    })
    app.get('/not-websocket', { websocket: false }, async (req, reply) => {
      expect(req).type.toBe<FastifyRequest>()
      expect(reply).type.toBe<FastifyReply>()
    })
  })

  test('route generics type the request', () => {
    app.get<Typed>('/generics/:room', { websocket: true }, (conn, req) => {
      expect(conn.request).type.toBe<FastifyRequest<Typed>>()
      expect(req.params).type.toBe<{ room: string }>()
      expect(req.body).type.toBe<{ note: string }>()
      expect(req.query).type.toBe<{ since: number }>()
      expect(req.headers).type.toBe<IncomingMessage['headers'] & { 'x-user': string }>()
    })
  })
})

describe('app.route with a wsHandler', () => {
  test('handler serves HTTP, wsHandler the connections', () => {
    app.route({
      method: 'GET',
      url: '/both',
      handler: (req, reply) => {
        expect(req).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
        expect(req.ws).type.toBe<boolean>()
      },
      wsHandler: (conn, req) => {
        expect(conn).type.toBe<Conn>()
        expect(req).type.toBe<FastifyRequest<RouteGenericInterface>>()
        expect(req.ws).type.toBe<boolean>()
      }
    })
  })

  test('RouteOptions declared apart carries wsHandler', () => {
    const options: RouteOptions = {
      method: 'GET',
      url: '/declared-apart',
      handler: (req, reply) => {
        expect(req).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
      },
      wsHandler: (conn, req) => {
        expect(conn).type.toBe<Conn>()
        expect(req).type.toBe<FastifyRequest<RouteGenericInterface>>()
      }
    }
    expect(app.route).type.toBeCallableWith(options)
  })

  test('route generics type both requests', () => {
    app.route<Typed>({
      method: 'GET',
      url: '/both-generics/:room',
      handler: (req) => {
        expect(req.params).type.toBe<{ room: string }>()
        expect(req.query).type.toBe<{ since: number }>()
      },
      wsHandler: (conn, req) => {
        expect(conn.request).type.toBe<FastifyRequest<Typed>>()
        expect(req.params).type.toBe<{ room: string }>()
        expect(req.body).type.toBe<{ note: string }>()
        expect(req.query).type.toBe<{ since: number }>()
        expect(req.headers).type.toBe<IncomingMessage['headers'] & { 'x-user': string }>()
      }
    })
  })
})

describe('app.route with websocket: true', () => {
  test('handler is the WebSocket handler', () => {
    app.route({
      method: 'GET',
      url: '/route-websocket',
      websocket: true,
      handler: async function (conn, req) {
        expect(this).type.toBe<FastifyInstance>()
        expect(conn).type.toBe<Conn>()
        expect(req).type.toBe<FastifyRequest<RouteGenericInterface>>()
        expect(req.ws).type.toBe<boolean>()
      }
    })
  })

  test('with per-route settings too', () => {
    app.route({
      method: 'GET',
      url: '/route-settings',
      websocket: { maxMessageSize: 1024 },
      handler: (conn) => {
        expect(conn).type.toBe<Conn>()
      }
    })
  })

  test('route generics type the request', () => {
    app.route<Typed>({
      method: 'GET',
      url: '/route-websocket-generics/:room',
      websocket: true,
      handler: (conn, req) => {
        expect(conn.request).type.toBe<FastifyRequest<Typed>>()
        expect(req.params).type.toBe<{ room: string }>()
        expect(req.body).type.toBe<{ note: string }>()
        expect(req.query).type.toBe<{ since: number }>()
        expect(req.headers).type.toBe<IncomingMessage['headers'] & { 'x-user': string }>()
      }
    })
  })

  test('websocket: false keeps an HTTP handler', () => {
    app.route({
      method: 'GET',
      url: '/route-not-websocket',
      websocket: false,
      handler: (req, reply) => {
        expect(req).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
      }
    })
  })

  test('with a wsHandler as well, handler serves HTTP (as at runtime)', () => {
    app.route({
      method: 'GET',
      url: '/route-websocket-and-wshandler',
      websocket: { maxMessageSize: 1024 },
      handler: (req, reply) => {
        expect(req).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
      },
      wsHandler: (conn) => {
        expect(conn).type.toBe<Conn>()
      }
    })
  })

  test('the options can be declared apart', () => {
    const options: WebSocketRouteOptions = {
      method: 'GET',
      url: '/declared-apart-websocket',
      websocket: true,
      handler: (conn, req) => {
        expect(conn).type.toBe<Conn>()
        expect(req).type.toBe<FastifyRequest>()
      }
    }
    expect(app.route).type.toBeCallableWith(options)
  })

  test('a handler annotated with the connection type is accepted', () => {
    expect(app.route).type.toBeCallableWith({
      method: 'GET',
      url: '/annotated-websocket',
      websocket: true,
      handler: (conn: WebSocketConnection<FastifyRequest>, req: FastifyRequest) => { void [conn, req] }
    })
  })
})

describe('type providers', () => {
  const schema = {
    params: Type.Object({ room: Type.String() }),
    querystring: Type.Object({ since: Type.Number() }),
    body: Type.Object({ note: Type.String() }),
    headers: Type.Object({ 'x-user': Type.String() })
  } satisfies FastifySchema
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()

  test('a TypeBox schema types handler and wsHandler', () => {
    typed.route({
      method: 'GET',
      url: '/provider-both/:room',
      schema,
      handler: (req) => {
        expect(req.params).type.toBe<{ room: string }>()
        expect(req.query).type.toBe<{ since: number }>()
      },
      wsHandler: (conn, req) => {
        expect(req.params).type.toBe<{ room: string }>()
        expect(req.body).type.toBe<{ note: string }>()
        expect(req.query).type.toBe<{ since: number }>()
        expect(req.headers).type.toBe<IncomingMessage['headers'] & { 'x-user': string }>()
        expect(conn.request.query).type.toBe<{ since: number }>()
      }
    })
  })

  test('a TypeBox schema types the handler of route({ websocket: true })', () => {
    typed.route({
      method: 'GET',
      url: '/provider-websocket/:room',
      schema,
      websocket: true,
      handler: (conn, req) => {
        expect(req.params).type.toBe<{ room: string }>()
        expect(req.body).type.toBe<{ note: string }>()
        expect(req.query).type.toBe<{ since: number }>()
        expect(req.headers).type.toBe<IncomingMessage['headers'] & { 'x-user': string }>()
        expect(conn.request.params).type.toBe<{ room: string }>()
      }
    })
  })

  test('without a schema, the provider leaves the request untyped', () => {
    typed.get('/provider-no-schema', { websocket: true }, async function (conn, req) {
      expect(this).type.toBe<FastifyInstance>()
      expect(req).type.toBe<FastifyRequest<RouteGenericInterface, RawServerDefault, RawRequestDefaultExpression, FastifySchema, TypeBoxTypeProvider, unknown, FastifyBaseLogger>>()
      expect(req.ws).type.toBe<boolean>()
      expect(req.params).type.toBe<unknown>()
      expect(req.body).type.toBe<unknown>()
      expect(req.query).type.toBe<unknown>()
      expect(req.headers).type.toBe<IncomingMessage['headers']>()
      expect(conn).type.toBeAssignableTo<WebSocketConnection<typeof req>>()
    })
  })
})

describe('injectWS', () => {
  test('a path, and a path with an upgrade context', () => {
    expect(app.injectWS('/')).type.toBe<Promise<WebSocketConnection<undefined>>>()
    expect(app.injectWS('/', {})).type.toBe<Promise<WebSocketConnection<undefined>>>()
    expect(app.injectWS('/', { headers: { 'api-key': 'secret' } })).type.toBe<Promise<WebSocketConnection<undefined>>>()
  })

  test('onInit and onOpen get the client connection', () => {
    expect(app.injectWS('/', {}, {})).type.toBe<Promise<WebSocketConnection<undefined>>>()
    app.injectWS('/', {}, {
      onInit (conn) { expect(conn).type.toBe<WebSocketConnection<undefined>>() }
    })
    app.injectWS('/', {}, {
      onOpen (conn) { expect(conn).type.toBe<WebSocketConnection<undefined>>() }
    })
    expect(app.injectWS).type.not.toBeCallableWith('/', {}, { onOpen: 'now' })
  })
})

describe('connection events', () => {
  const conn = {} as WebSocketConnection<FastifyRequest>

  test('listeners get typed arguments', () => {
    conn.on('message', (data, isBinary) => {
      expect(data).type.toBe<Buffer>()
      expect(isBinary).type.toBe<boolean>()
    })
    conn.on('close', (code, reason) => {
      expect(code).type.toBe<number>()
      expect(reason).type.toBe<string>()
    })
    conn.once('ping', (data) => { expect(data).type.toBe<Buffer>() })
    conn.prependListener('pong', (data) => { expect(data).type.toBe<Buffer>() })
    conn.on('error', (err) => {
      expect(err).type.toBe<WebSocketError | NodeJS.ErrnoException>()
      expect(err.code).type.toBe<string | undefined>()
      if (err instanceof WebSocketError) expect(err.closeCode).type.toBe<number | undefined>()
    })
    // What @fastify/websocket (ws) users write.
    expect(conn.on).type.toBeCallableWith('error', (err: Error) => { void err })
    expect(conn.on).type.toBeCallableWith('drain', () => {})
  })

  test('a listener of the wrong signature is an error', () => {
    // @fastify/websocket (ws) gives the close reason as a Buffer; here it is a string.
    expect(conn.on).type.not.toBeCallableWith('close', (code: number, reason: Buffer) => { void [code, reason] })
    expect(conn.on).type.not.toBeCallableWith('message', (data: string) => { void data })
    expect(conn.once).type.not.toBeCallableWith('ping', (data: number) => { void data })
    expect(conn.off).type.not.toBeCallableWith('drain', (late: boolean) => { void late })
  })

  test('emit checks the arguments too', () => {
    expect(conn.emit).type.toBeCallableWith('close', 1000, 'bye')
    expect(conn.emit).type.not.toBeCallableWith('close', 1000, Buffer.from('bye'))
    expect(conn.emit).type.not.toBeCallableWith('message', 'text')
  })

  test("EventEmitter's own events keep working; other names go through a plain EventEmitter", () => {
    conn.on('newListener', (eventName, listener) => {
      expect(eventName).type.toBe<string | symbol>()
      expect(listener).type.toBe<(...args: any[]) => void>()
    })
    expect(conn.on).type.toBeCallableWith('removeListener', () => {})
    expect(conn.on).type.not.toBeCallableWith('upgrade', () => {})
    const emitter: EventEmitter = conn
    expect(emitter.on).type.toBeCallableWith('joined', (room: string) => { void room })
  })

  test('the JSON connection of a route handler has the same typed events', () => {
    app.get('/events', { websocket: true }, (conn) => {
      conn.on('message', (data, isBinary) => {
        expect(data).type.toBe<Buffer>()
        expect(isBinary).type.toBe<boolean>()
      })
      expect(conn.on).type.not.toBeCallableWith('close', (code: number, reason: Buffer) => { void [code, reason] })
      expect(conn.on('drain', () => {})).type.toBe(conn)
    })
    expect<JsonWebSocketConnection>().type.toBeAssignableTo<EventEmitter<WebSocketEventMap>>()
  })
})

describe('readyState constants', () => {
  test('on the class and on instances, as literal numbers', () => {
    const conn = {} as WebSocketConnection
    expect(conn.CONNECTING).type.toBe<0>()
    expect(conn.OPEN).type.toBe<1>()
    expect(conn.CLOSING).type.toBe<2>()
    expect(conn.CLOSED).type.toBe<3>()
    expect(WebSocketConnection.OPEN).type.toBe<1>()
    expect(conn.readyState === conn.OPEN).type.toBe<boolean>()
  })
})
