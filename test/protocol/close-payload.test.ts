import t from 'tap'
import { encodeClosePayload, parseClosePayload, truncateReason } from '../../lib/protocol/close-payload.js'
import { ProtocolError } from '../../lib/protocol/errors.js'

t.test('parseClosePayload: the close payload as a value, or the error to fail with', async (t) => {
  t.same(parseClosePayload(Buffer.alloc(0)), { code: 1005, reason: '' }, 'no payload: 1005, no reason')
  t.same(parseClosePayload(encodeClosePayload(4001, 'bye')), { code: 4001, reason: 'bye' }, 'round trip')
  const cases: Array<[string, Buffer, number]> = [
    ['one byte', Buffer.of(0x03), 1002],
    ['reserved code 1005', Buffer.of(0x03, 0xed), 1002],
    ['unassigned code 2000', Buffer.of(0x07, 0xd0), 1002],
    ['invalid UTF-8 reason', Buffer.of(0x03, 0xe8, 0xc3, 0x28), 1007]
  ]
  for (const [name, payload, closeCode] of cases) {
    const result = parseClosePayload(payload)
    t.ok(result instanceof ProtocolError, `${name}: an error`)
    t.equal((result as ProtocolError).closeCode, closeCode, `${name}: fails with ${closeCode}`)
  }
})

t.test('encodeClosePayload checks what may be sent', async (t) => {
  t.equal(encodeClosePayload().length, 0, 'no code: empty payload')
  t.throws(() => encodeClosePayload(undefined, 'why'), RangeError, 'a reason needs a code')
  t.throws(() => encodeClosePayload(1006), RangeError, '1006 may not be sent')
  t.throws(() => encodeClosePayload(1000, 'x'.repeat(124)), RangeError, 'reasons are at most 123 bytes')
  t.equal(encodeClosePayload(1000, 'x'.repeat(123)).length, 125, '123 bytes fit')
})

t.test('truncateReason cuts on a code point boundary', async (t) => {
  t.equal(truncateReason('short'), 'short')
  const cut = truncateReason('é'.repeat(100)) // 200 bytes
  t.equal(Buffer.byteLength(cut), 122, 'the 62nd é would make 124 bytes: 61 fit')
  t.equal(cut, 'é'.repeat(61))
})
