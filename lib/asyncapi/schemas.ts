/**
 * JSON Schemas on their way into the AsyncAPI document.
 *
 * Route schemas refer to schemas shared with `app.addSchema` by `$id`
 * (`{ $ref: 'Room#' }`, `{ $ref: 'http://example.com/user.json#/properties/name' }`).
 * Those ids mean nothing inside the document, so every `$ref` is rewritten
 * into a JSON pointer within it: a shared schema becomes
 * `components.schemas.<name>` (only those the routes reach, directly or
 * through one another) and is referenced, never inlined. A route schema
 * with local references (`#/definitions/…`) is itself moved into
 * `components.schemas`, so that its pointers still land inside it.
 *
 * `$id` is dropped from what is written: the references no longer need it,
 * and a nested `$id` would change the base URI that the document's own
 * pointers are resolved against.
 */

/** Where a schema node lives: its root (for `#…` references), its base URI, and its pointer in the document if it has one. */
export interface SchemaContext {
  root: unknown
  base: string | undefined
  /** `#/components/schemas/<name>` for a shared or moved root; undefined for a schema written inline. */
  pointer: string | undefined
}

interface SharedSchema {
  id: string
  name: string
  schema: unknown
  used: boolean
}

// Keywords whose values are data, not schemas: a `$ref` key inside them is left alone.
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples', 'example'])
const COMPONENT_NAME = /^[\w.-]+$/

export class SchemaStore {
  readonly #shared = new Map<string, SharedSchema>()
  readonly #names = new Set<string>()
  /** Route schemas moved into components, by name (converted already). */
  readonly #moved = new Map<string, unknown>()

  /** Adds the schemas of one encapsulation context (`instance.getSchemas()`); the first of an `$id` wins. */
  addShared (schemas: Record<string, unknown>): void {
    for (const [id, schema] of Object.entries(schemas)) {
      const key = normalizeId(id)
      if (this.#shared.has(key)) continue
      this.#shared.set(key, { id, name: this.#uniqueName(nameFromId(id)), schema, used: false })
    }
  }

  /** A component name not taken yet, derived from `wanted`. */
  #uniqueName (wanted: string): string {
    let name = COMPONENT_NAME.test(wanted) ? wanted : (wanted.replace(/[^\w.-]+/g, '_') || 'schema')
    for (let i = 2; this.#names.has(name); i++) name = `${name.replace(/_\d+$/, '')}_${i}`
    this.#names.add(name)
    return name
  }

  /**
   * A route schema as the document holds it: references rewritten; moved
   * into `components.schemas` under a name derived from `name` (and
   * replaced by a reference) when it has local references. Returns the
   * value to write and the context its parts resolve in.
   */
  place (schema: unknown, name: string): { value: unknown, context: SchemaContext } {
    const base = typeof (schema as { $id?: unknown })?.$id === 'string' ? (schema as { $id: string }).$id : undefined
    if (!hasLocalRef(schema)) {
      const context: SchemaContext = { root: schema, base, pointer: undefined }
      return { value: this.convert(schema, context), context }
    }
    const unique = this.#uniqueName(name)
    const context: SchemaContext = { root: schema, base, pointer: `#/components/schemas/${unique}` }
    this.#moved.set(unique, this.convert(schema, context))
    return { value: { $ref: context.pointer }, context }
  }

  /** `node` (a part of `context.root`) with every `$ref` rewritten into a pointer within the document. */
  convert (node: unknown, context: SchemaContext): unknown {
    if (Array.isArray(node)) return node.map((item) => this.convert(item, context))
    if (node === null || typeof node !== 'object') return node
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(node)) {
      if (value === undefined || typeof value === 'function') continue
      if (key === '$id' && typeof value === 'string') continue
      if (key === '$ref' && typeof value === 'string') out.$ref = this.#rewrite(value, context)
      else if (DATA_KEYWORDS.has(key)) out[key] = value
      else out[key] = this.convert(value, context)
    }
    return out
  }

  /** The document pointer a reference becomes; the reference itself if it names no schema this store knows. */
  #rewrite (ref: string, context: SchemaContext): string {
    const target = this.#target(ref, context)
    if (target === undefined) return ref
    if (target.shared !== undefined) target.shared.used = true
    return target.pointer + target.fragment
  }

  #target (ref: string, context: SchemaContext): { pointer: string, fragment: string, shared?: SharedSchema, root: unknown, base: string | undefined } | undefined {
    const hash = ref.indexOf('#')
    const uri = hash === -1 ? ref : ref.slice(0, hash)
    const fragment = hash === -1 ? '' : ref.slice(hash + 1)
    // Only JSON pointer fragments can be followed into a schema ('' is its root).
    if (fragment !== '' && !fragment.startsWith('/')) return undefined
    const pointerFragment = fragment === '' ? '' : '/' + fragment.slice(1)
    if (uri === '') {
      return context.pointer === undefined ? undefined : { pointer: context.pointer, fragment: pointerFragment, root: context.root, base: context.base }
    }
    const shared = this.#shared.get(normalizeId(resolveUri(uri, context.base)))
    if (shared === undefined) return undefined
    return { pointer: `#/components/schemas/${shared.name}`, fragment: pointerFragment, shared, root: shared.schema, base: shared.id }
  }

  /**
   * Follows `$ref`s from `node` to the schema they name (for reading it:
   * union branches, parameter properties). Returns the node reached, with
   * the context it resolves in and its pointer in the document, if any.
   */
  resolve (node: unknown, context: SchemaContext): { node: unknown, context: SchemaContext, pointer: string | undefined } {
    let pointer: string | undefined
    for (let hops = 0; hops < 32; hops++) {
      const ref = (node as { $ref?: unknown } | null)?.$ref
      if (typeof ref !== 'string') return { node, context, pointer }
      const target = this.#target(ref, context)
      if (target === undefined) return { node, context, pointer }
      if (target.shared !== undefined) target.shared.used = true
      const found = evaluatePointer(target.root, target.fragment)
      if (found === undefined) return { node, context, pointer }
      context = { root: target.root, base: target.base, pointer: target.pointer }
      pointer = target.pointer + target.fragment
      node = found
    }
    return { node, context, pointer }
  }

  /** `components.schemas`: the moved route schemas and the shared schemas reached, each converted. */
  components (): Record<string, unknown> {
    const out: Record<string, unknown> = Object.fromEntries(this.#moved)
    // Converting a shared schema may reach others: repeat until none is new.
    for (let added = true; added;) {
      added = false
      for (const shared of this.#shared.values()) {
        if (!shared.used || Object.hasOwn(out, shared.name)) continue
        out[shared.name] = this.convert(shared.schema, { root: shared.schema, base: shared.id, pointer: `#/components/schemas/${shared.name}` })
        added = true
      }
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
  }
}

/** Whether a schema refers into itself (`#`, `#/definitions/…`), outside its data keywords. */
function hasLocalRef (node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasLocalRef)
  if (node === null || typeof node !== 'object') return false
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string' && value.startsWith('#')) return true
    if (!DATA_KEYWORDS.has(key) && hasLocalRef(value)) return true
  }
  return false
}

/** `$id`s compare without an empty fragment: `Room` and `Room#` are one schema. */
function normalizeId (id: string): string {
  return id.endsWith('#') ? id.slice(0, -1) : id
}

/** A reference's URI resolved against its base, when the base is absolute (`http://…/a.json` + `b.json`). */
function resolveUri (uri: string, base: string | undefined): string {
  if (base === undefined) return uri
  try {
    return new URL(uri, base).href
  } catch {
    return uri // a base like 'Room' is no URL: ids are matched as written
  }
}

/** A component name for a shared schema: the last segment of its `$id`, without `.json`. */
function nameFromId (id: string): string {
  const bare = normalizeId(id).replace(/\/+$/, '')
  const last = bare.slice(Math.max(bare.lastIndexOf('/'), bare.lastIndexOf(':')) + 1)
  return last.replace(/\.json$/i, '') || bare || 'schema'
}

/** The value at a JSON pointer (`/a/b`, '' for the root), or undefined. */
export function evaluatePointer (root: unknown, pointer: string): unknown {
  if (pointer === '') return root
  let node = root
  for (const raw of pointer.slice(1).split('/')) {
    let token: string
    try {
      token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
    } catch {
      return undefined // a malformed %-escape names nothing
    }
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, token)) return undefined
    node = (node as Record<string, unknown>)[token]
  }
  return node
}

/** A JSON pointer token for a key (`/` and `~` escaped). */
export function pointerToken (key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1')
}
