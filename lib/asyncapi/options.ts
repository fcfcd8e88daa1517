import { checkNestedKeys } from '../fastify/options.js'
import { invalidOption } from '../fastify/settings.js'
import type { AsyncApiOptions, AsyncApiPluginOptions } from './types.js'

/*
 * The plugin's `asyncapi` option and the options of
 * `app.websocket.asyncapi()`, checked as every other option is: an unknown
 * key throws WS_ERR_UNKNOWN_OPTION (with a near miss), a value it cannot
 * take WS_ERR_INVALID_OPTION, so a typo in `routePrefix` does not silently
 * leave the document unserved.
 */

const DOCUMENT_KEYS = ['info', 'servers', 'id']
const PLUGIN_KEYS = new Set([...DOCUMENT_KEYS, 'routePrefix'])
const CALL_KEYS = new Set([...DOCUMENT_KEYS, 'yaml'])

/** The plugin-level `asyncapi` option, checked; `routePrefix` without its trailing slash. */
export function resolveAsyncApiPluginOptions (value: unknown): AsyncApiPluginOptions | undefined {
  if (value === undefined) return undefined
  const where = 'fastify-rfc6455'
  if (!isObject(value)) throw invalidOption(`${where}: asyncapi must be an object ({ routePrefix, info, servers, id }), got ${describe(value)}`)
  checkNestedKeys(value, PLUGIN_KEYS, 'asyncapi', where)
  checkDocumentOptions(value, 'asyncapi', where)
  const { routePrefix } = value as AsyncApiPluginOptions
  if (routePrefix === undefined) return value
  if (typeof routePrefix !== 'string' || !routePrefix.startsWith('/') || routePrefix.replace(/\/+$/, '') === '') {
    throw invalidOption(`${where}: asyncapi.routePrefix must be a path below the root, such as '/asyncapi', got ${describe(routePrefix)}`)
  }
  return { ...value, routePrefix: routePrefix.replace(/\/+$/, '') }
}

/** The options of one `asyncapi()` call, checked, over the plugin-level defaults (`info` merged key by key). */
export function mergeAsyncApiOptions (defaults: AsyncApiOptions, options: unknown): AsyncApiOptions & { yaml?: boolean } {
  const where = 'app.websocket.asyncapi()'
  if (options === undefined) return pick(defaults)
  if (!isObject(options)) throw invalidOption(`${where}: options must be an object, got ${describe(options)}`)
  checkNestedKeys(options, CALL_KEYS, 'options', where)
  checkDocumentOptions(options, 'options', where)
  const { yaml } = options as { yaml?: unknown }
  if (yaml !== undefined && typeof yaml !== 'boolean') throw invalidOption(`${where}: options.yaml must be true or false, got ${describe(yaml)}`)
  const call = options as AsyncApiOptions & { yaml?: boolean }
  return {
    ...pick(defaults),
    ...pick(call),
    ...(defaults.info === undefined && call.info === undefined ? {} : { info: { ...defaults.info, ...call.info } }),
    ...(yaml === undefined ? {} : { yaml })
  }
}

/** Only the document's own keys (not `routePrefix`), and only those given. */
function pick (options: AsyncApiOptions): AsyncApiOptions {
  const out: AsyncApiOptions = {}
  if (options.info !== undefined) out.info = options.info
  if (options.servers !== undefined) out.servers = options.servers
  if (options.id !== undefined) out.id = options.id
  return out
}

function checkDocumentOptions (options: object, shown: string, where: string): void {
  const { info, servers, id } = options as Record<string, unknown>
  if (info !== undefined) {
    if (!isObject(info)) throw invalidOption(`${where}: ${shown}.info must be an object ({ title, version, description, … }), got ${describe(info)}`)
    for (const key of ['title', 'version', 'description'] as const) {
      const field = (info as Record<string, unknown>)[key]
      if (field !== undefined && typeof field !== 'string') throw invalidOption(`${where}: ${shown}.info.${key} must be a string, got ${describe(field)}`)
    }
  }
  if (servers !== undefined) {
    if (!isObject(servers)) throw invalidOption(`${where}: ${shown}.servers must be an object of servers by name, got ${describe(servers)}`)
    for (const [name, server] of Object.entries(servers)) {
      const { host, protocol } = (isObject(server) ? server : {}) as Record<string, unknown>
      if (typeof host !== 'string' || typeof protocol !== 'string') {
        throw invalidOption(`${where}: ${shown}.servers.${name} must be { host, protocol } (e.g. { host: 'api.example.com', protocol: 'wss' }), got ${describe(server)}`)
      }
    }
  }
  if (id !== undefined && typeof id !== 'string') throw invalidOption(`${where}: ${shown}.id must be a string (a URI), got ${describe(id)}`)
}

function isObject (value: unknown): value is object {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'an array'
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value)
}
