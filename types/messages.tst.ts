import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import { Type as SinclairType } from '@sinclair/typebox'
import Fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket, { InvalidMessageError, JsonWebSocketConnection, type InvalidMessageBody, type InvalidMessagePolicy } from '../lib/index.js'

const app = Fastify()
app.register(websocket)

const Join = Type.Object({ type: Type.Literal('join'), room: Type.String() })
const Say = Type.Object({ type: Type.Literal('say'), text: Type.String(), to: Type.Optional(Type.String()) })
const Incoming = Type.Union([Join, Say])
const Outgoing = Type.Union([
  Type.Object({ type: Type.Literal('joined'), room: Type.String(), members: Type.Number() }),
  Type.Object({ type: Type.Literal('said'), from: Type.String(), text: Type.String() })
])

describe('TypeBox', () => {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()

  test('infers the incoming message and the outgoing one', () => {
    typed.get('/chat', {
      websocket: true,
      schema: { querystring: Type.Object({ user: Type.String() }), message: Incoming, outgoing: Outgoing }
    }, (conn, req) => {
      expect(req.query.user).type.toBe<string>()
      conn.onJson((msg) => {
        expect(msg).type.toBe<{ type: 'join', room: string } | { type: 'say', text: string, to?: string }>()
        conn.sendJson({ type: 'said', from: req.query.user, text: 'hi' })
      })
      expect(conn.sendJson).type.toBeCallableWith({ type: 'joined', room: 'a', members: 1 })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'joined', room: 'a' })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'left', room: 'a' })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'said', from: 'a', text: 1 })
      expect(conn.sendJson({ type: 'said', from: 'a', text: 'b' })).type.toBe<boolean>()
      expect(conn.serializeJson({ type: 'said', from: 'a', text: 'b' })).type.toBe<string>()
    })
  })

  test('gives each variant its own handler, narrowed, and requires all of them', () => {
    typed.get('/chat', { websocket: true, schema: { message: Incoming, outgoing: Outgoing } }, (conn) => {
      conn.onJson('type', {
        join: (msg, c) => {
          expect(msg).type.toBe<{ type: 'join', room: string }>()
          expect(c).type.toBe(conn)
          c.sendJson({ type: 'joined', room: msg.room, members: 2 })
        },
        say: async (msg) => {
          expect(msg).type.toBe<{ type: 'say', text: string, to?: string }>()
        }
      })
      expect(conn.onJson).type.not.toBeCallableWith('type', { join: () => {} })
      expect(conn.onJson).type.not.toBeCallableWith('type', { join: () => {}, say: () => {}, leave: () => {} })
      expect(conn.onJson).type.not.toBeCallableWith('kind', { join: () => {}, say: () => {} })
      expect(conn.onJson).type.not.toBeCallableWith('type', { join: (msg: { type: 'say' }) => msg, say: () => {} })
    })
  })

  test('numeric tags: each handler gets its variant, not never', () => {
    const Numbered = Type.Union([
      Type.Object({ v: Type.Literal(1), a: Type.String() }),
      Type.Object({ v: Type.Literal(2), b: Type.Number() })
    ])
    typed.get('/v', { websocket: true, schema: { message: Numbered } }, (conn) => {
      conn.onJson('v', {
        1: (msg) => {
          expect(msg).type.toBe<{ v: 1, a: string }>()
        },
        2: (msg) => {
          expect(msg).type.toBe<{ v: 2, b: number }>()
        }
      })
      conn.onJson('v', {
        '1': (msg) => {
          expect(msg.a).type.toBe<string>()
        },
        '2': (msg) => {
          expect(msg.b).type.toBe<number>()
        }
      })
      expect(conn.onJson).type.not.toBeCallableWith('v', { 1: () => {} })
      expect(conn.onJson).type.not.toBeCallableWith('v', { 1: (msg: { v: 2 }) => msg, 2: () => {} })
    })
  })

  test('iterates over typed messages', () => {
    typed.get('/chat', { websocket: true, schema: { message: Join } }, async (conn) => {
      for await (const msg of conn.messages()) {
        expect(msg).type.toBe<{ type: 'join', room: string }>()
      }
    })
  })

  test('wrong uses are compile errors', () => {
    typed.get('/chat', { websocket: true, schema: { message: Join, outgoing: Join } }, (conn) => {
      expect(conn.onJson).type.not.toBeCallableWith((msg: { type: 'say' }) => msg)
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'say', room: 'x' })
      expect(conn.sendJson).type.not.toBeCallableWith('text')
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'join', room: 1 })
      expect(conn.onJson).type.not.toBeCallableWith('type', { say: () => {} })
      expect(conn.onJson).type.toBeCallableWith('type', { join: () => {} })
    })
  })

  test('the connection type carries both message types', () => {
    typed.get('/chat', { websocket: true, schema: { message: Join, outgoing: Say } }, (conn) => {
      expect(conn).type.toBe<JsonWebSocketConnection<typeof conn.request, { type: 'join', room: string }, { type: 'say', text: string, to?: string }>>()
    })
  })

  test('works with wsHandler in app.route', () => {
    typed.route({
      method: 'GET',
      url: '/chat',
      schema: { message: Join, outgoing: Say },
      handler: () => 'http',
      wsHandler: (conn) => {
        conn.onJson((msg) => {
          expect(msg.room).type.toBe<string>()
        })
        expect(conn.sendJson).type.not.toBeCallableWith({ type: 'join', room: 'x' })
      }
    })
  })

  test('@sinclair/typebox schemas infer too', () => {
    typed.get('/chat', {
      websocket: true,
      schema: { message: SinclairType.Object({ n: SinclairType.Number() }), outgoing: SinclairType.Object({ ok: SinclairType.Boolean() }) }
    }, (conn) => {
      conn.onJson((msg) => {
        expect(msg).type.toBe<{ n: number }>()
      })
      expect(conn.sendJson).type.toBeCallableWith({ ok: true })
      expect(conn.sendJson).type.not.toBeCallableWith({ ok: 1 })
    })
  })
})

describe('json-schema-to-ts', () => {
  const typed = app.withTypeProvider<JsonSchemaToTsProvider>()

  test('infers the incoming message and the outgoing one', () => {
    typed.get('/sum', {
      websocket: true,
      schema: {
        message: {
          type: 'object',
          properties: { a: { type: 'number' }, b: { type: 'number' } },
          required: ['a', 'b'],
          additionalProperties: false
        },
        outgoing: {
          type: 'object',
          properties: { sum: { type: 'number' } },
          required: ['sum'],
          additionalProperties: false
        }
      }
    }, (conn) => {
      conn.onJson((msg) => {
        expect(msg).type.toBe<{ a: number, b: number }>()
        conn.sendJson({ sum: msg.a + msg.b })
      })
      expect(conn.sendJson).type.not.toBeCallableWith({ total: 1 })
      expect(conn.sendJson).type.not.toBeCallableWith({ sum: '1' })
    })
  })

  test('discriminated handlers', () => {
    typed.get('/ops', {
      websocket: true,
      schema: {
        message: {
          oneOf: [
            { type: 'object', properties: { op: { const: 'add' }, n: { type: 'number' } }, required: ['op', 'n'], additionalProperties: false },
            { type: 'object', properties: { op: { const: 'reset' } }, required: ['op'], additionalProperties: false }
          ]
        }
      }
    }, (conn) => {
      conn.onJson('op', {
        add: (msg) => {
          expect(msg.n).type.toBe<number>()
        },
        reset: (msg) => {
          expect(msg).type.toBe<{ op: 'reset' }>()
        }
      })
      expect(conn.onJson).type.not.toBeCallableWith('op', { add: () => {} })
    })
  })
})

describe('without a type provider', () => {
  test('messages are unknown and anything can be sent', () => {
    app.get('/ws', { websocket: true, schema: { message: { type: 'object' } } }, (conn) => {
      conn.onJson((msg) => {
        expect(msg).type.toBe<unknown>()
      })
      expect(conn.sendJson).type.toBeCallableWith({ any: 'thing' })
      conn.onJson('type', {
        a: (msg) => {
          expect(msg).type.toBe<Record<string, unknown>>()
        }
      })
    })
  })

  test('route generics type the messages', () => {
    app.get<{ Message: { n: number }, Outgoing: { ok: boolean } }>('/ws', { websocket: true }, (conn) => {
      conn.onJson((msg) => {
        expect(msg).type.toBe<{ n: number }>()
      })
      expect(conn.sendJson).type.toBeCallableWith({ ok: true })
      expect(conn.sendJson).type.not.toBeCallableWith({ ok: 'yes' })
    })
  })
})

describe('policies', () => {
  test('are typed in plugin and route settings', () => {
    expect<'reply'>().type.toBeAssignableTo<InvalidMessagePolicy>()
    expect<'close'>().type.toBeAssignableTo<InvalidMessagePolicy>()
    expect<'ignore'>().type.toBeAssignableTo<InvalidMessagePolicy>()
    expect<'explode'>().type.not.toBeAssignableTo<InvalidMessagePolicy>()
    app.get('/ws', {
      websocket: {
        onInvalidMessage: (error, conn) => {
          expect(error).type.toBe<InvalidMessageError>()
          expect(error.closeCode).type.toBe<number>()
          expect(error.toJSON()).type.toBe<InvalidMessageBody>()
          expect(conn).type.toBe<JsonWebSocketConnection<FastifyRequest>>()
        },
        onBinaryMessage: 'json'
      }
    }, () => {})
  })
})
