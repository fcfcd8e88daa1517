// The README's "Typed JSON messages" example, kept as close to the text as a
// type test allows, so that the README and the types cannot drift apart.
import Fastify from 'fastify'
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { describe, expect, test } from 'tstyche'
import websocket from '../lib/index.js'

describe('README: Typed JSON messages', () => {
  test('the TypeBox chat example', async () => {
    const app = Fastify().withTypeProvider<TypeBoxTypeProvider>()
    await app.register(websocket)

    const Join = Type.Object({ type: Type.Literal('join'), room: Type.String({ minLength: 1 }) })
    const Say = Type.Object({ type: Type.Literal('say'), text: Type.String({ maxLength: 1000 }) })
    const Out = Type.Union([
      Type.Object({ type: Type.Literal('joined'), room: Type.String() }),
      Type.Object({ type: Type.Literal('said'), user: Type.String(), text: Type.String() })
    ])

    app.get('/chat', {
      websocket: true,
      schema: {
        querystring: Type.Object({ user: Type.String() }),
        message: Type.Union([Join, Say]),
        outgoing: Out
      }
    }, (conn, req) => {
      let room = ''
      conn.onJson('type', { // one handler per variant: no switch
        join: (msg) => { // msg: { type: 'join', room: string }
          expect(msg).type.toBe<{ type: 'join', room: string }>()
          room = msg.room
          conn.sendJson({ type: 'joined', room })
        },
        say: (msg) => { // msg: { type: 'say', text: string }
          expect(msg).type.toBe<{ type: 'say', text: string }>()
          conn.sendJson({ type: 'said', user: req.query.user, text: msg.text })
        }
      })

      // "A missing variant handler or a wrong sendJson argument is a compile error."
      expect(req.query.user).type.toBe<string>()
      expect(conn.onJson).type.not.toBeCallableWith('type', { join: () => {} })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'joined' })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'said', user: 'u', text: 1 })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'left', room })
    })
  })

  test('without a provider, route generics', () => {
    type In = { type: 'join', room: string } | { type: 'say', text: string }
    type Out = { type: 'joined', room: string }
    const app = Fastify()
    app.register(websocket)
    app.get<{ Message: In, Outgoing: Out }>('/chat', { websocket: true }, (conn) => {
      conn.onJson('type', {
        join: (msg) => {
          expect(msg).type.toBe<{ type: 'join', room: string }>()
          conn.sendJson({ type: 'joined', room: msg.room })
        },
        say: (msg) => {
          expect(msg).type.toBe<{ type: 'say', text: string }>()
        }
      })
      expect(conn.sendJson).type.not.toBeCallableWith({ type: 'said' })
    })
  })
})
