// Measures what lib/compression's choices rest on (the tables in
// lib/compression/codec.ts, context-pool.ts and deflate.ts): zlib work in
// place vs on the thread pool, a context per message vs a shared one reset,
// and the memory a kept context costs. Node's zlib only; no build needed.
//
//   node --expose-gc scripts/measure-deflate.mjs [time|memory]
//
// It uses the same internals as lib/compression/zlib-context.ts
// (_handle.writeSync, _writeState) to time the in-place path.

import { execFileSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import zlib from 'node:zlib'

const { Z_SYNC_FLUSH } = zlib.constants
const OPTIONS = { level: 6, memLevel: 8, windowBits: 15 }

function json (size) {
  let out = '['
  for (let i = 0; out.length < size; i++) out += JSON.stringify({ id: i, name: `user${i * 7919 % 1000}`, active: i % 3 === 0, score: (i * 31) % 997 / 10 }) + ','
  return Buffer.from(out.slice(0, size))
}

/** One message through a kept stream, in place (what ZlibContext#runSync does). */
function runSync (stream, input) {
  const handle = stream._handle
  const state = stream._writeState
  const chunks = []
  let inOff = 0
  let inLen = input.length
  for (;;) {
    const out = Buffer.allocUnsafe(65536)
    handle.writeSync(Z_SYNC_FLUSH, input, inOff, inLen, out, 0, out.length)
    chunks.push(out.subarray(0, out.length - state[0]))
    inOff += inLen - state[1]
    inLen = state[1]
    if (state[0] !== 0) return Buffer.concat(chunks)
  }
}

function perMessage (iterations, fn) {
  for (let i = 0; i < Math.min(iterations, 200); i++) fn()
  const start = performance.now()
  for (let i = 0; i < iterations; i++) fn()
  return (performance.now() - start) * 1000 / iterations
}

function asyncOnce (stream, data) {
  return new Promise((resolve, reject) => {
    const chunks = []
    const onData = (c) => chunks.push(c)
    stream.on('data', onData)
    stream.write(data, (err) => { stream.off('data', onData); err ? reject(err) : resolve(Buffer.concat(chunks)) })
  })
}

async function time () {
  const rows = []
  for (const size of [256, 1024, 3072, 8192, 16384, 65536, 262144, 1048576]) {
    const data = json(size)
    const iterations = Math.max(20, Math.floor(3e6 / (size + 2000)))
    const kept = zlib.createDeflateRaw(OPTIONS)
    const shared = zlib.createDeflateRaw(OPTIONS)
    const payload = zlib.deflateRawSync(data, { ...OPTIONS, finishFlush: Z_SYNC_FLUSH })
    const inflater = zlib.createInflateRaw({ windowBits: 15 })
    const stream = zlib.createDeflateRaw({ ...OPTIONS, flush: Z_SYNC_FLUSH })
    const count = Math.min(iterations, 2000)
    for (let i = 0; i < 20; i++) await asyncOnce(stream, data)
    const elu0 = performance.eventLoopUtilization()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < count; i++) await asyncOnce(stream, data)
    const elu = performance.eventLoopUtilization(elu0)
    const cpu = process.cpuUsage(cpu0)
    rows.push({
      'size (JSON)': size,
      'deflate, new context µs': perMessage(iterations, () => zlib.deflateRawSync(data, { ...OPTIONS, finishFlush: Z_SYNC_FLUSH })).toFixed(1),
      'deflate, shared + reset µs': perMessage(iterations, () => { runSync(shared, data); shared.reset() }).toFixed(1),
      'deflate, kept context µs': perMessage(iterations, () => runSync(kept, data)).toFixed(1),
      'deflate, thread pool: loop µs': (elu.active * 1000 / count).toFixed(1),
      'deflate, thread pool: CPU µs': ((cpu.user + cpu.system) / count).toFixed(1),
      'deflate, thread pool: wall µs': ((performance.now() - t0) * 1000 / count).toFixed(1),
      'inflate, shared + reset µs': perMessage(iterations, () => { runSync(inflater, payload); inflater.reset() }).toFixed(1)
    })
  }
  console.table(rows)
}

/** RSS per context of one configuration, in a process of its own (freed memory would be reused by the next). */
function memoryOne (kind, windowBits, memLevel) {
  const message = json(96 * 1024)
  const input = kind === 'deflate' ? message : zlib.deflateRawSync(message, { windowBits: Math.max(windowBits, 9), finishFlush: Z_SYNC_FLUSH })
  const count = 1000
  global.gc()
  const before = process.memoryUsage().rss
  const kept = []
  for (let i = 0; i < count; i++) {
    const s = kind === 'deflate' ? zlib.createDeflateRaw({ windowBits, memLevel }) : zlib.createInflateRaw({ windowBits })
    runSync(s, input) // a context that has seen traffic: its window and tables are touched
    kept.push(s)
  }
  global.gc()
  console.log(((process.memoryUsage().rss - before) / count / 1024).toFixed(1))
}

function memory () {
  const rows = []
  for (const [kind, windowBits, memLevel] of [['deflate', 15, 8], ['deflate', 15, 9], ['deflate', 12, 5], ['deflate', 9, 8], ['inflate', 15, 0], ['inflate', 12, 0], ['inflate', 9, 0]]) {
    const out = execFileSync(process.execPath, ['--expose-gc', new URL(import.meta.url).pathname, 'memory-one', kind, String(windowBits), String(memLevel)], { encoding: 'utf8' })
    rows.push({ context: `${kind} window ${windowBits}${memLevel ? ` memLevel ${memLevel}` : ''}`, 'RSS per context (KiB)': out.trim().split('\n').at(-1) })
  }
  console.table(rows)
}

const what = process.argv[2]
if (what === 'memory-one') {
  memoryOne(process.argv[3], Number(process.argv[4]), Number(process.argv[5]))
  process.exit(0)
}
console.log(`Node ${process.version}`)
if (what !== 'memory') await time()
if (what !== 'time') {
  if (typeof global.gc !== 'function') console.log('memory: run with --expose-gc')
  else memory()
}
