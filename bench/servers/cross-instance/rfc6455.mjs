// One instance of the cross-instance scenario: Fastify 5 + this plugin as
// published (dist/esm), topics carried by its Redis adapter
// (`fastify-rfc6455/redis`, dist/esm/adapters/redis.js) to the other
// instances on the Redis at BENCH_REDIS_URL.

import Fastify from 'fastify'
import { INSTANCE_ROUTE, ROOM } from '../../lib/rooms.mjs'
import { serve } from '../child.mjs'

async function load (path, name) {
  const module = await import(path)
  const value = name === 'default' ? module.default : module[name]
  if (typeof value !== 'function') throw new Error(`${path} has no ${name} export that is a function`)
  return value
}

serve(async () => {
  const url = process.env.BENCH_REDIS_URL
  if (url === undefined) throw new Error('BENCH_REDIS_URL is not set: this server runs as an instance of the cross-instance scenario')
  const plugin = await load('../../../dist/esm/index.js', 'default')
  const redisAdapter = await load('../../../dist/esm/adapters/redis.js', 'redisAdapter')
  const app = Fastify({ logger: false })
  await app.register(plugin, { adapter: redisAdapter({ url }) })
  // The same no-op hook as the other Fastify servers.
  app.addHook('onRequest', async () => {})
  app.get(INSTANCE_ROUTE, { websocket: { retainRequest: false } }, (conn) => {
    conn.subscribe(ROOM)
    conn.on('message', (data, isBinary) => app.websocket.publish(ROOM, data, { binary: isBinary }))
  })
  // ready() waits for the adapter's Redis connections.
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port }
})
