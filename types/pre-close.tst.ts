// The preClose plugin option in the forms @fastify/websocket's users write:
// a function with `done`, a function without, async; `this` is the instance.

import Fastify, { type FastifyInstance, type preCloseAsyncHookHandler, type preCloseHookHandler } from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket from '../lib/index.js'

const app = Fastify()

describe('preClose', () => {
  test('with done, without, and async, each with the instance as this', () => {
    app.register(websocket, {
      preClose (done) {
        expect(this).type.toBe<FastifyInstance>()
        expect(this.websocket.clients.size).type.toBe<number>()
        done()
      }
    })
    app.register(websocket, {
      async preClose () {
        expect(this).type.toBe<FastifyInstance>()
      }
    })
    expect(app.register).type.toBeCallableWith(websocket, { preClose: function syncPreclose () {} })
    expect(app.register).type.toBeCallableWith(websocket, { preClose: async function asyncPreclose () {} })
  })

  test('Fastify\'s own hook types fit', () => {
    const withDone: preCloseHookHandler = function (done) { done() }
    const asynchronous: preCloseAsyncHookHandler = async function () {}
    expect(app.register).type.toBeCallableWith(websocket, { preClose: withDone })
    expect(app.register).type.toBeCallableWith(websocket, { preClose: asynchronous })
  })

  test('is plugin-level only, and a function', () => {
    expect(app.register).type.not.toBeCallableWith(websocket, { preClose: 'Not a function' })
    expect(app.get).type.not.toBeCallableWith('/ws', { websocket: { preClose: () => {} } }, () => {})
  })
})
