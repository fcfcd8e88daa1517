import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket, { type WebSocketConnection, type WebSocketRegistry } from '../lib/index.js'

const app = Fastify()
app.register(websocket)

describe('topics on the connection', () => {
  test('subscribe, unsubscribe, isSubscribed, topics, publish', () => {
    app.get('/ws', { websocket: true }, (conn) => {
      expect(conn.subscribe('room')).type.toBe<boolean>()
      expect(conn.unsubscribe('room')).type.toBe<boolean>()
      expect(conn.isSubscribed('room')).type.toBe<boolean>()
      expect(conn.topics).type.toBe<string[]>()
      expect(conn.publish('room', 'text')).type.toBe<number>()
      expect(conn.publish).type.toBeCallableWith('room', Buffer.alloc(1), { binary: true })
      expect(conn.publish).type.toBeCallableWith('room', new Uint8Array(1))
      expect(conn.subscribe).type.not.toBeCallableWith(1)
      expect(conn.publish).type.not.toBeCallableWith('room', 42)
      expect(conn.publish).type.not.toBeCallableWith('room', 'x', { compress: true })
    })
  })

  test('the plain connection has them too', () => {
    expect<WebSocketConnection<FastifyRequest>['subscribe']>().type.toBe<(topic: string) => boolean>()
    expect<WebSocketConnection['publish']>().type.toBeCallableWith('t', 'x')
  })

  test('publishJson takes what schema.outgoing describes', () => {
    app.withTypeProvider<TypeBoxTypeProvider>().get('/chat', {
      websocket: true,
      schema: { outgoing: Type.Object({ text: Type.String() }) }
    }, (conn) => {
      expect(conn.publishJson('room', { text: 'hi' })).type.toBe<number>()
      expect(conn.publishJson).type.not.toBeCallableWith('room', { text: 1 })
      expect(conn.publishJson).type.not.toBeCallableWith('room', {})
    })
  })
})

describe('topics on app.websocket', () => {
  test('publish and subscriberCount', () => {
    expect(app.websocket.publish('room', 'x')).type.toBe<number>()
    expect(app.websocket.publish).type.toBeCallableWith('room', Buffer.alloc(1), { binary: false })
    expect(app.websocket.subscriberCount('room')).type.toBe<number>()
    expect<WebSocketRegistry['publish']>().type.not.toBeCallableWith(undefined, 'x')
  })
})
