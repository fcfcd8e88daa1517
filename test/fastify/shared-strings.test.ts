// The table of request-head strings kept once for every upgrade
// (lib/fastify/shared-strings.ts): what it holds, what it refuses, its bounds.
// The table is process-wide; each tap file runs in a process of its own.

import t from 'tap'
import { SHARED_STRING_LIMITS, shared, shareHeaderStrings, sharedStringCount } from '../../lib/fastify/shared-strings.js'

t.test('an equal string is held once; longer strings than the bound are not held', async (t) => {
  const before = sharedStringCount()
  const first = shared(['web', 'socket'].join(''))
  t.equal(first, 'websocket')
  t.equal(shared(['websock', 'et'].join('')), 'websocket')
  t.equal(sharedStringCount(), before + 1, 'the second equal string found the first')
  const long = 'x'.repeat(SHARED_STRING_LIMITS.length + 1)
  t.equal(shared(long), long)
  t.equal(sharedStringCount(), before + 1, 'a string over the length bound is not held')
})

t.test('header names and the values clients repeat are held, per-connection values are not; the headers read the same', async (t) => {
  const rawHeaders = [
    'Host', '127.0.0.1:3000', 'Upgrade', 'websocket', 'Connection', 'Upgrade',
    'Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version', '13', 'Cookie', 'session=secret'
  ]
  const headers = {
    host: '127.0.0.1:3000', upgrade: 'websocket', connection: 'Upgrade',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', cookie: 'session=secret'
  }
  const rawCopy = rawHeaders.slice()
  const headersCopy = { ...headers }
  shareHeaderStrings(rawHeaders, headers)
  t.same(rawHeaders, rawCopy, 'rawHeaders reads the same')
  t.same(headers, headersCopy, 'headers read the same')
  const held = sharedStringCount()
  for (const name of ['Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Cookie']) shared(name)
  for (const value of ['127.0.0.1:3000', 'websocket', '13']) shared(value)
  t.equal(sharedStringCount(), held, 'the names and the repeated values were held already')
  shared('dGhlIHNhbXBsZSBub25jZQ==')
  shared('session=secret')
  t.equal(sharedStringCount(), held + 2, 'the key and the cookie were not')
})

t.test('frozen headers (a hook may put its own) are left as they are', async (t) => {
  const headers = Object.freeze({ host: 'frozen.example' })
  t.doesNotThrow(() => { shareHeaderStrings(['Host', 'frozen.example'], headers) })
  t.equal(headers.host, 'frozen.example')
})

t.test('the table stops growing at its bound and still answers', async (t) => {
  for (let i = 0; sharedStringCount() < SHARED_STRING_LIMITS.entries; i++) shared(`filler-${i}`)
  t.equal(sharedStringCount(), SHARED_STRING_LIMITS.entries)
  t.equal(shared('one more'), 'one more')
  t.equal(sharedStringCount(), SHARED_STRING_LIMITS.entries, 'nothing is added once full')
  t.equal(shared('websocket'), 'websocket', 'what it holds is still found')
})
