/**
 * The public shapes of the AsyncAPI support: the options of
 * `app.websocket.asyncapi()` and of the plugin's `asyncapi` option, and the
 * document (AsyncAPI 3.0) as far as this plugin writes it. Fields the
 * plugin never writes are still allowed, through `info` and `servers`.
 */

export interface AsyncApiInfo {
  /** Default 'WebSocket API'. */
  title?: string
  /** The version of your API (not of AsyncAPI). Default '1.0.0'. */
  version?: string
  description?: string
  termsOfService?: string
  contact?: { name?: string, url?: string, email?: string }
  license?: { name: string, url?: string }
  [extension: `x-${string}`]: unknown
}

export interface AsyncApiServer {
  /** Host name, and port if not the default (`api.example.com`, `127.0.0.1:3000`). */
  host: string
  /** `ws` or `wss`. */
  protocol: string
  pathname?: string
  title?: string
  summary?: string
  description?: string
  [extension: `x-${string}`]: unknown
}

/** What `app.websocket.asyncapi()` takes (and the plugin's `asyncapi` option, as defaults). */
export interface AsyncApiOptions {
  /** The document's `info`; title and version default to 'WebSocket API' and '1.0.0'. */
  info?: AsyncApiInfo
  /** The document's `servers`. Default: one server named `default` at the listening address, once the app listens. */
  servers?: Record<string, AsyncApiServer>
  /** The document's `id` (a URI identifying the application). */
  id?: string
}

/** The plugin's `asyncapi` option: document defaults, and where to serve it. */
export interface AsyncApiPluginOptions extends AsyncApiOptions {
  /**
   * Serve the document under this path: an HTML page at the path itself,
   * the JSON at `<path>/json`, the YAML at `<path>/yaml`. Default: not served.
   */
  routePrefix?: string
}

export interface AsyncApiMessage {
  name?: string
  title?: string
  summary?: string
  description?: string
  deprecated?: boolean
  payload?: unknown
  examples?: Array<{ name?: string, summary?: string, payload?: unknown }>
  tags?: Array<{ name: string }>
}

export interface AsyncApiReference {
  $ref: string
}

export interface AsyncApiParameter {
  description?: string
  enum?: string[]
  default?: string
  examples?: string[]
}

export interface AsyncApiChannel {
  address: string
  title?: string
  summary?: string
  description?: string
  tags?: Array<{ name: string }>
  parameters?: Record<string, AsyncApiParameter>
  messages?: Record<string, AsyncApiMessage>
  bindings?: {
    ws: {
      method: 'GET'
      query?: unknown
      headers?: unknown
      bindingVersion: '0.1.0'
      /** The subprotocols the route speaks, in order of preference (an extension). */
      'x-subprotocols'?: string[]
    }
  }
  'x-deprecated'?: boolean
}

export interface AsyncApiOperation {
  action: 'send' | 'receive'
  channel: AsyncApiReference
  messages: AsyncApiReference[]
  summary?: string
  description?: string
  tags?: Array<{ name: string }>
  'x-deprecated'?: boolean
}

/** An AsyncAPI 3.0 document, as `app.websocket.asyncapi()` builds it. */
export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  id?: string
  info: AsyncApiInfo & { title: string, version: string }
  servers?: Record<string, AsyncApiServer>
  defaultContentType: 'application/json'
  channels: Record<string, AsyncApiChannel>
  operations: Record<string, AsyncApiOperation>
  components?: { schemas?: Record<string, unknown> }
}
