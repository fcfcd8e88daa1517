// The soak run's server: a child process running the plugin as published
// (dist/esm) with its defaults, on 127.0.0.1, port 0. Started by
// bench/soak.mjs with --expose-gc; answers its questions over IPC.
//
// Routes:
//   /echo   echoes every message and ignores send()'s return value: the
//           careless route whose memory the plugin's limits must bound.
//   /count  counts messages and bytes per ?id=, checks their sequence
//           numbers, answers nothing.
//   /health plain HTTP.
//   /plain  POST, a JSON body (Fastify's default bodyLimit, 1 MiB): the
//           body-parsing route of issue 8's case 1; statuses tallied.
// Every WebSocket connection may carry ?kind=…; the code its `close` event
// reports is tallied per kind, so the run learns how each hostile peer ended
// from the server's side too.

import diagnosticsChannel from 'node:diagnostics_channel'
import { readdirSync, readFileSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import Fastify from 'fastify'

const CHANNELS = {
  open: 'fastify-rfc6455:open',
  close: 'fastify-rfc6455:close',
  refused: 'fastify-rfc6455:refused',
  limit: 'fastify-rfc6455:limit'
}

// The run owns this process: when it goes away, so do we.
process.on('disconnect', () => process.exit(0))

function tally (table, key) {
  table[key] = (table[key] ?? 0) + 1
}

// Diagnostics: counts per channel and, where the message says, per code,
// status + reason or limit name. Subscribing to a channel nobody publishes
// on is harmless: the counts stay at zero.
const diagnostics = { open: 0, close: {}, refused: {}, limit: {}, malformed: 0 }
diagnosticsChannel.subscribe(CHANNELS.open, () => { diagnostics.open++ })
diagnosticsChannel.subscribe(CHANNELS.close, (message) => {
  tally(diagnostics.close, String(message?.code ?? 'none'))
})
diagnosticsChannel.subscribe(CHANNELS.refused, (message) => {
  tally(diagnostics.refused, `${message?.statusCode ?? '?'} ${message?.reason ?? ''}`.trim())
})
diagnosticsChannel.subscribe(CHANNELS.limit, (message) => {
  tally(diagnostics.limit, String(message?.limit ?? 'unnamed'))
})

// How long the server's event loop stalled, between two 'loopDelay' requests.
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()

// The largest memory figures seen between two 'peaks' requests, every
// 100 ms: short bursts of buffers (what glibc's arena grows to) last less
// than the run's one-second samples.
let peaks = {}
setInterval(() => {
  const usage = process.memoryUsage()
  for (const key of ['rss', 'heapUsed', 'external', 'arrayBuffers']) peaks[key] = Math.max(peaks[key] ?? 0, usage[key])
}, 100).unref()

// Route counters.
const echo = { connections: 0, messages: 0, bytes: 0 }
const ended = {} // kind → { closeCode → count }
const counted = new Map() // /count id → { messages, bytes, outOfOrder, next }
const plain = {} // /plain status → count

async function loadPlugin () {
  const module = await import('../../dist/esm/index.js')
  if (typeof module.default !== 'function') throw new Error('dist/esm/index.js has no default export that is a plugin')
  return module.default
}

function onEnded (kind) {
  return (code) => {
    ended[kind] ??= {}
    tally(ended[kind], String(code))
  }
}

async function start () {
  const plugin = await loadPlugin()
  const app = Fastify({ logger: false })
  await app.register(plugin) // the defaults: that is what the soak is about

  app.get('/health', async () => ({ ok: true }))

  app.post('/plain', async (request) => ({ keys: Object.keys(request.body ?? {}).length }))
  app.addHook('onResponse', async (request, reply) => {
    if (request.url === '/plain') tally(plain, String(reply.statusCode))
  })

  app.get('/echo', { websocket: true }, (conn, req) => {
    echo.connections++
    conn.on('message', (data, isBinary) => {
      echo.messages++
      echo.bytes += data.length
      conn.send(data, { binary: isBinary }) // return value ignored on purpose
    })
    conn.on('close', onEnded(String(req.query.kind ?? 'echo')))
  })

  app.get('/count', { websocket: true }, (conn, req) => {
    const id = String(req.query.id ?? 'anonymous')
    let entry = counted.get(id)
    if (entry === undefined) {
      entry = { messages: 0, bytes: 0, outOfOrder: 0, next: 1 }
      counted.set(id, entry)
    }
    conn.on('message', (data) => {
      entry.messages++
      entry.bytes += data.length
      // Messages start with "<sequence number>:".
      const colon = data.indexOf(58)
      const seq = colon > 0 ? Number(data.toString('latin1', 0, colon)) : NaN
      if (seq !== entry.next) entry.outOfOrder++
      entry.next = (Number.isInteger(seq) ? seq : entry.next) + 1
    })
    conn.on('close', onEnded(String(req.query.kind ?? 'count')))
  })

  await app.listen({ host: '127.0.0.1', port: 0 })
  return app
}

/** RSS of glibc's main malloc arena (the [heap] mapping), in bytes. */
function mainArenaRss () {
  const smaps = readFileSync('/proc/self/smaps', 'utf8')
  const start = smaps.search(/ \[heap\]\n/)
  if (start === -1) return 0
  const rss = /\nRss:\s+(\d+) kB/.exec(smaps.slice(start))
  return rss === null ? 0 : Number(rss[1]) * 1024
}

function openFds () {
  return readdirSync('/proc/self/fd').length
}

function collect () {
  // Twice: the first pass can leave finalizable garbage for the second.
  globalThis.gc()
  globalThis.gc()
}

function reading (app) {
  const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage()
  return {
    rss,
    heapTotal,
    heapUsed,
    external,
    arrayBuffers,
    fds: openFds(),
    clients: app.websocket.clients.size,
    counters: { echo: { ...echo }, ended, diagnostics, plain }
  }
}

let app
try {
  if (typeof globalThis.gc !== 'function') throw new Error('run the soak server with --expose-gc')
  app = await start()
} catch (error) {
  process.send({ failed: String(error?.stack ?? error) }, () => process.exit(1))
}

if (app !== undefined) {
  process.on('message', ({ id, request, settleMs, arena }) => {
    if (request === 'sample') process.send({ id, reading: arena ? { ...reading(app), mainArena: mainArenaRss() } : reading(app) })
    else if (request === 'measure') {
      // V8 hands the pages a full GC freed back to the OS from a background
      // thread, a few seconds later: collect, let that happen, collect again.
      collect()
      setTimeout(() => {
        collect()
        process.send({ id, reading: { ...reading(app), mainArena: mainArenaRss() } })
      }, settleMs ?? 0)
    }
    else if (request === 'releaseV8') {
      // A last-resort GC (what V8 does on a memory-pressure notification): it
      // also gives back the free pages V8 keeps pooled for reuse, which Node
      // 24's V8 holds after the heap shrinks and a plain gc() or the memory
      // reducer does not release. The first step of the trimmed readings at
      // the warmed baseline and at the end (bench/soak.mjs), after the
      // untrimmed one; malloc_trim(0) through gdb follows.
      globalThis.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' })
      setTimeout(() => process.send({ id, reading: { ...reading(app), mainArena: mainArenaRss() } }), settleMs ?? 0)
    } else if (request === 'loopDelay') {
      const ms = (ns) => Math.round(ns / 1e5) / 10
      process.send({ id, loopDelay: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) } })
      loopDelay.reset()
    } else if (request === 'peaks') {
      process.send({ id, peaks })
      peaks = {}
    } else if (request === 'counts') {
      // Then forgets them: the run asks once every /count connection has
      // closed, before a reading, so the run's own bookkeeping (one entry
      // per connection) is not in the memory compared.
      process.send({ id, counts: Object.fromEntries(counted) })
      counted.clear()
    }
    else process.send({ id, error: `unknown request ${request}` })
  })
  process.send({ ready: true, port: app.server.address().port, pid: process.pid, node: process.version })
}
