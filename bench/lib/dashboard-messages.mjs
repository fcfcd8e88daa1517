// The messages of the compression scenarios: realistic dashboard updates of
// 2–4 KiB of JSON (a few dozen small objects with the same keys, numbers,
// short strings, some non-ASCII), built deterministically so every run and
// every server gets the same bytes. Shared by the load generator (which sends
// and checks them) and the run (which describes them in the report).

import { deflateRawSync, constants } from 'node:zlib'

export const MESSAGE_COUNT = 64
export const MIN_BYTES = 2048
export const MAX_BYTES = 4096

// xorshift32: small, fast, and the same sequence on every machine.
function generator (seed) {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state / 0x100000000
  }
}

const REGIONS = ['eu-west-1', 'eu-central-1', 'us-east-1', 'us-west-2', 'ap-south-1', 'sa-east-1']
const SITES = ['Zürich', 'São Paulo', 'Kraków', 'Dublin', 'Osaka', 'Montréal', 'Chicago', 'Lagos']
const TEAMS = ['payments', 'search', 'checkout', 'identity', 'media', 'platform']
const METRICS = [
  ['api latency p95', 'ms'],
  ['api latency p99', 'ms'],
  ['error rate', '%'],
  ['requests', 'req/s'],
  ['cpu', '%'],
  ['memory', 'MiB'],
  ['queue depth', 'jobs'],
  ['cache hit ratio', '%'],
  ['open connections', 'conns']
]
const STATUSES = ['ok', 'ok', 'ok', 'ok', 'warn', 'critical']
const ALERTS = [
  'latency above the SLO for 5 minutes',
  'error budget burn rate high',
  'disk usage over 85 %',
  'replica lag over 30 s',
  'certificate expires in 7 days'
]

function pick (random, list) {
  return list[Math.floor(random() * list.length)]
}

function round (value, digits) {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

function buildMessage (index) {
  const random = generator(0x9e3779b9 ^ (index * 0x85ebca6b))
  const at = 1764460800000 + index * 250
  const series = []
  const count = 15 + Math.floor(random() * 9)
  for (let i = 0; i < count; i++) {
    const [name, unit] = pick(random, METRICS)
    series.push({
      id: `svc-${pick(random, TEAMS)}-${String(Math.floor(random() * 40)).padStart(2, '0')}`,
      name,
      site: pick(random, SITES),
      status: pick(random, STATUSES),
      value: round(random() * 900, 2),
      unit,
      delta: round((random() - 0.5) * 20, 1),
      samples: Array.from({ length: 3 }, () => Math.floor(random() * 1000)),
      at: at - Math.floor(random() * 60_000)
    })
  }
  const alerts = []
  const alertCount = Math.floor(random() * 3)
  for (let i = 0; i < alertCount; i++) {
    alerts.push({ id: 10_000 + Math.floor(random() * 90_000), severity: pick(random, ['warn', 'critical']), text: pick(random, ALERTS) })
  }
  return { type: 'dashboard.update', seq: index, at, source: `edge-${pick(random, REGIONS)}`, series, alerts }
}

/** The messages as UTF-8 JSON, each MIN_BYTES..MAX_BYTES long; checked once here. */
export const DASHBOARD_MESSAGES = Array.from({ length: MESSAGE_COUNT }, (_, index) => {
  const bytes = Buffer.from(JSON.stringify(buildMessage(index)), 'utf8')
  if (bytes.length < MIN_BYTES || bytes.length > MAX_BYTES) {
    throw new Error(`dashboard message ${index} is ${bytes.length} bytes, outside ${MIN_BYTES}..${MAX_BYTES}`)
  }
  return bytes
})

/** Mean size of the messages, and of each deflated on its own (window 15, level 6), for the report. */
export function describeMessages () {
  let raw = 0
  let deflated = 0
  for (const message of DASHBOARD_MESSAGES) {
    raw += message.length
    // Minus the 4-byte 00 00 ff ff tail a sync flush ends with, as RFC 7692 sends it.
    deflated += deflateRawSync(message, { finishFlush: constants.Z_SYNC_FLUSH }).length - 4
  }
  return { count: MESSAGE_COUNT, meanBytes: raw / MESSAGE_COUNT, meanDeflatedBytes: deflated / MESSAGE_COUNT }
}
