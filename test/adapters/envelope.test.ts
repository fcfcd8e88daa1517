// The Redis adapter's envelope: a 16-byte header (version, text/binary flag,
// origin id, sequence number) then the payload's bytes as published.

import { randomBytes } from 'node:crypto'
import t from 'tap'
import { decodeEnvelope, encodeEnvelope, HEADER_SIZE, MAX_SEQUENCE } from '../../lib/adapters/envelope.js'

const origin = randomBytes(8)

t.test('binary payloads round-trip byte for byte, with the flag, origin and sequence', async (t) => {
  const payload = randomBytes(4096)
  payload[0] = 0xff // not UTF-8: carried as bytes, never decoded
  const wire = encodeEnvelope(origin, 42, payload, true)
  t.equal(wire.length, HEADER_SIZE + payload.length, 'the header is the only overhead')
  const decoded = decodeEnvelope(wire)!
  t.equal(decoded.binary, true)
  t.equal(decoded.origin, origin.toString('latin1'))
  t.equal(decoded.sequence, 42)
  t.ok(decoded.payload.equals(payload))
})

t.test('a string is written in as UTF-8, flagged as text', async (t) => {
  const text = 'héllo, wörld ✓ 𝄞'
  const decoded = decodeEnvelope(encodeEnvelope(origin, 1, text, false))!
  t.equal(decoded.binary, false)
  t.equal(decoded.payload.toString('utf8'), text)
  t.equal(decoded.payload.length, Buffer.byteLength(text))
})

t.test('a string published as binary keeps its bytes and the binary flag', async (t) => {
  const decoded = decodeEnvelope(encodeEnvelope(origin, 1, 'abc', true))!
  t.equal(decoded.binary, true)
  t.equal(decoded.payload.toString(), 'abc')
})

t.test('sequence numbers up to 2^48 - 1 survive; empty payloads too', async (t) => {
  const decoded = decodeEnvelope(encodeEnvelope(origin, MAX_SEQUENCE, Buffer.alloc(0), false))!
  t.equal(decoded.sequence, MAX_SEQUENCE)
  t.equal(decoded.payload.length, 0)
})

t.test('what is not one of our envelopes decodes to null', async (t) => {
  t.equal(decodeEnvelope(Buffer.from('hello from redis-cli')), null, 'another publisher on the channel')
  t.equal(decodeEnvelope(Buffer.alloc(HEADER_SIZE - 1, 1)), null, 'shorter than a header')
  const future = encodeEnvelope(origin, 1, 'x', false)
  future[0] = 2
  t.equal(decodeEnvelope(future), null, 'another version')
})
