import { COMPRESSION_DEFAULTS } from '../defaults.js'
import type { CompressionOptions, ResolvedCompression } from './types.js'

const KEYS = Object.keys(COMPRESSION_DEFAULTS) as Array<keyof ResolvedCompression>

/**
 * The `compression` setting resolved: `false` (off), or every preference
 * filled in — from `base` when it is already on (a route's object refines the
 * plugin's), from the defaults otherwise — and checked. Throws a message for
 * the caller to wrap, naming the bad value.
 */
export function resolveCompression (value: unknown, base: ResolvedCompression | false): ResolvedCompression | false {
  if (value === false) return false
  const start: ResolvedCompression = base === false ? { ...COMPRESSION_DEFAULTS } : { ...base }
  if (value === true) return start
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`compression must be true, false or an object of preferences, got ${String(value)}`)
  }
  const given = value as CompressionOptions
  for (const key of Object.keys(given)) {
    if (!(KEYS as string[]).includes(key)) {
      throw new TypeError(`compression.${key} is not a compression preference (${KEYS.join(', ')})`)
    }
  }
  const out = start as unknown as Record<string, unknown>
  for (const key of KEYS) {
    if (given[key] !== undefined) out[key] = given[key]
  }
  checkInteger(start, 'threshold', 0, Number.MAX_SAFE_INTEGER)
  checkInteger(start, 'level', 0, 9)
  checkInteger(start, 'memLevel', 1, 9)
  // zlib's raw deflate has no 8-bit window: a server never compresses with less than 9.
  checkInteger(start, 'serverMaxWindowBits', 9, 15)
  checkInteger(start, 'clientMaxWindowBits', 8, 15)
  checkInteger(start, 'concurrency', 1, 1024)
  for (const key of ['serverContextTakeover', 'clientContextTakeover'] as const) {
    if (typeof start[key] !== 'boolean') throw new TypeError(`compression.${key} must be true or false, got ${String(start[key])}`)
  }
  return start
}

function checkInteger (settings: ResolvedCompression, key: keyof ResolvedCompression, min: number, max: number): void {
  const value = settings[key]
  if (!(Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max)) {
    throw new TypeError(`compression.${key} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
}
