// Echo load: `conns` connections each keeping `inflight` messages outstanding.
// Also serves the latency scenario (1 connection, 1 in flight) and the JSON
// scenario (a JSON text payload on the JSON route). `job.transport` (transports.mjs)
// runs the same load over TLS or on the streams of one HTTP/2 session.
// `job.stopAfter` ends the window at that many replies (a warm-up phase,
// bench/lib/process-age.mjs, is a count of messages, not a time).

import { performance } from 'node:perf_hooks'
import { percentileSorted, sortedNumbers } from '../lib/stats.mjs'
import { closeAll, handleControl, openMany } from './connect.mjs'
import { encodeFrame } from '../../test/helpers/wire.cjs'
import { MessageReader } from './message-reader.mjs'
import { buildPayload } from './payloads.mjs'
import { openTransport } from './transports.mjs'
import { CAPTURE_WAIT_MS, measureWindow, usageBetween, waitFor } from './window.mjs'

export async function runEcho (job) {
  const { port, path, conns, inflight, warmupMs, durationMs, serverPid, clockTicks } = job
  const { opcode, payload, check } = buildPayload(job.payload)
  const frame = encodeFrame(opcode, payload)
  // One write refills any number of completed slots: a prefix of this buffer.
  const refill = Buffer.concat(new Array(inflight).fill(frame))
  const samples = job.latency ? [] : null
  const stopAfter = job.stopAfter ?? Infinity
  const abort = new AbortController()
  let running = true
  let measuring = false
  let replies = 0
  let outstanding = 0
  let failure = null
  let verdict = null
  const fail = (reason) => {
    failure ??= reason
    abort.abort()
  }

  const transport = await openTransport(job)
  let connections
  try {
    connections = await openMany(port, path, conns, 64, null, transport)
  } catch (error) {
    await transport.close()
    throw error
  }
  connections.forEach(({ socket, leftover }, index) => {
    // Exact only with one message in flight, which is how latency is run.
    let sentAt = 0
    const reader = new MessageReader({
      // Smoke runs check every reply of the first connection, full runs the first one.
      capture: index === 0 && (job.checkAll ? 'all' : 'first'),
      onCapture (replyOpcode, bytes) {
        const result = check(replyOpcode, bytes)
        if (verdict === null || verdict === 'ok') verdict = result
        if (result !== 'ok') abort.abort()
      },
      onControl (controlOpcode, data) {
        if (handleControl(socket, controlOpcode, data) && running) fail('server closed the connection')
      }
    })
    socket.on('data', (chunk) => {
      const completed = reader.push(chunk)
      if (completed === 0) return
      outstanding -= completed
      if (outstanding < 0) fail('the server sent more messages than it was sent')
      if (!running) return
      const now = performance.now()
      if (measuring) {
        replies += completed
        if (samples !== null) samples.push((now - sentAt) * 1000)
        if (replies >= stopAfter) abort.abort()
      }
      sentAt = now
      outstanding += completed
      socket.write(completed === inflight ? refill : refill.subarray(0, completed * frame.length))
    })
    socket.on('error', (error) => { if (running) fail(error.message) })
    socket.on('close', () => { if (running) fail('connection closed by the server') })
    reader.push(leftover)
    outstanding += inflight
    sentAt = performance.now()
    socket.write(refill)
    socket.resume()
  })

  const { start, end } = await measureWindow({ serverPid, warmupMs, durationMs, signal: abort.signal }, (on) => { measuring = on })
  running = false
  // Slow servers may not have answered within a tiny smoke window.
  if (verdict === null && failure === null) await waitFor(() => verdict !== null, CAPTURE_WAIT_MS)
  await waitFor(() => outstanding <= 0, 2000)
  await closeAll(connections.map((connection) => connection.socket))
  await transport.close()

  if (verdict === 'unsupported') return { unsupported: true }
  if (failure !== null || verdict !== 'ok') {
    return { failure: failure ?? (verdict === null ? 'no reply received' : verdict) }
  }
  const usage = usageBetween(start, end, clockTicks)
  const metrics = { rate: replies / usage.seconds }
  if (samples !== null) {
    const sorted = sortedNumbers(samples)
    metrics.p50 = percentileSorted(sorted, 0.5)
    metrics.p99 = percentileSorted(sorted, 0.99)
  }
  return { metrics, operations: replies, generatorCpu: usage.generatorCpu, serverCpu: usage.serverCpu, otherCpu: usage.otherCpu }
}
