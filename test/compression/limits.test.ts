import { deflateRawSync, constants as zc } from 'node:zlib'
import t from 'tap'
import { createDeflateExtension, deflatedSizeLimit } from '../../lib/compression/deflate.js'
import { Output, ZlibContext, zlibStats } from '../../lib/compression/zlib-context.js'
import { WebSocketProtocol } from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded } from '../helpers/data.js'
import { firstError, params, received, settings, until } from '../helpers/deflate.js'
import { RecordingHandler, frame } from '../helpers/protocol.js'

const TEXT = 0x1
const BINARY = 0x2
const CONT = 0x0
const PING = 0x9
const MiB = 1 << 20

/** `mebibytes` MiB of zeros, deflated (1 GiB in about 1 MiB): 1 MiB of zeros fed through one context again and again. */
function zeroBomb (mebibytes: number): Buffer {
  const context = new ZlibContext('deflate', { windowBits: 15, level: 9, memLevel: 9 })
  const zeros = Buffer.alloc(MiB)
  const out = new Output()
  for (let i = 0; i < mebibytes; i++) {
    context.runSync(zeros, 0, out, Infinity)
    out.detach()
  }
  context.close()
  return out.take(4)
}

function server (maxMessageSize: number, p = params()): { p: WebSocketProtocol, h: RecordingHandler } {
  const h = new RecordingHandler()
  const protocol = new WebSocketProtocol({ role: 'server', maxMessageSize, extension: createDeflateExtension(p, 'server', settings()) }, h)
  return { p: protocol, h }
}

/** A client's compressed message in frames of `frameSize` bytes. */
function compressedFrames (payload: Buffer, frameSize: number, opcode = BINARY): Buffer {
  const frames: Buffer[] = []
  for (let at = 0; at < payload.length || at === 0; at += frameSize) {
    frames.push(frame({ opcode: at === 0 ? opcode : CONT, rsv1: at === 0, fin: at + frameSize >= payload.length, mask: true, payload: payload.subarray(at, at + frameSize) }))
  }
  return Buffer.concat(frames)
}

t.test('a deflate bomb (1 GiB of zeros in ~1 MiB) fails with 1009 after about a limit\'s worth of inflating', async (t) => {
  const bomb = zeroBomb(1024)
  t.ok(bomb.length < MiB + 64 * 1024, `the bomb is ${bomb.length} bytes`)
  // A small limit refuses that bomb from its wire size alone; a 40 MiB one (~40 KB) gets through to the inflater.
  const small = zeroBomb(40)
  for (const [maxMessageSize, takeover, payload] of [[MiB, true, bomb], [MiB, false, bomb], [50_000, true, small], [4 * MiB, false, bomb]] as const) {
    const { p, h } = server(maxMessageSize, params({ clientNoContextTakeover: !takeover }))
    const before = zlibStats.inflated
    // Fed in 64 KiB chunks, as reads from a socket would bring it.
    const wire = compressedFrames(payload, 256 * 1024)
    for (let at = 0; at < wire.length && p.readyState === 1; at += 65536) p.receive(wire.subarray(at, at + 65536))
    const err = await firstError(h)
    const work = zlibStats.inflated - before
    t.equal(err.closeCode, 1009, `maxMessageSize ${maxMessageSize}: closed with 1009`)
    t.equal(err.code, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
    t.ok(work > maxMessageSize && work <= maxMessageSize + 16 * 1024, `inflated ${work} bytes for a limit of ${maxMessageSize} (at most one 16 KiB chunk past it)`)
    t.same(received(h), [], 'no message delivered')
    const closeFrame = h.frames().find((f) => f.opcode === 0x8)
    t.equal(closeFrame?.payload.readUInt16BE(0), 1009, 'the close frame carries 1009')
  }
})

t.test('a message that inflates to exactly maxMessageSize is accepted; one byte more is not', async (t) => {
  for (const size of [1000, 100_000]) {
    const data = Buffer.alloc(size, 7)
    for (const extra of [0, 1]) {
      const { p, h } = server(size)
      p.receive(compressedFrames(deflateRawSync(Buffer.concat([data, Buffer.alloc(extra, 7)]), { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4), 1 << 20))
      if (extra === 0) {
        await until(h, 1)
        t.equal(received(h)[0].data.length, size, `${size} bytes: accepted`)
      } else {
        t.equal((await firstError(h)).closeCode, 1009, `${size + 1} bytes: 1009`)
      }
    }
  }
})

t.test('an incompressible message of exactly maxMessageSize is accepted though deflate made it larger', async (t) => {
  const size = 200_000
  const noise = randomBytesSeeded(prng(5), size)
  // memLevel 1: the peer's worst case, a 5-byte stored-block header per 127 bytes.
  for (const memLevel of [8, 1]) {
    const payload = deflateRawSync(noise, { memLevel, finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4)
    t.ok(payload.length > size && payload.length <= deflatedSizeLimit(size), `memLevel ${memLevel}: ${payload.length} bytes on the wire, limit ${deflatedSizeLimit(size)}`)
    const { p, h } = server(size)
    p.receive(compressedFrames(payload, 65536))
    await until(h, 1)
    t.ok(received(h)[0].data.equals(noise), 'delivered')
  }
  const { p, h } = server(size)
  p.receive(frame({ opcode: BINARY, rsv1: true, mask: true, payload: Buffer.alloc(deflatedSizeLimit(size) + 1) }))
  const err = await firstError(h)
  t.equal(err.closeCode, 1009, 'past the wire limit for compressed messages: 1009 from the header, before buffering')
  t.match(err.message, `${deflatedSizeLimit(size)} bytes`)
  const plain = server(size)
  plain.p.receive(frame({ opcode: BINARY, mask: true, payload: Buffer.alloc(size + 1) }))
  t.equal((await firstError(plain.h)).closeCode, 1009, 'an uncompressed message keeps the plain limit')
})

/** A message compressed after another with context takeover: alone, its matches reach into history a fresh peer does not have. */
function referencesHistory (): Buffer {
  const context = new ZlibContext('deflate', { windowBits: 15, level: 6, memLevel: 8 })
  const text = Buffer.from('the same words, the same words, the same words')
  context.runSync(text, 0, new Output(), Infinity)
  const out = new Output()
  context.runSync(text, 0, out, Infinity)
  context.close()
  return out.take(4)
}

t.test('corrupt compressed data fails with 1007 WS_ERR_EXTENSION_DECODE', async (t) => {
  // Ends at a block boundary (the sync flush kept whole), so a byte 0x07 there is a block of the reserved type 3.
  const large = deflateRawSync(Buffer.alloc(200_000, 'abc'), { finishFlush: zc.Z_SYNC_FLUSH })
  const corrupt: Array<[string, Buffer]> = [
    ['an invalid block type', Buffer.from([0xff, 0xff, 0xff, 0xff])],
    ['a match before the start of the history', referencesHistory()],
    ['a stored block whose length check fails', Buffer.from([0x00, 0x05, 0x00, 0x00, 0x00])],
    ['data after the final block', Buffer.concat([deflateRawSync('x'), Buffer.from('garbage')])],
    // Corrupted past the in-place budget: the error comes from the thread pool.
    ['a bad block after 200 KB of good ones', Buffer.concat([large, Buffer.from([0x07])])]
  ]
  for (const [name, payload] of corrupt) {
    for (const takeover of [true, false]) {
      const { p, h } = server(MiB, params({ clientNoContextTakeover: !takeover }))
      p.receive(compressedFrames(payload, 1 << 20, TEXT))
      const err = await firstError(h)
      t.equal(err.closeCode, 1007, `${name} (context takeover ${String(takeover)}): 1007`)
      t.equal(err.code, 'WS_ERR_EXTENSION_DECODE')
      t.ok(err.cause instanceof Error, 'zlib\'s error as the cause')
    }
  }
})

t.test('compressed text that inflates to invalid UTF-8 fails with 1007 WS_ERR_INVALID_UTF8', async (t) => {
  const { p, h } = server(MiB)
  p.receive(compressedFrames(deflateRawSync(Buffer.from([0x68, 0xc3, 0x28]), { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, -4), 100, TEXT))
  const err = await firstError(h)
  t.equal(err.closeCode, 1007)
  t.equal(err.code, 'WS_ERR_INVALID_UTF8')
})

t.test('RSV1 rules with permessage-deflate negotiated: 1002 WS_ERR_UNEXPECTED_RSV_1 on a control frame or a continuation', async (t) => {
  const cases: Array<[string, Buffer]> = [
    ['RSV1 on a ping', frame({ opcode: PING, rsv1: true, mask: true, payload: 'p' })],
    ['RSV1 on a close', frame({ opcode: 0x8, rsv1: true, mask: true, payload: Buffer.from([0x03, 0xe8]) })],
    ['RSV1 on a continuation of a compressed message', Buffer.concat([
      frame({ opcode: TEXT, rsv1: true, fin: false, mask: true, payload: deflateRawSync('ab', { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, 2) }),
      frame({ opcode: CONT, rsv1: true, mask: true, payload: Buffer.alloc(3) })])],
    ['RSV1 on a continuation of a plain message', Buffer.concat([
      frame({ opcode: TEXT, fin: false, mask: true, payload: 'a' }),
      frame({ opcode: CONT, rsv1: true, mask: true, payload: 'b' })])]
  ]
  for (const [name, bytes] of cases) {
    const { p, h } = server(MiB)
    p.receive(bytes)
    const err = await firstError(h)
    t.equal(err.closeCode, 1002, `${name}: 1002`)
    t.equal(err.code, 'WS_ERR_UNEXPECTED_RSV_1')
  }
  const { p, h } = server(MiB)
  p.receive(frame({ opcode: TEXT, mask: true, payload: 'a', rsv2: true }))
  t.equal((await firstError(h)).code, 'WS_ERR_UNEXPECTED_RSV_2_3', 'RSV2 stays refused: permessage-deflate defines only RSV1')
})
