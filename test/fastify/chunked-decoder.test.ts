import http from 'node:http'
import net from 'node:net'
import t from 'tap'
import { ChunkedDecoder } from '../../lib/fastify/chunked-decoder.js'
import { build, listen } from '../helpers/app.js'

// The chunked decoder reads the bodies of upgrade requests answered as plain
// HTTP where Node cannot be asked to parse them (Node 20). A second parser
// laxer than Node's own is how request smuggling starts, so this file checks a
// corpus against Node itself: each body once without Upgrade to a plain Node
// server (llhttp decides) and once with Upgrade: h2c through the plugin (our
// decoder decides).
//
// Where shouldUpgradeCallback exists, Node's parser reads the plugin's side as
// well, and the reference becomes the same request, Upgrade included, to the
// plain Node server: with the plugin, Node must treat it as it does without.
// (That is not always as without Upgrade: llhttp still flags the message as an
// upgrade, so Node drops its parse errors, and reads a request whose
// Transfer-Encoding is not chunked as having no body.)

const NODE_PARSES_THEM = typeof (new http.Server() as { shouldUpgradeCallback?: unknown }).shouldUpgradeCallback === 'function'

const END = '0\r\n\r\n'
const ok7 = (sizeLine: string): string => `${sizeLine}\r\nabcdefg\r\n${END}`
const ext = (extension: string): string => ok7('7' + extension)
const trailer = (lines: string): string => `7\r\nabcdefg\r\n0\r\n${lines}\r\n`

/** [name, body as latin1 text, Transfer-Encoding header (default chunked)] */
const CORPUS: Array<[string, string, string?]> = [
  // Accepted by Node
  ['one chunk', ok7('7')],
  ['several chunks', '3\r\nabc\r\n4\r\ndefg\r\n1\r\nh\r\n' + END],
  ['no data at all', END],
  ['uppercase hex', 'A\r\nabcdefghij\r\n' + END],
  ['lowercase hex', 'a\r\nabcdefghij\r\n' + END],
  ['leading zeros', ok7('0007')],
  ['20,000 leading zeros', ok7('0'.repeat(20_000) + '7')],
  ['zero chunk written 00', '7\r\nabcdefg\r\n00\r\n\r\n'],
  ['every byte value as data', `100\r\n${Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('')}\r\n${END}`],
  ['CRLF and NUL inside the data', ok7('7').replace('abcdefg', 'a\r\n\0\r\nb')],
  ['a 64 KiB chunk', `10000\r\n${'x'.repeat(65_536)}\r\n${END}`],
  ['extension name', ext(';a')],
  ['extension name=token', ext(';a=b')],
  ['several extensions', ext(';a=b;c;d="e f"')],
  ['extension with an empty value', ext(';a=')],
  ['extension with an empty name', ext(';=b')],
  ['empty extension before another', ext(';;b')],
  ['quoted value with escapes', ext(';a="b\\"c\\\\d"')],
  ['quoted value with a tab and obs-text', ext(';a="b\tc\xe9"')],
  ['quoted-pair of obs-text', ext(';a="\\\xe9"')],
  ['token then quoted value', ext(';a=x"b"')],
  ['quoted value then another extension', ext(';a="b";c')],
  ['extensions on the last chunk', '7\r\nabcdefg\r\n0;a=b\r\n\r\n'],
  ['16 KiB of extensions', ext(';' + 'a'.repeat(16_384))],
  ['8 KiB of extensions on each of two chunks', `1;${'a'.repeat(9000)}\r\na\r\n1;${'a'.repeat(9000)}\r\na\r\n${END}`],
  ['a trailer', trailer('X-T: y\r\n')],
  ['trailers without spaces, with tabs, empty, with colons and obs-text', trailer('A:b\r\nB:\t c \t\r\nC:\r\nD:: e\r\nE: \xe9\r\n')],
  ['framing-like trailer names', trailer('Connection: close\r\nUpgrade: foo\r\nTransfer-Encodingx: 1\r\nContent-Lengths: 2\r\n')],
  ['a trailer just under the size limit', trailer('X-T:' + 'y'.repeat(16_380) + '\r\n')],
  ['Transfer-Encoding gzip, chunked', ok7('7'), 'gzip, chunked'],
  // Refused by Node
  ['space after the size', ok7('7 ')],
  ['space before the size', ok7(' 7')],
  ['tab after the size', ok7('7\t')],
  ['NBSP after the size', ok7('7\xa0')],
  ['NUL after the size', ok7('7\0')],
  ['empty size', ok7('')],
  ['0x prefix', ok7('0x7')],
  ['+ sign', ok7('+7')],
  ['- sign', ok7('-7')],
  ['bare LF after the size', '7\nabcdefg\r\n' + END],
  ['bare CR after the size', '7\rabcdefg\r\n' + END],
  ['CR CR LF after the size', '7\r\r\nabcdefg\r\n' + END],
  ['bare LF after the data', '7\r\nabcdefg\n' + END],
  ['CR then junk after the data', '7\r\nabcdefg\rX' + END],
  ['data longer than its size', '7\r\nabcdefgh\r\n' + END],
  ['no CRLF after the data', '7\r\nabcdefg' + END],
  ['an empty line before the size', '\r\n' + ok7('7')],
  ['bare LF after the last chunk', '7\r\nabcdefg\r\n0\n\r\n'],
  ['bare LF ending the body', '7\r\nabcdefg\r\n0\r\n\n'],
  ['bare CR ending the body', '7\r\nabcdefg\r\n0\r\n\rX'],
  ['size above 2^64', 'fffffffffffffffff\r\n'],
  ['size of 2^64', '10000000000000000\r\n'],
  ['size of 2^53, data cut short', '20000000000000\r\nab'],
  ['size of 2^48-1, data cut short', 'ffffffffffff\r\nab'],
  ['body cut short in the data', '7\r\nabc'],
  ['body without its last chunk', '7\r\nabcdefg\r\n'],
  ['body without the final CRLF', '7\r\nabcdefg\r\n0\r\n'],
  ['bare CR inside an extension name', ext(';a\rb')],
  ['lone ;', ext(';')],
  ['; at the end', ext(';a;')],
  ['space after ;', ext('; a=b')],
  ['space before ;', ext(' ;a=b')],
  ['tab after ;', ext(';\ta')],
  ['space before =', ext(';a =b')],
  ['space after =', ext(';a= b')],
  ['space after the value', ext(';a=b ')],
  ['space inside the name', ext(';a b')],
  ['non-token name', ext(';\xe9')],
  ['== in an extension', ext(';a==b')],
  ['= twice', ext(';a=b=c')],
  ['quoted value with CRLF inside', ext(';a="b\r\nc"')],
  ['quoted value with a control byte', ext(';a="\x01"')],
  ['quoted value with DEL', ext(';a="\x7f"')],
  ['quoted-pair of a control byte', ext(';a="b\\\x01"')],
  ['unterminated quoted value', ext(';a="b')],
  ['junk after a quoted value', ext(';a="b"x')],
  ['two quoted strings', ext(';a="b""c"')],
  ['token after a quoted value', ext(';a=b"c"d')],
  ['CR CR LF after a quoted value', ext(';a="b"\r')],
  ['more than 16 KiB of extensions', ext(';' + 'a'.repeat(16_385))],
  ['more than 16 KiB of extensions on the last chunk', `0;${'a'.repeat(17_000)}\r\n\r\n`],
  ['obs-fold in the trailers', trailer('X-T: y\r\n z\r\n')],
  ['trailer ended by a bare LF', trailer('X-T: y\n')],
  ['trailer with CR CR LF', trailer('X-T: y\r\r\n')],
  ['space before the colon', trailer('X-T : y\r\n')],
  ['empty trailer name', trailer(': y\r\n')],
  ['trailer without a colon', trailer('X-T\r\n')],
  ['trailer line starting with a space', trailer(' X-T: y\r\n')],
  ['non-token trailer name', trailer('X@T: y\r\n')],
  ['NUL in a trailer value', trailer('X-T: y\0\r\n')],
  ['DEL in a trailer value', trailer('X-T: y\x7f\r\n')],
  ['bare CR in a trailer value', trailer('X-T: a\rb\r\n')],
  ['Content-Length trailer', trailer('Content-Length: 5\r\n')],
  ['Transfer-Encoding trailer', trailer('transfer-encoding: chunked\r\n')],
  ['a trailer at the size limit', trailer('X-T:' + 'y'.repeat(16_381) + '\r\n')],
  ['trailers over the size limit together', trailer(`X-T: ${'y'.repeat(9000)}\r\nX-U: ${'y'.repeat(9000)}\r\n`)],
  ['Transfer-Encoding gzip', ok7('7'), 'gzip'],
  ['Transfer-Encoding identity', ok7('7'), 'identity']
]

type Outcome = { status: number, body: string } | 'no answer'

/** Sends `bytes`, ends our side, and reads one response: status and body, or 'no answer'. */
async function exchange (port: number, bytes: Buffer): Promise<Outcome> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  socket.on('error', () => {}) // a reset shows up as a close without an answer
  let received = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => { received = Buffer.concat([received, chunk]) })
  socket.end(bytes)
  await new Promise((resolve) => socket.once('close', resolve))
  const end = received.indexOf('\r\n\r\n')
  const status = /^HTTP\/1\.1 (\d{3})/.exec(received.toString('latin1'))
  if (end === -1 || status === null) return 'no answer'
  const length = /\r\ncontent-length: *(\d+)/i.exec(received.subarray(0, end).toString('latin1'))
  const body = received.subarray(end + 4, length === null ? undefined : end + 4 + Number(length[1]))
  return { status: Number(status[1]), body: body.toString('latin1') }
}

function request (body: string, transferEncoding: string, upgrade: boolean): Buffer {
  return Buffer.from('POST /echo HTTP/1.1\r\nHost: x\r\n' + (upgrade ? 'Connection: Upgrade\r\nUpgrade: h2c\r\n' : '') +
    `Content-Type: application/octet-stream\r\nTransfer-Encoding: ${transferEncoding}\r\n\r\n${body}`, 'latin1')
}

const accepted = (outcome: Outcome): boolean => outcome !== 'no answer' && outcome.status === 200

t.test('differential: the plugin accepts and refuses exactly what Node\'s parser does', async (t) => {
  const node = http.createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (chunk: Buffer) => parts.push(chunk))
    req.on('end', () => res.end(Buffer.concat(parts)))
    req.on('error', () => {})
  })
  await new Promise<void>((resolve) => node.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { node.close() })
  const nodePort = (node.address() as net.AddressInfo).port

  const app = await build(t)
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: 1 << 20 }, (_req, body, done) => done(null, body))
  app.post('/echo', async (req, reply) => reply.type('application/octet-stream').send(req.body))
  const pluginPort = await listen(app)

  let acceptedCount = 0
  for (const [name, body, te = 'chunked'] of CORPUS) {
    const byNode = await exchange(nodePort, request(body, te, NODE_PARSES_THEM))
    const byPlugin = await exchange(pluginPort, request(body, te, true))
    t.equal(accepted(byPlugin), accepted(byNode), `${name}: ${accepted(byNode) ? 'accepted' : 'refused'} by both`)
    if (accepted(byNode) && accepted(byPlugin)) {
      acceptedCount++
      t.equal((byPlugin as { body: string }).body, (byNode as { body: string }).body, `${name}: the same body`)
    } else {
      // Our decoder answers with Node's status: 400, 413 (extensions) or 431 (trailers).
      t.same(byPlugin === 'no answer' ? byPlugin : byPlugin.status, byNode === 'no answer' ? byNode : byNode.status, `${name}: the same status`)
    }
  }
  if (!NODE_PARSES_THEM) t.equal(acceptedCount, CORPUS.findIndex(([name]) => name === 'space after the size'), 'Node accepts the bodies the corpus means it to')
})

/** Decodes `bytes` fed in pieces of `step` bytes (0: whole): the body, or the refusal. */
function decode (bytes: Buffer, step: number): { body: string, done: boolean } | { status: number, message: string } {
  const decoder = new ChunkedDecoder()
  const out: Buffer[] = []
  try {
    if (step === 0) decoder.decode(bytes, out)
    else for (let i = 0; i < bytes.length; i += step) decoder.decode(bytes.subarray(i, i + step), out)
  } catch (error) {
    return { status: (error as { statusCode: number }).statusCode, message: (error as Error).message }
  }
  return { body: Buffer.concat(out).toString('latin1'), done: decoder.done }
}

t.test('the outcome does not depend on how the bytes are split', async (t) => {
  for (const [name, body] of CORPUS) {
    if (body.length > 20_000) continue // byte by byte stays quick
    const bytes = Buffer.from(body, 'latin1')
    const whole = decode(bytes, 0)
    for (const step of [1, 2, 3, 7]) t.same(decode(bytes, step), whole, `${name}: pieces of ${step}`)
  }
})

t.test('refusals carry the status Node answers with', async (t) => {
  t.match(decode(Buffer.from(ok7('7 '), 'latin1'), 0), { status: 400, message: 'chunked body: invalid character in chunk size' })
  t.match(decode(Buffer.from(ext(';' + 'a'.repeat(16_385))), 0), { status: 413, message: /chunk extensions too long/ })
  t.match(decode(Buffer.from(trailer('X-T:' + 'y'.repeat(16_381) + '\r\n')), 0), { status: 431 })
  const small = new ChunkedDecoder({ maxTrailerSize: 8 })
  t.throws(() => small.decode(Buffer.from(trailer('X-T: 12345\r\n')), []), Object.assign(new Error('trailer section too large'), { statusCode: 431 }), 'the trailer limit can be set (the server\'s maxHeaderSize)')
})

t.test('sizes beyond 2^53-1 are refused at once; 2^53-1 itself is read as far as it goes', async (t) => {
  t.match(decode(Buffer.from('20000000000000\r\n'), 0), { status: 400, message: /chunk size too large/ })
  t.same(decode(Buffer.from('1fffffffffffff\r\nabc'), 0), { body: 'abc', done: false })
  t.same(decode(Buffer.from(ok7('0'.repeat(1_000_000) + '7')), 0), { body: 'abcdefg', done: true }, 'leading zeros need no memory')
})

t.test('data chunks come out as views of the input, and bytes after the end are ignored', async (t) => {
  const decoder = new ChunkedDecoder()
  const input = Buffer.from('3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n')
  const out: Buffer[] = []
  decoder.decode(input, out)
  t.ok(decoder.done)
  t.equal(out.length, 1)
  t.equal(out[0].buffer, input.buffer, 'no copy')
  t.equal(out[0].toString(), 'abc')
})
