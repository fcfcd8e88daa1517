import { once } from 'node:events'
import Fastify from 'fastify'
import t from 'tap'
import websocket from '../../lib/index.js'
import { fakeTimers, loopTurns, within } from '../helpers/time.js'

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

t.test('a client that answered the server\'s close does not wait forever for the server to close TCP', async (t) => {
  const clock = fakeTimers(t, ['setTimeout'])
  const app = Fastify()
  t.teardown(() => app.close())
  // The server's own timer would end it all after a minute; the client's must act first.
  await app.register(websocket, { closeTimeout: 60_000 })
  let serverSocket: import('node:net').Socket | undefined
  app.get('/stuck', { websocket: true }, (conn, req) => {
    serverSocket = req.raw.socket as import('node:net').Socket
    // A server that sends its close but never closes the transport afterwards.
    serverSocket.end = function (this: import('node:net').Socket) { return this } as typeof serverSocket.end
    conn.close(1000)
  })
  const client = await app.injectWS('/stuck', { closeTimeout: 5000 })
  const closed = once(client, 'close')
  await loopTurns()
  t.equal(client.readyState, 2, 'the client got the close frame and answered it: CLOSING')
  clock.tick(4999)
  await loopTurns()
  t.equal(client.readyState, 2, 'still waiting for the server 1 ms before its closeTimeout')
  clock.tick(1)
  const [code] = await within(closed, 'the client closing at its closeTimeout')
  t.equal(code, 1000, 'the close code the server sent')
  t.equal(client.readyState, 3)
})

t.test('a message listener that throws closes only its own connection with 1011; the server keeps serving', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket)
  app.get('/fragile', { websocket: true }, (conn) => {
    conn.on('message', (data) => {
      if (data.toString() === 'boom') throw new Error('listener bug')
      conn.send(data)
    })
  })
  const errors: unknown[] = []
  app.get('/handled', {
    websocket: {
      errorHandler (error, conn) {
        errors.push(error)
        conn.close(4000, 'handled')
      }
    }
  }, (conn) => {
    conn.on('message', () => { throw new Error('handled bug') })
  })

  const victim = await app.injectWS('/fragile')
  const bystander = await app.injectWS('/fragile')
  victim.send('boom')
  const [code] = await once(victim, 'close')
  t.equal(code, 1011)
  bystander.send('still here')
  const [echo] = await once(bystander, 'message')
  t.equal(echo.toString(), 'still here')
  bystander.close()
  await once(bystander, 'close')

  const other = await app.injectWS('/handled')
  other.send('x')
  const [code2, reason2] = await once(other, 'close')
  t.equal(code2, 4000)
  t.equal(reason2, 'handled')
  t.equal((errors[0] as Error).message, 'handled bug')
})
