import { once } from 'node:events'
import Fastify from 'fastify'
import t from 'tap'
import websocket from '../lib/index.js'

t.test('injectWS: a handler that sends and closes at once loses neither event for the awaiting caller', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.get('/bye', { websocket: true }, (conn) => {
    conn.send('hello')
    conn.close(4000, 'bye now')
  })
  const client = await app.injectWS('/bye')
  const messages: string[] = []
  client.on('message', (data) => messages.push(data.toString()))
  const [code, reason] = await once(client, 'close')
  t.same(messages, ['hello'])
  t.equal(code, 4000)
  t.equal(reason, 'bye now')
})
