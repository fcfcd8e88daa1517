import t from 'tap'
import { CloseCode, MAX_CLOSE_REASON_BYTES, isValidWireCloseCode } from '../../lib/protocol/index.js'

// RFC 6455 §7.4: 1000-1003 and 1007-1014 are registered for use on the wire
// (1004 is reserved, 1005/1006/1015 must never be sent, 1016-2999 are unassigned),
// 3000-4999 belong to libraries and applications.
function rfcRule (code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999)
}

t.test('isValidWireCloseCode agrees with the RFC rule for every code 0..5000', async (t) => {
  const wrong: number[] = []
  for (let code = 0; code <= 5000; code++) {
    if (isValidWireCloseCode(code) !== rfcRule(code)) wrong.push(code)
  }
  t.same(wrong, [], 'no code disagrees')
})

t.test('boundaries and well-known values', async (t) => {
  const valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
  const invalid = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 5001, 65535, 65536, -1, 1000.5, NaN]
  for (const code of valid) t.equal(isValidWireCloseCode(code), true, `${code} is valid`)
  for (const code of invalid) t.equal(isValidWireCloseCode(code), false, `${code} is not valid`)
})

t.test('CloseCode constants carry the registered numbers', async (t) => {
  t.same(CloseCode, {
    Normal: 1000,
    GoingAway: 1001,
    ProtocolError: 1002,
    UnsupportedData: 1003,
    NoStatusReceived: 1005,
    Abnormal: 1006,
    InvalidPayload: 1007,
    PolicyViolation: 1008,
    MessageTooBig: 1009,
    MandatoryExtension: 1010,
    InternalError: 1011,
    ServiceRestart: 1012,
    TryAgainLater: 1013,
    BadGateway: 1014,
    TlsHandshake: 1015
  })
  t.equal(isValidWireCloseCode(CloseCode.NoStatusReceived), false, '1005 is only reported, never sent')
  t.equal(isValidWireCloseCode(CloseCode.Abnormal), false, '1006 is only reported, never sent')
  t.equal(isValidWireCloseCode(CloseCode.TlsHandshake), false, '1015 is only reported, never sent')
  t.equal(MAX_CLOSE_REASON_BYTES, 123, '125-byte control payload minus the 2-byte code')
})
