import { deflateRawSync, inflateRawSync, constants as zc } from 'node:zlib'
import t from 'tap'
import { createDeflateExtension } from '../../lib/compression/deflate.js'
import { compressOnce, windowBitsFor } from '../../lib/compression/shared.js'
import { WebSocketProtocol } from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded } from '../helpers/data.js'
import { DeflateInspector, params, received, settings, until } from '../helpers/deflate.js'
import { RecordingHandler, frame } from '../helpers/protocol.js'

t.test('windowBitsFor: the smallest window (9..15) that covers a message', async (t) => {
  t.same([1, 512, 513, 1024, 5000, 32768, 32769, 1e6].map(windowBitsFor), [9, 9, 10, 10, 13, 15, 15, 15])
})

t.test('compressOnce: null under the threshold, for nothing, and when deflate does not shrink it', async (t) => {
  t.equal(compressOnce(Buffer.from('x'.repeat(99)), settings({ threshold: 100 })), null)
  t.equal(compressOnce(Buffer.alloc(0), settings()), null)
  t.equal(compressOnce(randomBytesSeeded(prng(1), 5000), settings()), null)
})

t.test('compressOnce: one payload every compatible receiver decodes, with the window it reports', async (t) => {
  for (const [size, serverMaxWindowBits] of [[300, 15], [3000, 15], [3000, 10], [100_000, 12], [100_000, 15]] as const) {
    const text = Buffer.from(Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i * 7 % 13))).join(''))
    const once = compressOnce(text, settings({ serverMaxWindowBits }))!
    t.ok(once !== null && once.payload.length < text.length, `${size} bytes → ${once.payload.length}`)
    t.equal(once.windowBits, Math.min(serverMaxWindowBits, windowBitsFor(size)), 'window: the smaller of the compressor\'s and the message\'s')
    const inspector = new DeflateInspector()
    t.ok(inspector.message(once.payload).equals(text), 'a plain DEFLATE reader agrees')
    t.ok(inspector.maxDistance <= 1 << once.windowBits, `farthest match ${inspector.maxDistance} within 2^${once.windowBits}`)
    // Received as a broadcast frame by clients that agreed to that window (and no server context takeover).
    const h = new RecordingHandler()
    const client = new WebSocketProtocol({ role: 'client', maxMessageSize: 1 << 20, extension: createDeflateExtension(params({ serverNoContextTakeover: true, serverMaxWindowBits: once.windowBits }), 'client', settings()) }, h)
    client.receive(Buffer.concat([frame({ opcode: 0x1, rsv1: true, payload: once.payload }), frame({ opcode: 0x1, rsv1: true, payload: once.payload })]))
    await until(h, 2)
    t.ok(received(h).every((m) => m.data.equals(text)), 'a client with that window decodes it, twice over')
    t.ok(inflateRawSync(Buffer.concat([once.payload, Buffer.from([0, 0, 0xff, 0xff])]), { windowBits: Math.max(once.windowBits, 9), finishFlush: zc.Z_SYNC_FLUSH }).equals(text), 'zlib agrees')
  }
  // The same as compressing it fresh at that level.
  const data = Buffer.from('{"a":1,"b":[1,2,3],"c":"hello hello hello"}'.repeat(50))
  t.ok(compressOnce(data, settings())!.payload.equals(deflateRawSync(data, { level: 6, memLevel: 8, finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)), 'byte for byte zlib\'s output')
})
