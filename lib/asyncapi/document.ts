import type { AddressInfo } from 'node:net'
import { Server as TlsServer } from 'node:tls'
import type { SubprotocolSelector } from '../protocol/handshake.js'
import { messagesOf, type MessageEntry, type Side } from './messages.js'
import { SchemaStore, pointerToken } from './schemas.js'
import type { AsyncApiChannel, AsyncApiDocument, AsyncApiOperation, AsyncApiOptions, AsyncApiParameter, AsyncApiServer } from './types.js'

/**
 * The AsyncAPI 3.0 document of an app's WebSocket routes: one channel per
 * route, a `receive` operation for what clients send (`schema.message`) and
 * a `send` operation for what the server sends (`schema.outgoing`), from the
 * application's — the server's — point of view.
 */

/** What route.ts records of a WebSocket route, as declared. */
export interface DocumentedRoute {
  /** The route's encapsulation context: its shared schemas (`getSchemas()`). */
  instance: { getSchemas (): Record<string, unknown> }
  method: string | string[]
  url: string
  /** The route's schema as the app gave it (before the plugin added `hide` for @fastify/swagger). */
  schema: Record<string, unknown> | undefined
  protocols: SubprotocolSelector | undefined
}

/** Something with a listening address: the app's server. */
export interface AddressSource {
  address (): AddressInfo | string | null
}

const DEFAULT_INFO = { title: 'WebSocket API', version: '1.0.0' }

export function buildDocument (routes: readonly DocumentedRoute[], options: AsyncApiOptions, server: AddressSource | undefined): AsyncApiDocument {
  const store = new SchemaStore()
  const seen = new Set<object>()
  for (const route of routes) {
    if (seen.has(route.instance)) continue
    seen.add(route.instance)
    store.addShared(route.instance.getSchemas())
  }

  const channels: Record<string, AsyncApiChannel> = {}
  const operations: Record<string, AsyncApiOperation> = {}
  for (const route of routes) {
    const schema = route.schema ?? {}
    if (schema.hide === true || !upgradesOn(route.method)) continue
    const id = uniqueKey(channelId(route.url), channels)
    const { channel, received, sent } = describeChannel(store, route, schema, id)
    channels[id] = channel
    if (received.length > 0) {
      operations[`${id}.receive`] = operation('receive', id, received, 'Messages clients send, as the server accepts them (schema.message)', schema)
    }
    if (sent.length > 0) {
      operations[`${id}.send`] = operation('send', id, sent, 'Messages the server sends (schema.outgoing)', schema)
    }
  }

  const document: AsyncApiDocument = {
    asyncapi: '3.0.0',
    ...(options.id === undefined ? {} : { id: options.id }),
    info: { ...DEFAULT_INFO, ...options.info },
    ...serversOf(options, server),
    defaultContentType: 'application/json',
    channels,
    operations
  }
  const schemas = store.components()
  if (Object.keys(schemas).length > 0) document.components = { schemas }
  return document
}

/** Upgrades are GET requests: a route on HEAD alone never has one. */
function upgradesOn (method: string | string[]): boolean {
  return [method].flat().some((m) => String(m).toUpperCase() === 'GET')
}

function describeChannel (store: SchemaStore, route: DocumentedRoute, schema: Record<string, unknown>, id: string): { channel: AsyncApiChannel, received: string[], sent: string[] } {
  const { address, names } = channelAddress(route.url)
  const channel: AsyncApiChannel = { address }
  if (typeof schema.summary === 'string') channel.summary = schema.summary
  if (typeof schema.description === 'string') channel.description = schema.description
  const tags = tagsOf(schema.tags)
  if (tags !== undefined) channel.tags = tags
  if (names.length > 0) channel.parameters = parametersOf(store, schema.params, names, `${id}.params`)

  const ws: NonNullable<AsyncApiChannel['bindings']>['ws'] = { method: 'GET', bindingVersion: '0.1.0' }
  if (schema.querystring !== undefined) ws.query = store.place(schema.querystring, `${id}.query`).value
  if (schema.headers !== undefined) ws.headers = store.place(schema.headers, `${id}.headers`).value
  if (Array.isArray(route.protocols) && route.protocols.length > 0) ws['x-subprotocols'] = [...route.protocols]
  channel.bindings = { ws }

  // Keys shared by both sides (an `error` each way) get the side appended, so that each stays addressable.
  const incoming = schema.message === undefined ? [] : messagesOf(store, schema.message, 'receive', `${id}.message`)
  const outgoing = schema.outgoing === undefined ? [] : messagesOf(store, schema.outgoing, 'send', `${id}.outgoing`)
  const both = new Set(incoming.map((m) => m.key).filter((key) => outgoing.some((m) => m.key === key)))
  const messages: Record<string, MessageEntry['message']> = {}
  const add = (entries: MessageEntry[], side: Side): string[] => entries.map(({ key, message }) => {
    const unique = uniqueKey(both.has(key) ? `${key}.${side === 'receive' ? 'received' : 'sent'}` : key, messages)
    if (schema.deprecated === true) message.deprecated = true
    messages[unique] = dropUndefined(message)
    return unique
  })
  const received = add(incoming, 'receive')
  const sent = add(outgoing, 'send')
  if (received.length + sent.length > 0) channel.messages = messages
  if (schema.deprecated === true) channel['x-deprecated'] = true
  return { channel, received, sent }
}

/** The operation of one direction of channel `id`: its messages (`keys`) and what the route's schema says of it. */
function operation (action: AsyncApiOperation['action'], id: string, keys: readonly string[], summary: string, schema: Record<string, unknown>): AsyncApiOperation {
  const channel = `#/channels/${pointerToken(id)}`
  const op: AsyncApiOperation = {
    action,
    channel: { $ref: channel },
    messages: keys.map((key) => ({ $ref: `${channel}/messages/${pointerToken(key)}` })),
    summary
  }
  const tags = tagsOf(schema.tags)
  if (tags !== undefined) op.tags = tags
  // AsyncAPI 3.0 has no `deprecated` on channels and operations (only on messages): an extension says it.
  if (schema.deprecated === true) op['x-deprecated'] = true
  return op
}

/**
 * A Fastify path as a channel address: `:name` (with its `(regex)`, if
 * any) becomes `{name}`, the wildcard `*` becomes `{wildcard}`, and `::`
 * (an escaped colon) a colon. Returns the parameter names in order.
 */
export function channelAddress (url: string): { address: string, names: string[] } {
  let address = ''
  const names: string[] = []
  for (let i = 0; i < url.length; i++) {
    const ch = url[i]
    if (ch === ':' && url[i + 1] === ':') {
      address += ':'
      i++
    } else if (ch === ':') {
      let name = ''
      while (i + 1 < url.length && !'/-.(:'.includes(url[i + 1])) name += url[++i]
      if (url[i + 1] === '(') i = skipRegex(url, i + 1)
      names.push(name)
      address += `{${name}}`
    } else if (ch === '*') {
      names.push('wildcard')
      address += '{wildcard}'
    } else {
      address += ch
    }
  }
  return { address, names }
}

/** The index of the `)` closing the `(` at `start` (parentheses nest; a backslash escapes). */
function skipRegex (url: string, start: number): number {
  let depth = 0
  for (let i = start; i < url.length; i++) {
    if (url[i] === '\\') i++
    else if (url[i] === '(') depth++
    else if (url[i] === ')' && --depth === 0) return i
  }
  return url.length - 1
}

/** A channel id from a path: `/rooms/:room/feed` → `rooms_room_feed`, `/` → `root`. */
function channelId (url: string): string {
  const words = url.replace(/\([^)]*\)/g, '').replace(/\*/g, 'wildcard').replace(/[^\w.-]+/g, '_').replace(/^_+|_+$/g, '')
  return words === '' ? 'root' : words
}

function uniqueKey (wanted: string, taken: object): string {
  let key = wanted
  for (let i = 2; Object.hasOwn(taken, key); i++) key = `${wanted}_${i}`
  return key
}

/**
 * Channel parameters from the params schema. AsyncAPI 3.0 parameters carry
 * no schema, only strings: `enum`, `default` and `examples` are written as
 * the text that goes into the path. Every placeholder gets one, as the
 * specification requires, described or not.
 */
function parametersOf (store: SchemaStore, params: unknown, names: string[], name: string): Record<string, AsyncApiParameter> {
  const properties: Record<string, unknown> = {}
  if (params !== undefined) {
    const { context } = store.place(params, name)
    const root = store.resolve(params, context)
    const declared = (root.node as { properties?: unknown } | null)?.properties
    if (declared !== null && typeof declared === 'object') {
      for (const [key, value] of Object.entries(declared)) properties[key] = store.resolve(value, root.context).node
    }
  }
  const out: Record<string, AsyncApiParameter> = {}
  for (const param of names) {
    const schema = (properties[param === 'wildcard' && !Object.hasOwn(properties, 'wildcard') ? '*' : param] ?? {}) as Record<string, unknown>
    const parameter: AsyncApiParameter = {}
    if (typeof schema.description === 'string') parameter.description = schema.description
    else if (param === 'wildcard') parameter.description = 'the rest of the path (Fastify\'s `*` parameter)'
    if (Array.isArray(schema.enum)) parameter.enum = schema.enum.map(String)
    else if (schema.const !== undefined) parameter.enum = [String(schema.const)]
    if (schema.default !== undefined) parameter.default = String(schema.default)
    if (Array.isArray(schema.examples)) parameter.examples = schema.examples.map(String)
    out[param] = parameter
  }
  return out
}

/** Route `tags` (OpenAPI style: names) as AsyncAPI tag objects. */
function tagsOf (tags: unknown): Array<{ name: string }> | undefined {
  if (!Array.isArray(tags)) return undefined
  const names = [...new Set(tags.map((tag) => typeof tag === 'string' ? tag : (tag as { name?: unknown } | null)?.name).filter((n): n is string => typeof n === 'string'))]
  return names.length === 0 ? undefined : names.map((name) => ({ name }))
}

/**
 * `servers` from the options; otherwise the listening address (`ws`, or
 * `wss` on a TLS server), none before the app listens or on a Unix socket.
 */
function serversOf (options: AsyncApiOptions, server: AddressSource | undefined): { servers?: Record<string, AsyncApiServer> } {
  if (options.servers !== undefined) return { servers: options.servers }
  const address = server?.address()
  if (address === null || address === undefined || typeof address === 'string') return {}
  const unspecified = address.address === '0.0.0.0' || address.address === '::'
  const host = unspecified ? 'localhost' : address.family === 'IPv6' ? `[${address.address}]` : address.address
  return { servers: { default: { host: `${host}:${address.port}`, protocol: server instanceof TlsServer ? 'wss' : 'ws' } } }
}

function dropUndefined<T extends object> (object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T
}
