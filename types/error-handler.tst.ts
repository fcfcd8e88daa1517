// The errorHandler setting as @fastify/websocket users write it: annotated
// `(error: Error, socket, request, reply)`, a plain function reading
// `error.message`, or async; at register and on a route.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket, { JsonWebSocketConnection, WebSocketConnection, type WebSocketRouteSettings } from '../lib/index.js'

const app = Fastify()

describe('errorHandler', () => {
  test('annotated as in @fastify/websocket\'s type tests, `error: Error` included, is accepted at register', () => {
    app.register(websocket, {
      errorHandler: function errorHandler (error: Error, conn: WebSocketConnection<FastifyRequest>, request: FastifyRequest, reply: FastifyReply): void {
        expect(this).type.toBe<FastifyInstance>()
        expect(error).type.toBe<Error>()
        expect(request).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
        conn.terminate()
      }
    })
    function declaredApart (this: FastifyInstance, error: Error, conn: WebSocketConnection<FastifyRequest>, request: FastifyRequest, reply: FastifyReply): void {
      void [this, error, conn, request, reply]
    }
    expect(app.register).type.toBeCallableWith(websocket, { errorHandler: declaredApart })
  })

  test('unannotated, its parameters are inferred', () => {
    app.register(websocket, {
      errorHandler (error, conn, request, reply) {
        expect(this).type.toBe<FastifyInstance>()
        expect(error).type.toBe<Error>()
        expect(error.message).type.toBe<string>()
        expect(conn).type.toBe<JsonWebSocketConnection<FastifyRequest>>()
        expect(request).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
      }
    })
  })

  test('fewer parameters, and async functions, are accepted too', () => {
    expect(app.register).type.toBeCallableWith(websocket, { errorHandler: (error: Error) => { void error } })
    expect(app.register).type.toBeCallableWith(websocket, { errorHandler: async (error: Error, conn: WebSocketConnection<FastifyRequest>) => { conn.close(1011, error.message) } })
  })

  test('on a route, in websocket: { … }', () => {
    expect(app.get).type.toBeCallableWith('/ws', {
      websocket: { errorHandler: (error: Error, conn: JsonWebSocketConnection<FastifyRequest>, request: FastifyRequest, reply: FastifyReply) => { void [error, conn, request, reply] } }
    }, () => {})
  })

  test('what cannot be an errorHandler is refused', () => {
    expect(app.register).type.not.toBeCallableWith(websocket, { errorHandler: {} })
    expect(app.register).type.not.toBeCallableWith(websocket, { errorHandler: (error: Error, conn: string) => { void [error, conn] } })
    expect(app.register).type.not.toBeCallableWith(websocket, { errorHandler: (error: Error, conn: unknown, request: FastifyRequest, reply: FastifyReply, extra: number) => { void [error, conn, request, reply, extra] } })
  })

  test('its type is reachable through WebSocketRouteSettings', () => {
    expect(function (this: FastifyInstance, error: Error) { void error }).type.toBeAssignableTo<NonNullable<WebSocketRouteSettings['errorHandler']>>()
  })
})
