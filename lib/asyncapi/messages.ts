import type { SchemaContext, SchemaStore } from './schemas.js'
import type { AsyncApiMessage } from './types.js'

/**
 * The AsyncAPI messages of one side of a route: `schema.message` (what the
 * server receives) or `schema.outgoing` (what it sends).
 *
 * A discriminated union — `anyOf`/`oneOf` of objects that each require one
 * property with a distinct constant, what `Type.Union([Type.Object({ type:
 * Type.Literal('join'), … }), …])` produces — becomes one message per
 * variant, named after its tag: what a reader (or a code generator) wants
 * to see, and what `conn.onJson(discriminator, handlers)` dispatches on.
 * Unlike the validator's split (messages/compile.ts), branches may be
 * `$ref`s to shared schemas: here they are only read, never compiled.
 * Anything else is one message whose payload is the whole schema.
 */

export interface MessageEntry {
  /** The message's key in the channel (unique there once document.ts is done). */
  key: string
  message: AsyncApiMessage
}

export type Side = 'receive' | 'send'

// Keywords that say nothing about the value: a union carrying only these besides anyOf/oneOf is split.
const ANNOTATIONS = new Set(['$id', '$schema', '$comment', 'title', 'description', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'definitions', '$defs'])

/** The messages `schema` describes; `name` names the schema in components should it have to move there. */
export function messagesOf (store: SchemaStore, schema: unknown, side: Side, name: string): MessageEntry[] {
  const placed = store.place(schema, name)
  const root = store.resolve(schema, placed.context)
  const rootPointer = root.pointer ?? placed.context.pointer
  const union = discriminatedUnion(store, root.node, root.context)
  if (union === null) {
    const node = root.node as Record<string, unknown> | null
    const title = typeof node?.title === 'string' ? node.title : undefined
    // Named by its title, else by the shared schema it is (`{ $ref: 'Ping#' }` → Ping), else by its side.
    const shared = /^#\/components\/schemas\/([^/]+)$/.exec(root.pointer ?? '')?.[1]
    const key = title ?? shared ?? (side === 'receive' ? 'message' : 'outgoing')
    return [{ key: messageKey(key), message: withExamples({ name: key, title, description: describe(node), payload: placed.value }, node) }]
  }
  return union.branches.map((branch, index) => {
    const tag = union.tags[index]
    // A branch that is a reference stays one (to the shared schema); an inline branch of a schema
    // that lives in components is pointed at there; otherwise it is written inline.
    const payload = isRef(branch) || rootPointer === undefined
      ? store.convert(branch, root.context)
      : { $ref: `${rootPointer}/${union.keyword}/${index}` }
    const resolved = union.resolved[index]
    const message: AsyncApiMessage = {
      name: String(tag),
      title: typeof resolved.title === 'string' ? resolved.title : undefined,
      summary: `${union.property}: ${JSON.stringify(tag)}`,
      description: describe(resolved),
      payload
    }
    return { key: messageKey(String(tag)), message: withExamples(message, resolved) }
  })
}

interface Union {
  keyword: 'anyOf' | 'oneOf'
  /** As written (possibly `$ref`s). */
  branches: unknown[]
  /** Each branch with its references followed. */
  resolved: Array<Record<string, unknown>>
  /** The discriminating property, and its constant in each branch. */
  property: string
  tags: Array<string | number>
}

function discriminatedUnion (store: SchemaStore, node: unknown, context: SchemaContext): Union | null {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return null
  let keyword: 'anyOf' | 'oneOf' | undefined
  for (const key of Object.keys(node)) {
    if (key === 'anyOf' || key === 'oneOf') {
      if (keyword !== undefined) return null
      keyword = key
    } else if (!ANNOTATIONS.has(key) && !(key === 'type' && (node as { type?: unknown }).type === 'object')) {
      return null // other constraints apply to every variant: one message for the whole schema
    }
  }
  const branches = keyword === undefined ? undefined : (node as Record<string, unknown>)[keyword]
  if (keyword === undefined || !Array.isArray(branches) || branches.length < 2) return null

  const resolved: Array<Record<string, unknown>> = []
  const tagsPerBranch: Array<Map<string, string | number>> = []
  for (const branch of branches) {
    const found = store.resolve(branch, context)
    const schema = found.node as Record<string, unknown> | null
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return null
    const properties = schema.properties as Record<string, unknown> | undefined
    const required = schema.required
    if (properties === null || typeof properties !== 'object' || !Array.isArray(required)) return null
    const tags = new Map<string, string | number>()
    for (const name of required) {
      if (typeof name !== 'string' || !Object.hasOwn(properties, name)) continue
      const tag = constantOf(store.resolve(properties[name], found.context).node)
      if (tag !== undefined) tags.set(name, tag)
    }
    resolved.push(schema)
    tagsPerBranch.push(tags)
  }
  // The first property, in the first branch's order, that every branch fixes to a value of its own.
  for (const property of tagsPerBranch[0].keys()) {
    const tags = tagsPerBranch.map((t) => t.get(property))
    if (tags.some((tag) => tag === undefined)) continue
    if (new Set(tags).size !== tags.length || new Set(tags.map(String)).size !== tags.length) continue
    return { keyword, branches, resolved, property, tags: tags as Array<string | number> }
  }
  return null
}

function constantOf (property: unknown): string | number | undefined {
  if (property === null || typeof property !== 'object') return undefined
  const p = property as { const?: unknown, enum?: unknown }
  let value: unknown
  if (Object.hasOwn(p, 'const')) value = p.const
  else if (Array.isArray(p.enum) && p.enum.length === 1) value = p.enum[0]
  return typeof value === 'string' || typeof value === 'number' ? value : undefined
}

function isRef (node: unknown): boolean {
  return node !== null && typeof node === 'object' && typeof (node as { $ref?: unknown }).$ref === 'string'
}

function describe (node: Record<string, unknown> | null): string | undefined {
  return typeof node?.description === 'string' ? node.description : undefined
}

/** JSON Schema `examples` (payloads) become the message's examples. */
function withExamples (message: AsyncApiMessage, node: Record<string, unknown> | null): AsyncApiMessage {
  const examples = node?.examples
  if (Array.isArray(examples) && examples.length > 0) message.examples = examples.map((payload) => ({ payload }))
  return message
}

/** A channel key for a message: the tag, with characters outside `[\w.-]` replaced. */
export function messageKey (name: string): string {
  return name.replace(/[^\w.-]+/g, '_') || 'message'
}
