import t from 'tap'
import { build, injectClient } from '../helpers/app.js'

// onJson and messages() share one consume path; they differ in where a
// failure goes: onJson hands it to the route's failure handling, messages()
// throws it into the loop reading the messages. These pin both, for the two
// kinds of failure the path meets (a policy function that throws, and a
// validator that breaks rather than refusing the message).

const Message = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } as const

// A validator compiler whose validators answer with a promise: not supported, a failure rather than an invalid message.
// (`any`: Fastify's types take only its branded promise type, which a plain Promise is not.)
const asyncValidatorCompiler = () => (_data: unknown): any => Promise.resolve(true)

t.test('messages(): a policy function that throws ends the loop with its error', async (t) => {
  const app = await build(t)
  let caught!: (error: unknown) => void
  const loopError = new Promise<unknown>((resolve) => { caught = resolve })
  app.get('/iter', {
    websocket: {
      onInvalidMessage () {
        throw new Error('policy broke')
      }
    },
    schema: { message: Message }
  }, async (conn) => {
    try {
      for await (const msg of conn.messages()) conn.sendJson(msg)
    } catch (error) {
      caught(error)
      conn.close(4000, 'loop ended')
    }
  })
  const client = await injectClient(app, '/iter')
  client.send({ n: 1 })
  t.same(await client.json(), { n: 1 })
  client.send({ n: 'one' })
  t.match(await loopError, { message: 'policy broke' })
  t.same(await client.closed, { code: 4000, reason: 'loop ended' })
})

t.test('onJson: a validator that breaks goes to the route errorHandler, not to the invalid-message policy', async (t) => {
  const app = await build(t)
  const errors: string[] = []
  let policyCalls = 0
  app.get('/ws', {
    websocket: {
      onInvalidMessage () {
        policyCalls++
      },
      errorHandler (error, conn) {
        errors.push((error as Error).message)
        conn.close(4000, 'handled')
      }
    },
    schema: { message: Message },
    validatorCompiler: asyncValidatorCompiler
  }, (conn) => {
    conn.onJson(() => t.fail('the handler is not called'))
  })
  const client = await injectClient(app, '/ws')
  client.send({ n: 1 })
  t.same(await client.closed, { code: 4000, reason: 'handled' })
  t.same(errors, ['asynchronous validators are not supported for WebSocket messages'])
  t.equal(policyCalls, 0)
})

t.test('messages(): a validator that breaks ends the loop with its error', async (t) => {
  const app = await build(t)
  let caught!: (error: unknown) => void
  const loopError = new Promise<unknown>((resolve) => { caught = resolve })
  app.get('/iter', {
    websocket: true,
    schema: { message: Message },
    validatorCompiler: asyncValidatorCompiler
  }, async (conn) => {
    try {
      for await (const msg of conn.messages()) t.fail(`nothing is yielded, got ${JSON.stringify(msg)}`)
    } catch (error) {
      caught(error)
      conn.close(4000, 'loop ended')
    }
  })
  const client = await injectClient(app, '/iter')
  client.send({ n: 1 })
  t.match(await loopError, { name: 'TypeError', message: 'asynchronous validators are not supported for WebSocket messages' })
  t.same(await client.closed, { code: 4000, reason: 'loop ended' })
})
