import { once } from 'node:events'
import Fastify, { type FastifyRequest } from 'fastify'
import t from 'tap'
import websocket from '../../lib/index.js'
import { collect } from '../helpers/gc.js'


async function requestAfterHandler (retainRequest: boolean, asyncHandler: boolean): Promise<{ alive: boolean, field: unknown, echo: string }> {
  const app = Fastify()
  await app.register(websocket, { retainRequest })
  let ref: WeakRef<FastifyRequest> | undefined
  let conn: { request: unknown } | undefined
  const handler = (c: any, req: FastifyRequest): void => {
    ref = new WeakRef(req)
    conn = c
    c.on('message', (data: Buffer) => c.send(data))
  }
  app.get('/ws', { websocket: true }, asyncHandler
    ? async (c, req) => { await Promise.resolve(); handler(c, req) }
    : (c, req) => handler(c, req))
  const client = await app.injectWS('/ws')
  client.send('still works')
  const [echo] = await once(client, 'message')
  await collect()
  const result = { alive: ref!.deref() !== undefined, field: conn!.request, echo: echo.toString() }
  conn = undefined
  client.close()
  await once(client, 'close')
  await app.close()
  return result
}

t.test('retainRequest: true (default) keeps conn.request for the connection\'s life', async (t) => {
  const { alive, field, echo } = await requestAfterHandler(true, false)
  t.equal(alive, true)
  t.ok(field !== undefined)
  t.equal(echo, 'still works')
})

t.test('retainRequest: false releases the request once a sync handler returns; the connection keeps working', async (t) => {
  const { alive, field, echo } = await requestAfterHandler(false, false)
  t.equal(field, undefined, 'conn.request is cleared')
  t.equal(alive, false, 'the request was garbage-collected while the connection is open')
  t.equal(echo, 'still works')
})

t.test('retainRequest: false waits for an async handler to settle', async (t) => {
  const { alive, field, echo } = await requestAfterHandler(false, true)
  t.equal(field, undefined)
  t.equal(alive, false)
  t.equal(echo, 'still works')
})

t.test('retainRequest: false still routes a failing handler to the errorHandler and logs through the request logger', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { retainRequest: false })
  const seen: string[] = []
  app.get('/boom', {
    websocket: {
      errorHandler (error, conn) {
        seen.push((error as Error).message)
        conn.close(4500, 'handled')
      }
    }
  }, async () => {
    await Promise.resolve()
    throw new Error('late failure')
  })
  const client = await app.injectWS('/boom')
  const [code, reason] = await once(client, 'close')
  t.same(seen, ['late failure'])
  t.equal(code, 4500)
  t.equal(reason, 'handled')
})
