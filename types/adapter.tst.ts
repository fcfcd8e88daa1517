import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { describe, expect, test } from 'tstyche'
import websocket, { type TopicAdapter, type TopicAdapterHost } from '../lib/index.js'
import { redisAdapter, type RedisAdapter, type RedisAdapterOptions, type RedisAdapterStats } from '../lib/adapters/redis.js'

describe('the adapter setting', () => {
  test('takes the Redis adapter, from a client or a URL', () => {
    const app = Fastify()
    const adapter = redisAdapter({ client: new Redis() })
    expect(adapter).type.toBe<RedisAdapter>()
    expect(adapter).type.toBeAssignableTo<TopicAdapter>()
    app.register(websocket, { adapter })
    app.register(websocket, { adapter: redisAdapter({ url: 'redis://127.0.0.1:6379', prefix: 'chat:', sharded: true, readyTimeout: 1000 }) })
    expect(redisAdapter).type.not.toBeCallableWith({ client: 'redis://127.0.0.1' })
    expect(redisAdapter).type.not.toBeCallableWith({ url: 'redis://x', sharded: 'yes' })
  })

  test('stats are read-only counters, instanceId a string', () => {
    const adapter = redisAdapter({ url: 'redis://127.0.0.1:6379' })
    expect(adapter.stats).type.toBe<Readonly<RedisAdapterStats>>()
    expect(adapter.stats.dropped).type.toBe<number>()
    expect(adapter.instanceId).type.toBe<string>()
    expect<RedisAdapterOptions['client']>().type.toBeAssignableFrom(new Redis())
  })

  test('a hand-written adapter implements TopicAdapter', () => {
    const mine: TopicAdapter = {
      attach (host) {
        expect(host).type.toBe<TopicAdapterHost>()
        expect(host.deliver('t', Buffer.from('x'), false)).type.toBe<number>()
        expect(host.topics()).type.toBeAssignableTo<Iterable<string>>()
      },
      subscribe (topic) { expect(topic).type.toBe<string>() },
      unsubscribe () {},
      publish (_topic, payload, binary) {
        expect(payload).type.toBe<string | Buffer>()
        expect(binary).type.toBe<boolean>()
      },
      async close () {}
    }
    Fastify().register(websocket, { adapter: mine })
    expect(websocket).type.not.toBeCallableWith(Fastify(), { adapter: { attach () {} } })
  })

  test('adapter is plugin-level only', () => {
    const app = Fastify()
    app.register(websocket)
    expect(app.get).type.not.toBeCallableWith('/ws', { websocket: { adapter: redisAdapter({ url: 'x' }) } }, () => {})
  })
})
