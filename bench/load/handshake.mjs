// Connection churn: each of `concurrency` workers loops over
// connect → handshake → one echoed message → closing handshake. Over TLS
// (`job.transport` 'tls') each cycle is a new TLS connection; over HTTP/2
// ('h2') a new stream of one session opened before the workers start.
// `job.stopAfter` ends the window at that many completed cycles.

import { handleControl } from './connect.mjs'
import { closePayload, encodeFrame, OPCODE } from '../../test/helpers/wire.cjs'
import { MessageReader } from './message-reader.mjs'
import { buildPayload } from './payloads.mjs'
import { openTransport } from './transports.mjs'
import { CAPTURE_WAIT_MS, measureWindow, usageBetween, waitFor } from './window.mjs'

const CLOSE_FRAME = encodeFrame(OPCODE.close, closePayload(1000))

/** One full connection lifetime; resolves with the echo's check verdict. */
function cycle (transport, path, frame, check) {
  return transport.open(path).then(({ socket, leftover }) => new Promise((resolve, reject) => {
    let verdict = null
    let closing = false
    const reader = new MessageReader({
      capture: true,
      onCapture (opcode, bytes) {
        verdict = check(opcode, bytes)
        closing = true
        socket.write(CLOSE_FRAME)
      },
      onControl (opcode, data) {
        if (!handleControl(socket, opcode, data)) return
        if (closing) resolve(verdict)
        else reject(new Error('server closed before echoing'))
      }
    })
    socket.on('data', (chunk) => reader.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => reject(new Error('connection closed before the closing handshake')))
    reader.push(leftover)
    socket.write(frame)
    socket.resume()
  }))
}

export async function runHandshakes (job) {
  const { path, concurrency, warmupMs, durationMs, serverPid, clockTicks } = job
  const { opcode, payload, check } = buildPayload(job.payload)
  const frame = encodeFrame(opcode, payload)
  const abort = new AbortController()
  let running = true
  let measuring = false
  let completed = 0
  let failure = null
  let verified = false
  let active = 0
  const stopAfter = job.stopAfter ?? Infinity
  const transport = await openTransport(job)

  const worker = async () => {
    active++
    try {
      while (running) {
        const verdict = await cycle(transport, path, frame, check)
        if (verdict !== 'ok') throw new Error(verdict === 'unsupported' ? 'unexpected reply' : verdict)
        verified = true
        if (measuring && ++completed >= stopAfter) abort.abort()
      }
    } catch (error) {
      if (running) {
        failure ??= error.message
        abort.abort()
      }
    } finally {
      active--
    }
  }
  for (let i = 0; i < concurrency; i++) worker()

  const { start, end } = await measureWindow({ serverPid, warmupMs, durationMs, signal: abort.signal }, (on) => { measuring = on })
  running = false
  if (!verified && failure === null) await waitFor(() => verified || failure !== null, CAPTURE_WAIT_MS)
  // Let in-progress cycles finish so the server is idle for the next measurement.
  await waitFor(() => active === 0, 5000)
  await transport.close()

  if (failure !== null || !verified) return { failure: failure ?? 'no handshake completed' }
  const usage = usageBetween(start, end, clockTicks)
  return {
    metrics: { rate: completed / usage.seconds },
    operations: completed,
    transport: transport.stats(),
    generatorCpu: usage.generatorCpu,
    serverCpu: usage.serverCpu,
    otherCpu: usage.otherCpu
  }
}
