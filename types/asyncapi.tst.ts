import swagger from '@fastify/swagger'
import Fastify from 'fastify'
import { describe, expect, test } from 'tstyche'
import websocket, {
  type AsyncApiDocument, type AsyncApiOptions, type AsyncApiPluginOptions, type WebSocketPluginOptions
} from '../lib/index.js'

const app = Fastify()
app.register(websocket, { asyncapi: { routePrefix: '/asyncapi', info: { title: 'Chat', version: '1.0.0' } } })

describe('app.websocket.asyncapi()', () => {
  test('the document by default, YAML text with yaml: true', () => {
    expect(app.websocket.asyncapi()).type.toBe<AsyncApiDocument>()
    expect(app.websocket.asyncapi({ yaml: false })).type.toBe<AsyncApiDocument>()
    expect(app.websocket.asyncapi({ yaml: true })).type.toBe<string>()
    expect(app.websocket.asyncapi({ info: { version: '2.0.0' }, servers: { prod: { host: 'chat.example.com', protocol: 'wss' } } })).type.toBe<AsyncApiDocument>()
  })

  test('options are checked', () => {
    expect(app.websocket.asyncapi).type.not.toBeCallableWith({ routePrefix: '/x' })
    expect(app.websocket.asyncapi).type.not.toBeCallableWith({ info: { title: 1 } })
    expect(app.websocket.asyncapi).type.not.toBeCallableWith({ servers: { prod: { host: 'x' } } })
    expect(app.websocket.asyncapi).type.not.toBeCallableWith({ yaml: 'yes' })
  })

  test('what the document holds', () => {
    const doc = app.websocket.asyncapi()
    expect(doc.asyncapi).type.toBe<'3.0.0'>()
    expect(doc.info.title).type.toBe<string>()
    expect(doc.channels.chat.address).type.toBe<string>()
    expect(doc.operations['chat.receive'].action).type.toBe<'send' | 'receive'>()
  })
})

describe('the plugin option', () => {
  test('asyncapi takes routePrefix and the document options', () => {
    expect<WebSocketPluginOptions['asyncapi']>().type.toBe<AsyncApiPluginOptions | undefined>()
    expect<AsyncApiPluginOptions>().type.toBeAssignableTo<AsyncApiOptions>()
    expect(websocket).type.not.toBeCallableWith(app, { asyncapi: { routePrefix: 1 } })
    expect(websocket).type.not.toBeCallableWith(app, { asyncapi: true })
  })
})

describe('route schema fields the document reads', () => {
  test('summary, description, tags, hide and deprecated are typed (declared by the plugin itself)', () => {
    app.get('/ws', {
      websocket: true,
      schema: { summary: 'Chat', description: 'Talk', tags: ['chat'], hide: false, deprecated: true, message: { type: 'string' } }
    }, () => {})
    expect(app.get).type.not.toBeCallableWith('/ws', { websocket: true, schema: { tags: 'chat' } }, () => {})
  })

  test('and merge with @fastify/swagger\'s declarations of the same fields', () => {
    const both = Fastify()
    both.register(swagger, { openapi: { info: { title: 'REST', version: '1.0.0' } } })
    both.register(websocket)
    both.route({
      method: 'GET',
      url: '/both',
      schema: { summary: 'Both', tags: ['x'], operationId: 'getBoth', deprecated: false },
      handler: async () => ({}),
      wsHandler: () => {}
    })
  })
})
