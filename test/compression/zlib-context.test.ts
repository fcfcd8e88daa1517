import zlib from 'node:zlib'
import t from 'tap'
import { Output, ZlibContext, zlibStats } from '../../lib/compression/zlib-context.js'

// lib/compression/zlib-context.ts is the one place that uses Node's zlib
// internals: a stream's `_handle.writeSync(flush, in, inOff, inLen, out,
// outOff, outLen)` and `_writeState` ([availOut, availIn]). These tests
// pin what it relies on, so a Node version that changes them fails here,
// loudly, rather than corrupting messages. Run on 20, 22 and 24.

const TRAILER = Buffer.from([0, 0, 0xff, 0xff])

t.test(`Node ${process.version}: the internals exist with the expected shape`, async (t) => {
  const stream = zlib.createInflateRaw() as unknown as { _handle: { writeSync: unknown, reset: unknown }, _writeState: unknown, errored: unknown, bytesWritten: unknown }
  t.type(stream._handle.writeSync, 'function', '_handle.writeSync')
  t.ok(stream._writeState instanceof Uint32Array && (stream._writeState as Uint32Array).length === 2, '_writeState is a Uint32Array(2)')
  t.equal(stream.errored, null, 'errored (public since Node 18)')
  t.equal(stream.bytesWritten, 0, 'bytesWritten (public)')
  // Why not `_processChunk`: the helpers' sync path closes the stream after one call.
  const once = zlib.createDeflateRaw() as unknown as { _processChunk: (b: Buffer, f: number) => Buffer, _handle: unknown }
  once._processChunk(Buffer.from('x'), zlib.constants.Z_SYNC_FLUSH)
  t.equal(once._handle, null, '_processChunk without a callback is one-shot')
})

t.test('runSync: deflate with a sync flush, inflate it back, across calls on one context', async (t) => {
  const deflater = new ZlibContext('deflate', { windowBits: 15, level: 6, memLevel: 8 })
  const inflater = new ZlibContext('inflate', { windowBits: 15 })
  for (const [i, text] of ['hello hello hello', 'hello again, hello again', 'x'.repeat(200_000)].entries()) {
    const out = new Output()
    t.equal(deflater.runSync(Buffer.from(text), 0, out, Infinity), text.length, 'all input taken')
    t.ok(out.endsWith(TRAILER), 'ends with the empty stored block of a sync flush')
    const payload = out.take(4)
    if (i === 0) t.same(payload, zlib.deflateRawSync(text, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).subarray(0, -4), 'the first message: what zlib\'s own helper makes')
    const back = new Output()
    inflater.runSync(payload, 0, back, Infinity)
    inflater.runSync(TRAILER, 0, back, Infinity)
    t.equal(back.take().toString(), text)
  }
  deflater.close()
  inflater.close()
})

t.test('runSync stops one byte past the limit; the rest follows', async (t) => {
  const payload = zlib.deflateRawSync(Buffer.alloc(1_000_000), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
  const inflater = new ZlibContext('inflate', { windowBits: 15 })
  const before = zlibStats.inflated
  const out = new Output()
  const at = inflater.runSync(payload, 0, out, 1000)
  t.equal(out.length, 1001, 'stopped at limit + 1')
  t.equal(zlibStats.inflated - before, 1001, 'and inflated no more than that')
  inflater.runSync(payload, at, out, Infinity)
  t.equal(out.take().length, 1_000_000, 'the rest came on the next call')
  inflater.close()
})

t.test('runSync reports the end of a DEFLATE stream (BFINAL) with input left', async (t) => {
  const inflater = new ZlibContext('inflate', { windowBits: 15 })
  const out = new Output()
  const input = Buffer.concat([zlib.deflateRawSync('end'), TRAILER])
  t.equal(inflater.runSync(input, 0, out, Infinity), input.length - 4, 'the trailer is left')
  t.ok(inflater.ended)
  inflater.reset()
  t.notOk(inflater.ended, 'reset starts afresh')
  inflater.close()
})

t.test('runSync throws zlib\'s error and the context is unusable after it', async (t) => {
  const inflater = new ZlibContext('inflate', { windowBits: 15 })
  t.throws(() => inflater.runSync(Buffer.from([0xff, 0xff]), 0, new Output(), Infinity), { code: 'Z_DATA_ERROR' })
  t.notOk(inflater.usable)
  inflater.close()
})

t.test('runAsync: output counted as it comes, stopped past the limit; errors and close settle it', async (t) => {
  const zeros = zlib.deflateRawSync(Buffer.alloc(5_000_000), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
  const inflater = new ZlibContext('inflate', { windowBits: 15 })
  const out = new Output()
  const [err, over] = await new Promise<[Error | null, boolean]>((resolve) => inflater.runAsync([zeros], out, 100_000, (e, o) => resolve([e, o])))
  t.equal(err, null)
  t.ok(over, 'past the limit')
  t.ok(out.length > 100_000 && out.length <= 100_000 + 16 * 1024, `stopped within one chunk (${out.length})`)
  t.notOk(inflater.usable, 'destroyed to stop zlib')
  inflater.close()

  const bad = new ZlibContext('inflate', { windowBits: 15 })
  const failure = await new Promise<Error | null>((resolve) => bad.runAsync([Buffer.from([0xff, 0xff])], new Output(), Infinity, (e) => resolve(e)))
  t.match(failure, { code: 'Z_DATA_ERROR' })
  bad.close()

  const closing = new ZlibContext('deflate', { windowBits: 15, level: 6, memLevel: 8 })
  const closed = new Promise<Error | null>((resolve) => closing.runAsync([Buffer.alloc(2_000_000, 'a')], new Output(), Infinity, (e) => resolve(e)))
  closing.close()
  t.match(await closed, /closed/, 'closing settles the job in progress')
  t.notOk(closing.usable)
})
