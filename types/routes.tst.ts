import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyRequest, type FastifyInstance } from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket, { JsonWebSocketConnection, WebSocketConnection, type WebSocketRegistry } from '../lib/index.js'

const app = Fastify()
app.register(websocket, { maxMessageSize: 1024, onInvalidMessage: 'close', onBinaryMessage: 'ignore' })

describe('the websocket shorthand', () => {
  test('infers the connection and the request', () => {
    app.get('/ws', { websocket: true }, (conn, req) => {
      expect(req).type.toBe<FastifyRequest>()
      expect(conn).type.toBe<JsonWebSocketConnection<FastifyRequest, unknown, unknown>>()
      expect(conn).type.toBeAssignableTo<WebSocketConnection<FastifyRequest>>()
      expect(conn.request).type.toBe<FastifyRequest>()
      expect(conn.send('x')).type.toBe<boolean>()
      expect(req.ws).type.toBe<boolean>()
    })
  })

  test('accepts per-route settings', () => {
    app.get('/ws', { websocket: { maxMessageSize: 10, closeTimeout: 100, onInvalidMessage: 'reply' } }, (conn) => {
      expect(conn.readyState).type.toBe<number>()
    })
    expect(app.get).type.toBeCallableWith('/ws', { websocket: { onInvalidMessage: 'close', onBinaryMessage: 'json' } }, () => {})
    expect(app.get).type.not.toBeCallableWith('/ws', { websocket: { onInvalidMessage: 'shout' } }, () => {})
    expect(app.get).type.not.toBeCallableWith('/ws', { websocket: { onBinaryMessage: 'decode' } }, () => {})
  })

  test('accepts the limits, and only the documented buffer policies', () => {
    expect(app.get).type.toBeCallableWith('/ws', { websocket: { maxBufferedAmount: 1 << 20, onBufferFull: 'refuse', maxConnections: 100 } }, () => {})
    expect(app.get).type.not.toBeCallableWith('/ws', { websocket: { onBufferFull: 'drop' } }, () => {})
    expect(app.register).type.toBeCallableWith(websocket, { handshakeTimeout: 5000, maxConnections: 10_000, onBufferFull: 'close' })
  })

  test('types the request from the route schema with TypeBox', () => {
    const typed = app.withTypeProvider<TypeBoxTypeProvider>()
    typed.get('/ws', {
      websocket: true,
      schema: { querystring: Type.Object({ room: Type.String(), limit: Type.Optional(Type.Number()) }) }
    }, (conn, req) => {
      expect(req.query).type.toBe<{ room: string, limit?: number }>()
      expect(conn.request.query).type.toBe<{ room: string, limit?: number }>()
    })
  })

  test('types the request from route generics', () => {
    app.get<{ Querystring: { token: string }, Params: { id: string } }>('/ws/:id', { websocket: true }, (conn, req) => {
      expect(req.query.token).type.toBe<string>()
      expect(req.params.id).type.toBe<string>()
    })
  })

  test('the handler runs with the instance as `this` and may be async', () => {
    app.get('/ws', { websocket: true }, async function (conn) {
      expect(this).type.toBe<FastifyInstance>()
      await conn.sendAsync('hi')
    })
  })

  test('plain HTTP routes keep their handler type', () => {
    app.get('/http', {}, async (req, reply) => {
      expect(reply.statusCode).type.toBe<number>()
      return { ok: true }
    })
  })
})

describe('app.route with wsHandler', () => {
  test('types both handlers', () => {
    app.route({
      method: 'GET',
      url: '/both',
      handler: (req, reply) => {
        expect(req).type.toBe<FastifyRequest>()
        reply.send('http')
      },
      wsHandler: (conn, req) => {
        expect(conn).type.toBe<JsonWebSocketConnection<FastifyRequest, unknown, unknown>>()
        expect(req).type.toBe<FastifyRequest>()
      }
    })
  })

  test('types the query of wsHandler from a TypeBox schema', () => {
    app.withTypeProvider<TypeBoxTypeProvider>().route({
      method: 'GET',
      url: '/both',
      schema: { querystring: Type.Object({ n: Type.Integer() }) },
      handler: (req) => {
        expect(req.query.n).type.toBe<number>()
      },
      wsHandler: (conn, req) => {
        expect(req.query.n).type.toBe<number>()
        expect(conn.request.query).type.toBe<{ n: number }>()
      }
    })
  })

  test('rejects a wsHandler with the wrong shape', () => {
    expect(app.route).type.not.toBeCallableWith({ method: 'GET', url: '/', handler: () => {}, wsHandler: 'nope' })
  })
})

describe('instance additions', () => {
  test('injectWS connects a client', () => {
    expect(app.injectWS('/ws')).type.toBe<Promise<WebSocketConnection<undefined>>>()
    expect(app.injectWS()).type.toBe<Promise<WebSocketConnection<undefined>>>()
    expect(app.injectWS('/ws', { headers: { authorization: 'x' }, protocols: ['chat'] })).type.toBe<Promise<WebSocketConnection<undefined>>>()
    expect(app.injectWS).type.not.toBeCallableWith('/ws', { headers: 1 })
  })

  test('app.websocket is the registry', () => {
    expect(app.websocket).type.toBe<WebSocketRegistry>()
    expect(app.websocket.broadcast('hi')).type.toBe<number>()
    expect(app.websocket.clients).type.toBe<Set<WebSocketConnection<FastifyRequest>>>()
  })
})
