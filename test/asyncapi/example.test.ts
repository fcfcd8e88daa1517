// The example app's document (examples/chat, what `npm start` serves at
// /asyncapi): valid for the official parser, and the chat protocol as the
// example's comments state it — join, leave and say from clients; welcome,
// message, joined, left and error from the server; ChatMessage shared.
import t from 'tap'
import { build } from '../../examples/chat/server.js'
import { validate } from './fixtures/validate.js'

t.test('the example\'s document', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const response = await app.inject('/asyncapi/json')
  t.equal(response.statusCode, 200)
  const doc = response.json()
  t.same(await validate(doc), { errors: [], warnings: [] }, 'no errors, no warnings')
  t.same(await validate((await app.inject('/asyncapi/yaml')).body), { errors: [], warnings: [] }, 'nor in its YAML')
  t.same(doc.info, { title: 'fastify-rfc6455 chat', version: '1.0.0', description: 'Chat rooms over one WebSocket: join, leave, say.' })

  t.same(Object.keys(doc.channels), ['chat'], 'one channel: /chat (/, /api/health and /asyncapi are REST)')
  const chat = doc.channels.chat
  t.equal(chat.address, '/chat')
  t.equal(chat.summary, 'The chat')
  t.same(chat.tags, [{ name: 'chat' }])
  t.same(Object.keys(chat.bindings.ws.query.properties), ['name', 'room'], 'the handshake\'s querystring')
  t.same(chat.bindings.ws.query.required, ['name'])

  const names = (id: string): string[] => doc.operations[id].messages.map(({ $ref }: { $ref: string }) => chat.messages[$ref.split('/').pop()!].name)
  t.equal(doc.operations['chat.receive'].action, 'receive')
  t.same(names('chat.receive'), ['join', 'leave', 'say'], 'what clients send')
  t.equal(doc.operations['chat.send'].action, 'send')
  t.same(names('chat.send'), ['welcome', 'message', 'joined', 'left', 'error'], 'what the server sends')
  t.same(chat.messages.message.payload, { $ref: '#/components/schemas/ChatMessage' }, 'a chat message is the shared ChatMessage schema')
  t.same(chat.messages.welcome.payload.properties.history.items, { $ref: '#/components/schemas/ChatMessage' }, 'so are the history\'s items')
  t.same(Object.keys(doc.components.schemas), ['ChatMessage'])
  t.same(chat.messages.say.examples, [{ payload: { type: 'say', room: 'kitchen', text: 'soup is ready' } }])

  const page = await app.inject('/asyncapi')
  t.equal(page.statusCode, 200)
  t.match(page.body, '<code>/chat</code>')
})
