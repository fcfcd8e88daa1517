import type { SchemaContext, SchemaStore } from './schemas.js'
import type { AsyncApiMessage } from './types.js'
import { requiredConstants, unionBranches, type UnionKeyword } from '../messages/union-shape.js'

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
  keyword: UnionKeyword
  /** As written (possibly `$ref`s). */
  branches: unknown[]
  /** Each branch with its references followed. */
  resolved: Array<Record<string, unknown>>
  /** The discriminating property, and its constant in each branch. */
  property: string
  tags: Array<string | number>
}

function discriminatedUnion (store: SchemaStore, node: unknown, context: SchemaContext): Union | null {
  // Other constraints beside the union apply to every variant: one message for the whole schema.
  const union = unionBranches(node, ANNOTATIONS)
  if (union === null) return null
  const { keyword, branches } = union

  const resolved: Array<Record<string, unknown>> = []
  const tagsPerBranch: Array<Map<string, string | number>> = []
  for (const branch of branches) {
    const found = store.resolve(branch, context)
    const schema = found.node as Record<string, unknown> | null
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return null
    const tags = requiredConstants(schema, (property) => store.resolve(property, found.context).node)
    if (tags === null) return null
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
