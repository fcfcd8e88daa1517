// Idle connections held open while the server's memory is measured. Two
// jobs, because the run reads the server's RSS between them.

import { closeAll, handleControl, openMany } from './connect.mjs'
import { encodeFrame } from '../../test/helpers/wire.cjs'
import { MessageReader } from './message-reader.mjs'
import { buildPayload } from './payloads.mjs'
import { CAPTURE_WAIT_MS, waitFor } from './window.mjs'

let held = null

export async function openIdle (job) {
  if (held !== null) await closeIdle({})
  const connections = await openMany(job.port, job.path, job.count, 100)
  held = connections.map(({ socket, leftover }, index) => {
    const entry = { socket, verdict: null, lost: false }
    // Only the first connection is later used to prove the server still echoes.
    const reader = new MessageReader({
      capture: index === 0,
      onCapture (opcode, bytes) { entry.verdict = entry.check?.(opcode, bytes) ?? 'unexpected message' },
      onControl (opcode, data) { if (handleControl(socket, opcode, data)) entry.lost = true }
    })
    socket.on('data', (chunk) => reader.push(chunk))
    socket.on('error', () => { entry.lost = true })
    socket.on('close', () => { entry.lost = true })
    reader.push(leftover)
    socket.resume()
    return entry
  })
  return { opened: held.length }
}

export async function closeIdle (job) {
  if (held === null) return { failure: 'no idle connections are open' }
  const entries = held
  held = null
  const lost = entries.filter((entry) => entry.lost).length
  let failure = lost > 0 ? `${lost} idle connections were closed by the server` : null
  if (job.verify && failure === null) {
    const { opcode, payload, check } = buildPayload(job.payload)
    const probe = entries[0]
    probe.check = check
    probe.socket.write(encodeFrame(opcode, payload))
    await waitFor(() => probe.verdict !== null, CAPTURE_WAIT_MS)
    if (probe.verdict !== 'ok') failure = probe.verdict ?? 'no echo on an idle connection'
  }
  await closeAll(entries.map((entry) => entry.socket), 5000)
  return failure === null ? { closed: entries.length } : { failure }
}
