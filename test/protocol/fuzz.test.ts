import t from 'tap'
import { encodeFrame, Opcode, WebSocketProtocol, type ProtocolHandler } from '../../lib/protocol/index.js'
import { prng, randomBytesSeeded, randomInt } from '../helpers/data.js'

// Hostile input must end in a close code, never in an exception escaping into the I/O layer.

function handler (log: { errors: number, messages: number, transportClosed: number }): ProtocolHandler {
  return {
    write () {},
    onMessage () { log.messages++ },
    onPing () {},
    onPong () {},
    onError () { log.errors++ },
    closeTransport () { log.transportClosed++ }
  }
}

t.test('random bytes in random chunks never throw, in either role', async (t) => {
  const random = prng(0xf022)
  let failures = 0
  let errorsSeen = 0
  for (let round = 0; round < 3000; round++) {
    const role = round % 2 === 0 ? 'server' : 'client'
    const log = { errors: 0, messages: 0, transportClosed: 0 }
    const protocol = new WebSocketProtocol({ role, maxMessageSize: 4096 }, handler(log))
    const input = randomBytesSeeded(random, randomInt(random, 1, 600))
    try {
      for (let offset = 0; offset < input.length;) {
        const size = randomInt(random, 1, 64)
        protocol.receive(input.subarray(offset, offset + size))
        offset += size
      }
      protocol.transportClosed()
    } catch {
      failures++
    }
    if (log.errors > 1) failures++
    errorsSeen += log.errors
  }
  t.equal(failures, 0, 'no exception, and at most one protocol error per connection')
  t.ok(errorsSeen > 0, 'the random input did break rules')
})

t.test('valid frames with one random byte flipped never throw', async (t) => {
  const random = prng(0xb17)
  let failures = 0
  for (let round = 0; round < 3000; round++) {
    const log = { errors: 0, messages: 0, transportClosed: 0 }
    const protocol = new WebSocketProtocol({ role: 'server', maxMessageSize: 1 << 16 }, handler(log))
    const frames = Buffer.concat([
      ...encodeFrame(Opcode.Text, 'héllo wörld', { mask: true, fin: false }),
      ...encodeFrame(Opcode.Ping, 'p', { mask: true }),
      ...encodeFrame(Opcode.Continuation, Buffer.from('✓ done'), { mask: true }),
      ...encodeFrame(Opcode.Binary, randomBytesSeeded(random, randomInt(random, 0, 300)), { mask: true }),
      ...encodeFrame(Opcode.Close, Buffer.from([0x03, 0xe8, 0x6f, 0x6b]), { mask: true })
    ])
    frames[randomInt(random, 0, frames.length - 1)] ^= 1 << randomInt(random, 0, 7)
    try {
      for (let offset = 0; offset < frames.length;) {
        const size = randomInt(random, 1, 40)
        protocol.receive(frames.subarray(offset, offset + size))
        offset += size
      }
    } catch {
      failures++
    }
    if (log.errors > 1) failures++
  }
  t.equal(failures, 0)
})
