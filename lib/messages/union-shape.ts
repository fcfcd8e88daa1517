/*
 * The shape of a discriminated union, as two readers look for it: the JSON
 * message compiler (compile.ts, to validate one branch by its tag) and the
 * AsyncAPI generator (one message per branch). Each decides what else a
 * branch may be (inline only, or `$ref`s followed) and which tag it keeps.
 */

export type UnionKeyword = 'anyOf' | 'oneOf'

/**
 * The branches of a schema that is nothing but one `anyOf` or `oneOf` of
 * two or more branches, besides keywords in `annotations` and `type:
 * 'object'`; null for anything else (other constraints apply to every branch).
 */
export function unionBranches (schema: unknown, annotations: ReadonlySet<string>): { keyword: UnionKeyword, branches: unknown[] } | null {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return null
  const node = schema as Record<string, unknown>
  let keyword: UnionKeyword | undefined
  for (const key of Object.keys(node)) {
    if (key === 'anyOf' || key === 'oneOf') {
      if (keyword !== undefined) return null
      keyword = key
    } else if (!annotations.has(key) && !(key === 'type' && node.type === 'object')) {
      return null
    }
  }
  const branches = keyword === undefined ? undefined : node[keyword]
  if (keyword === undefined || !Array.isArray(branches) || branches.length < 2) return null
  return { keyword, branches }
}

/**
 * A branch's required properties fixed to one value (`const`, or a one-value
 * `enum`) that is a string or a number: property → value. `resolve` gives
 * the schema a property's subschema stands for (a reader following `$ref`s).
 * Null when the branch has no `properties` object or `required` array.
 */
export function requiredConstants (branch: Record<string, unknown>, resolve: (property: unknown) => unknown = (property) => property): Map<string, string | number> | null {
  const properties = branch.properties as Record<string, unknown> | null | undefined
  const required = branch.required
  if (properties === null || typeof properties !== 'object' || !Array.isArray(required)) return null
  const tags = new Map<string, string | number>()
  for (const name of required) {
    if (typeof name !== 'string' || !Object.hasOwn(properties, name)) continue
    const tag = constantOf(resolve(properties[name]))
    if (tag !== undefined) tags.set(name, tag)
  }
  return tags
}

function constantOf (property: unknown): string | number | undefined {
  if (property === null || typeof property !== 'object') return undefined
  const p = property as { const?: unknown, enum?: unknown }
  let value: unknown
  if (Object.hasOwn(p, 'const')) value = p.const
  else if (Array.isArray(p.enum) && p.enum.length === 1) value = p.enum[0]
  return typeof value === 'string' || typeof value === 'number' ? value : undefined
}
