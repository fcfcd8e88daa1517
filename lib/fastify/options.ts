import { WebSocketError } from '../errors.js'
import { ROUTE_DEFAULTS, UNKNOWN_OPTION } from './settings.js'

/*
 * Unknown option keys, at `register` and in a route's `websocket: { … }`.
 * Every key that is not one of ours is an error, never silently dropped: an
 * app migrating from @fastify/websocket that authenticated in ws's
 * `verifyClient` must not come up accepting everyone. Keys that
 * @fastify/websocket or ws took get what to do instead; the values of our
 * own keys are checked by resolveSettings (settings.ts).
 */

const ROUTE_KEYS = new Set(Object.keys(ROUTE_DEFAULTS))
const PLUGIN_ONLY_KEYS = new Set(['handshakeTimeout', 'preClose', 'adapter', 'asyncapi'])
const PLUGIN_KEYS = new Set([...ROUTE_KEYS, ...PLUGIN_ONLY_KEYS])
// Fastify's own register options (FastifyRegisterOptions): Fastify reads them, the plugin ignores them.
const FASTIFY_REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

const TOP_LEVEL = 'settings go at the top level of the plugin options (or per route, in `websocket: { … }`)'

// What ws's server options (passed by @fastify/websocket as `options: { … }`),
// and @fastify/websocket's own, become here.
const INSTEAD: Readonly<Record<string, string>> = {
  maxPayload: 'use `maxMessageSize` (default 1 MiB; ws\'s default was 100 MiB)',
  verifyClient: 'authenticate in an `onRequest` or `preValidation` hook: a hook that replies ' +
    '(`reply.code(401).send(…)`) refuses the upgrade with that response (README, "Auth in a hook")',
  handleProtocols: 'use `protocols`: the subprotocols the server speaks in order of preference, ' +
    'or a function `(offered: string[]) => chosen`',
  maxFragments: 'use `maxMessagePieces` and `minAveragePieceSize` (how many pieces a message may arrive in)',
  maxBufferedChunks: 'use `maxMessagePieces` and `minAveragePieceSize` (how many pieces a message may arrive in)',
  maxPendingAutoPongs: 'use `maxBufferedAmount`: pongs the peer does not read count toward it',
  perMessageDeflate: 'use `compression`: `true`, or preferences (threshold, level, context takeover, windows); ' +
    'README, "Compression"',
  skipUTF8Validation: 'remove it: text messages are always checked to be UTF-8 (RFC 6455 §8.1); ' +
    'send bytes that are not text as binary messages',
  allowSynchronousEvents: 'remove it: it has no equivalent here (messages are emitted as they are parsed)',
  clientTracking: 'remove it: open connections are always tracked, in `app.websocket.clients` ' +
    '(the shutdown round and `maxConnections` need them)',
  server: 'the plugin serves the upgrades of the Fastify server itself (`app.server`, HTTP or HTTPS); ' +
    'to serve WebSocket on another server, give it its own Fastify instance (or use Fastify\'s `serverFactory`)',
  noServer: 'remove it: upgrades always go through Fastify\'s router and hooks; ' +
    'for a WebSocket server detached from Fastify, use ws directly',
  path: 'declare a route instead: `app.get(path, { websocket: true }, handler)`',
  port: 'remove it: the plugin has no server of its own; pass it to `app.listen({ port, host, backlog })`',
  host: 'remove it: the plugin has no server of its own; pass it to `app.listen({ port, host, backlog })`',
  backlog: 'remove it: the plugin has no server of its own; pass it to `app.listen({ port, host, backlog })`',
  WebSocket: 'remove it: connections are this plugin\'s `WebSocketConnection`; there is no class to substitute',
  connectionOptions: 'remove it: the handler receives the connection itself, not a stream around it',
  // @fastify/websocket's own, from before v8: a handler for upgrades to routes without one.
  handle: 'remove it: only routes with `{ websocket: true }` or a `wsHandler` open connections; ' +
    'an upgrade to another route is answered by its HTTP handler, and to no route by the 404 handler'
}

/** Checks the keys of the plugin options given to `register`. */
export function checkPluginOptions (options: object): void {
  const problems: string[] = []
  for (const key of Object.keys(options)) {
    if (ROUTE_KEYS.has(key) || PLUGIN_ONLY_KEYS.has(key) || FASTIFY_REGISTER_KEYS.has(key)) continue
    if (key === 'options') problems.push(...wsOptionProblems((options as { options: unknown }).options, 'options'))
    else problems.push(problem(key, key, PLUGIN_KEYS))
  }
  throwIfAny('fastify-rfc6455', problems)
}

/** Checks the keys of a route's `websocket: { … }`; `where` names the route. */
export function checkRouteOptions (settings: object, where: string): void {
  const problems: string[] = []
  for (const key of Object.keys(settings)) {
    if (ROUTE_KEYS.has(key)) continue
    const shown = `websocket.${key}`
    if (PLUGIN_ONLY_KEYS.has(key)) problems.push(`"${shown}": it applies to the whole app; pass it to \`register\``)
    else if (key === 'options') problems.push(...wsOptionProblems((settings as { options: unknown }).options, shown))
    else problems.push(problem(key, shown, ROUTE_KEYS))
  }
  throwIfAny(where, problems)
}

/**
 * Checks the keys of an option that is itself an object (`asyncapi: { … }`):
 * every key not in `known` is named as `<shown>.<key>`, with a near miss.
 */
export function checkNestedKeys (value: object, known: ReadonlySet<string>, shown: string, where: string): void {
  const problems = Object.keys(value).filter((key) => !known.has(key)).map((key) => {
    const near = closest(key, known)
    return `"${shown}.${key}": not an option${near === undefined ? '' : `; did you mean \`${near}\`?`}`
  })
  throwIfAny(where, problems)
}

/** @fastify/websocket's `options` object, which it handed to ws: each key, and what to do instead. */
function wsOptionProblems (options: unknown, shown: string): string[] {
  if (options === null || typeof options !== 'object' || Object.keys(options).length === 0) {
    return [`"${shown}": there is no \`options\` object here (@fastify/websocket passed it to ws); ${TOP_LEVEL}`]
  }
  return Object.keys(options).map((key) => {
    const inner = `${shown}.${key}`
    if (ROUTE_KEYS.has(key)) return `"${inner}": move it to the top level, as \`${key}\`; ${TOP_LEVEL}`
    if (Object.hasOwn(INSTEAD, key)) return `"${inner}": ${INSTEAD[key]}`
    return `"${inner}": not an option here (ws's options do not apply; ${TOP_LEVEL})`
  })
}

function problem (key: string, shown: string, known: ReadonlySet<string>): string {
  if (Object.hasOwn(INSTEAD, key)) return `"${shown}": ${INSTEAD[key]}`
  const near = closest(key, known)
  return `"${shown}": not an option${near === undefined ? '' : `; did you mean \`${near}\`?`}`
}

function throwIfAny (where: string, problems: string[]): void {
  if (problems.length === 0) return
  const message = problems.length === 1
    ? `${where}: unknown option ${problems[0]}`
    : `${where}: unknown options:\n${problems.map((p) => `  - ${p}`).join('\n')}`
  throw new WebSocketError(UNKNOWN_OPTION, message)
}

/** The known key `key` is most likely a typo of (same letters in another case, or at most 2 edits away). */
function closest (key: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate, bestDistance)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/** Levenshtein distance, or `limit` once it is known to be at least that. */
function editDistance (a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return Math.min(previous[b.length], limit)
}
