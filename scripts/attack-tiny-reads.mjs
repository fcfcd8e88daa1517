// Issue 8, case 5: clients each send one large masked binary frame one byte
// per TCP segment (Nagle off, one byte per write, a turn of the event loop
// between writes), against the plugin with its defaults.
// Reports what the server did with each connection and how much its memory
// grew while the frames were arriving.
//
//   node scripts/attack-tiny-reads.mjs [--connections 1] [--bytes 1000000] [--timeout 600] [--lib lib/index.ts]
//   node scripts/attack-tiny-reads.mjs --parser [--bytes 1000000] [--lib lib/index.ts]
//
// --parser skips the sockets: it feeds the frame one byte per push to the
// protocol core's FrameParser with the piece cap off (maxMessagePieces:
// Infinity), each byte in an ArrayBuffer of its own as Node delivers reads,
// and reports what the frame in progress holds: the collector's bound alone.
//
// Loopback only. Bounded: each connection sends at most --bytes of payload,
// and the whole run stops after --timeout seconds. The server runs in a child
// process (this file with --serve) so that its memory is measured on its own;
// it imports the plugin's TypeScript source through tsx.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const SCRIPT = fileURLToPath(import.meta.url)
const ROOT = resolve(SCRIPT, '../..')

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '1' },
    bytes: { type: 'string', default: '1000000' },
    timeout: { type: 'string', default: '600' },
    lib: { type: 'string', default: 'lib/index.ts' },
    serve: { type: 'boolean', default: false },
    parser: { type: 'boolean', default: false },
    'parser-child': { type: 'boolean', default: false }
  }
})

if (values.serve) {
  await serve(resolve(ROOT, values.lib))
} else if (values['parser-child']) {
  await parseInProcess(resolve(ROOT, values.lib), Number(values.bytes))
} else if (values.parser) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', SCRIPT, '--parser-child', '--lib', values.lib, '--bytes', values.bytes], {
    cwd: ROOT,
    stdio: 'inherit'
  })
  await new Promise((resolve) => child.on('exit', resolve))
} else {
  await attack({
    connections: Number(values.connections),
    bytes: Number(values.bytes),
    timeoutMs: Number(values.timeout) * 1000,
    lib: values.lib
  })
}

// ---------------------------------------------------------------- server side

async function serve (lib) {
  const { default: Fastify } = await import('fastify')
  const mod = await import(pathToFileURL(lib).href)
  const websocket = mod.default?.default ?? mod.default
  const app = Fastify()
  await app.register(websocket)
  let reads = 0
  let readBytes = 0
  app.get('/ws', { websocket: true }, (conn, req) => {
    // Counts the reads the server got, to tell how tiny they really were.
    req.socket.on('data', (chunk) => { reads++; readBytes += chunk.length })
    conn.on('message', (data) => conn.send(`accepted ${data.length}`))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })

  let peak = { rss: 0, arrayBuffers: 0 }
  const sample = () => {
    const m = process.memoryUsage()
    if (m.rss > peak.rss) peak.rss = m.rss
    if (m.arrayBuffers > peak.arrayBuffers) peak.arrayBuffers = m.arrayBuffers
  }
  const sampler = setInterval(sample, 20)
  const settled = () => {
    globalThis.gc()
    const m = process.memoryUsage()
    return { rss: m.rss, arrayBuffers: m.arrayBuffers }
  }
  process.on('message', (msg) => {
    if (msg === 'baseline') {
      const now = settled()
      peak = { ...now }
      reads = 0
      readBytes = 0
      process.send({ baseline: now })
    } else if (msg === 'report') {
      sample()
      process.send({ peak, after: settled(), reads, readBytes })
    } else if (msg === 'exit') {
      clearInterval(sampler)
      app.close().then(() => process.exit(0))
    }
  })
  process.send({ port: app.server.address().port })
}

// ---------------------------------------------------------------- parser only

async function parseInProcess (lib, bytes) {
  const protocol = await import(pathToFileURL(resolve(lib, '../protocol/index.ts')).href)
  const { FrameParser } = protocol.default ?? protocol
  let outcome = 'in progress'
  const parser = new FrameParser({ role: 'server', maxMessageSize: 1 << 30, maxMessagePieces: Infinity }, {
    onMessage: (data) => { outcome = `message of ${data.length} bytes` },
    onPing () {},
    onPong () {},
    onClose () {},
    onProtocolError: (err) => { outcome = `error ${err.closeCode}` }
  })
  const frame = maskedFrame(bytes)
  const settled = () => {
    globalThis.gc()
    globalThis.gc()
    return process.memoryUsage()
  }
  const before = settled()
  // All but the last byte, so that the frame is still in progress when measured.
  for (let i = 0; i < frame.length - 1; i++) {
    const chunk = Buffer.allocUnsafeSlow(1)
    chunk[0] = frame[i]
    parser.push(chunk)
  }
  const during = settled()
  const received = frame.length - 1 - 14
  const per = (key) => ((during[key] - before[key]) / received).toFixed(2)
  const mb = (n) => `${(n / 1e6).toFixed(1)} MB`
  console.log(`node ${process.version}, lib ${lib}: FrameParser, a ${bytes}-byte frame one byte per push, all but its last byte`)
  console.log(`held while in progress: RSS +${mb(during.rss - before.rss)} (${per('rss')} per byte received), ` +
    `heap +${mb(during.heapUsed - before.heapUsed)} (${per('heapUsed')}), arrayBuffers +${mb(during.arrayBuffers - before.arrayBuffers)} (${per('arrayBuffers')})`)
  const last = Buffer.allocUnsafeSlow(1)
  last[0] = frame[frame.length - 1]
  parser.push(last)
  console.log(`then: ${outcome}`)
}

// ---------------------------------------------------------------- client side

function ask (child, message, key) {
  return new Promise((resolve) => {
    const onMessage = (msg) => {
      if (msg[key] === undefined) return
      child.off('message', onMessage)
      resolve(msg)
    }
    child.on('message', onMessage)
    if (message !== null) child.send(message)
  })
}

function maskedFrame (payloadLength) {
  const payload = randomBytes(payloadLength)
  const key = randomBytes(4)
  const head = Buffer.alloc(14)
  head[0] = 0x82
  head[1] = 0x80 | 127
  head.writeBigUInt64BE(BigInt(payloadLength), 2)
  key.copy(head, 10)
  for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3]
  return Buffer.concat([head, payload])
}

/** One connection: handshake, then the frame a byte per write; resolves with what the server did. */
function runConnection (port, frame, deadline) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    socket.setNoDelay(true)
    let received = Buffer.alloc(0)
    let upgraded = false
    let sent = 0
    let outcome = null
    const finish = (result) => {
      if (outcome !== null) return
      outcome = result
      socket.destroy()
      resolve({ ...result, sent })
    }
    // One byte per write, and a turn of the event loop before the next: with
    // Nagle off each write leaves as its own segment, and the loop turn lets
    // a close frame from the server be read (a chain of write callbacks runs
    // on the tick queue and would never get to the socket's reads).
    const writeNext = () => {
      if (outcome !== null || sent === frame.length) return
      if (Date.now() > deadline) return finish({ outcome: 'timeout' })
      sent++
      socket.write(frame.subarray(sent - 1, sent))
      if (socket.writableLength > 64 * 1024) socket.once('drain', writeNext)
      else setImmediate(writeNext)
    }
    socket.on('connect', () => {
      socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
    })
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      if (!upgraded) {
        const end = received.indexOf('\r\n\r\n')
        if (end === -1) return
        if (!received.subarray(0, 12).toString().includes(' 101')) return finish({ outcome: 'refused' })
        upgraded = true
        received = received.subarray(end + 4)
        writeNext()
      }
      // Server frames are unmasked and small here: a close or an "accepted N" text.
      while (received.length >= 2) {
        const length = received[1] & 0x7f
        if (received.length < 2 + length) return
        const opcode = received[0] & 0x0f
        const payload = received.subarray(2, 2 + length)
        received = received.subarray(2 + length)
        if (opcode === 0x8) return finish({ outcome: `closed ${payload.length >= 2 ? payload.readUInt16BE(0) : 1005}` })
        if (opcode === 0x1) return finish({ outcome: payload.toString() })
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => finish({ outcome: 'connection dropped' }))
  })
}

async function attack ({ connections, bytes, timeoutMs, lib }) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', SCRIPT, '--serve', '--lib', lib], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  try {
    const { port } = await ask(child, null, 'port')
    const { baseline } = await ask(child, 'baseline', 'baseline')
    const frame = maskedFrame(bytes)
    const started = Date.now()
    const results = await Promise.all(Array.from({ length: connections }, () => runConnection(port, frame, started + timeoutMs)))
    const seconds = (Date.now() - started) / 1000
    const report = await ask(child, 'report', 'peak')
    const outcomes = {}
    for (const r of results) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1
    const sent = results.reduce((sum, r) => sum + r.sent, 0)
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`
    console.log(`node ${process.version}, lib ${lib}: ${connections} connection(s), a ${bytes}-byte frame each, 1 byte per write`)
    console.log(`outcomes: ${JSON.stringify(outcomes)} in ${seconds.toFixed(1)} s; ${sent} bytes written in all`)
    console.log(`server reads: ${report.reads} for ${report.readBytes} bytes (${(report.readBytes / Math.max(1, report.reads)).toFixed(2)} bytes per read)`)
    console.log(`server RSS: baseline ${mb(baseline.rss)}, peak +${mb(report.peak.rss - baseline.rss)}, after gc +${mb(report.after.rss - baseline.rss)}`)
    console.log(`server arrayBuffers: baseline ${mb(baseline.arrayBuffers)}, peak +${mb(report.peak.arrayBuffers - baseline.arrayBuffers)}, after gc +${mb(report.after.arrayBuffers - baseline.arrayBuffers)}`)
    console.log(`peak RSS growth per byte received (connections' own overhead included): ${((report.peak.rss - baseline.rss) / Math.max(1, report.readBytes)).toFixed(2)}`)
  } finally {
    child.send('exit')
  }
}
