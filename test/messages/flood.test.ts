import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import Fastify from 'fastify'
import { RouteMessages } from '../../lib/messages/index.js'
import { createInvalidMessageError } from '../../lib/messages/errors.js'
import { build, injectClient, type InjectedClient } from '../helpers/app.js'

// A gc() without needing node --expose-gc on the command line.
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

function heapAfterGc (): number {
  for (let i = 0; i < 4; i++) gc()
  return process.memoryUsage().heapUsed
}

async function flood (client: InjectedClient, count: number): Promise<Record<string, number>> {
  const codes: Record<string, number> = {}
  const batch = 500
  for (let sent = 0; sent < count; sent += batch) {
    for (let i = 0; i < batch; i++) client.send(i % 2 === 0 ? `{"n":${i},` : `{"n":"x${i}"}`)
    for (let i = 0; i < batch; i++) {
      const reply = await client.json()
      codes[reply.code] = (codes[reply.code] ?? 0) + 1
    }
  }
  return codes
}

t.test('10k invalid messages: the connection survives and memory does not grow', async (t) => {
  const app = await build(t)
  app.get('/ws', {
    websocket: true,
    schema: { message: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } }
  }, (conn) => {
    conn.onJson((msg: any) => conn.sendJson({ echo: msg.n }))
  })
  const client = await injectClient(app, '/ws')

  await flood(client, 2000) // warm up: compiled code, pools, buffers
  const before = heapAfterGc()
  const codes = await flood(client, 10_000)
  const after = heapAfterGc()

  t.same(codes, { FST_ERR_WS_INVALID_JSON: 5000, FST_ERR_VALIDATION: 5000 }, 'every invalid message was answered')
  client.send({ n: 1 })
  t.same(await client.json(), { echo: 1 }, 'the connection is still open and working')
  t.equal(app.websocket.clients.size, 1)
  const growth = after - before
  t.ok(growth < 8 * 1024 * 1024, `heap growth after gc is bounded (${(growth / 1024).toFixed(0)} KiB)`)
})

t.test("the 'reply' policy stops answering a client that does not read", async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const { policies } = new RouteMessages(app, { method: 'GET', url: '/x', handler: () => {} }, { highWaterMark: 1000 })
  const sent: string[] = []
  const target = {
    readyState: 1,
    bufferedAmount: 0,
    request: undefined,
    send (data: string) {
      sent.push(data)
      return true
    },
    close () {}
  }
  const error = createInvalidMessageError('FST_ERR_VALIDATION', 'message/n must be integer')
  policies.rejectInvalid(target, error, undefined)
  target.bufferedAmount = 999
  policies.rejectInvalid(target, error, undefined)
  target.bufferedAmount = 1000
  policies.rejectInvalid(target, error, undefined)
  target.bufferedAmount = 5_000_000
  policies.rejectInvalid(target, error, undefined)
  t.equal(sent.length, 2, 'no answers are queued past the high-water mark')
  t.same(JSON.parse(sent[0]), { statusCode: 400, code: 'FST_ERR_VALIDATION', error: 'Bad Request', message: 'message/n must be integer' })
})
