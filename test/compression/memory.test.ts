import t from 'tap'
import { idleContexts } from '../../lib/compression/context-pool.js'
import { zlibStats } from '../../lib/compression/zlib-context.js'
import { DeflatePair, params, until } from '../helpers/deflate.js'

// What an idle connection keeps of zlib: nothing without context takeover,
// one context per direction that keeps its context otherwise, and nothing
// once the connection is closed.

async function exchange (pair: DeflatePair): Promise<void> {
  // One small (in place) and one large (thread pool) message each way.
  for (const size of [2000, 150_000]) {
    pair.client.send(Buffer.alloc(size, 'c'))
    pair.server.send(Buffer.alloc(size, 's'))
  }
  await Promise.all([until(pair.serverHandler, 2), until(pair.clientHandler, 2)])
}

t.test('without context takeover, idle connections hold no zlib state; the shared contexts stay few', async (t) => {
  const openBefore = zlibStats.open
  const idleBefore = idleContexts()
  const pairs = Array.from({ length: 200 }, () => new DeflatePair({ params: params({ serverNoContextTakeover: true, clientNoContextTakeover: true }) }))
  await Promise.all(pairs.map(exchange))
  t.ok(pairs.every((p) => p.serverExt.heldContexts === 0 && p.clientExt.heldContexts === 0), 'no connection holds a context between messages')
  t.equal(zlibStats.open - openBefore, idleContexts() - idleBefore, 'every zlib context open is an idle shared one')
  t.ok(idleContexts() <= 8, `${idleContexts()} shared contexts for 400 endpoints (at most 4 per configuration)`)
})

t.test('with context takeover, a connection holds one context per direction that keeps it, until it closes', async (t) => {
  const openBefore = zlibStats.open
  const cases = [
    { takeover: params(), server: 2, client: 2 },
    // The client keeps its compression context, the server does not: the server keeps an inflater only.
    { takeover: params({ serverNoContextTakeover: true }), server: 1, client: 1 },
    { takeover: params({ clientNoContextTakeover: true }), server: 1, client: 1 }
  ]
  for (const c of cases) {
    const pair = new DeflatePair({ params: c.takeover })
    t.equal(pair.serverExt.heldContexts, 0, 'nothing before the first message')
    await exchange(pair)
    t.equal(pair.serverExt.heldContexts, c.server, `${JSON.stringify(c.takeover)}: server holds ${c.server}`)
    t.equal(pair.clientExt.heldContexts, c.client, `client holds ${c.client}`)
    pair.server.transportClosed()
    pair.client.transportClosed()
    t.equal(pair.serverExt.heldContexts + pair.clientExt.heldContexts, 0, 'released on close')
  }
  t.ok(zlibStats.open - openBefore <= 8, 'no context left open but the shared ones')
})

t.test('closing while a message is on the thread pool fails its send cleanly and frees the context', async (t) => {
  const pair = new DeflatePair()
  const openBefore = zlibStats.open
  let result: Error | null | undefined
  const sent = new Promise<void>((resolve) => pair.server.send(Buffer.alloc(500_000, 'x'), true, (err) => { result = err; resolve() }))
  pair.server.transportClosed()
  await sent
  t.equal((result as Error & { code?: string })?.code, 'WS_ERR_CLOSED_BEFORE_SENT')
  t.equal(pair.serverExt.heldContexts, 0)
  t.equal(zlibStats.open, openBefore, 'the compressor made for it was closed')
})
