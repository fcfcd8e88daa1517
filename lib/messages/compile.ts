import type { FastifyInstance, FastifySchemaCompiler, FastifySerializerCompiler, RouteOptions } from 'fastify'
import type { SchemaErrorFormatter } from './errors.js'
import { requiredConstants, unionBranches } from './union-shape.js'

/**
 * Resolving the compilers Fastify would use for a route's own schemas.
 *
 * A route-level `validatorCompiler` / `serializerCompiler` wins. Otherwise
 * the encapsulated instance's schema controller provides the compiler —
 * the one installed with `setValidatorCompiler`, or Fastify's default Ajv
 * compiler built with the app's `ajv` options and the schemas added with
 * `addSchema` in that instance and its parents. Fastify builds that default
 * compiler lazily (only for routes with body/querystring/params/headers
 * schemas), and the public `instance.validatorCompiler` getter returns
 * undefined — or the parent's compiler, which lacks the instance's own
 * schemas — until it has. So this asks the controller to set itself up,
 * exactly as Fastify's own route compilation does. The controller is not
 * public API: if it cannot be found, compilation falls back to the public
 * `request.compileValidationSchema` / `reply.compileSerializationSchema` on
 * the route's first connection (cached per route either way).
 */

interface SchemaControllerLike {
  validatorCompiler?: FastifySchemaCompiler<any>
  serializerCompiler?: FastifySerializerCompiler<any>
  setupValidator (serverOptions: unknown): void
  setupSerializer (serverOptions: unknown): void
}

let internalsEnabled = true

/** @internal For tests: pretend Fastify's schema controller cannot be reached. */
export function setFastifyInternalsEnabled (enabled: boolean): void {
  internalsEnabled = enabled
}

function findSymbol (object: object, description: string): symbol | undefined {
  for (let o: object | null = object; o !== null; o = Object.getPrototypeOf(o)) {
    for (const sym of Object.getOwnPropertySymbols(o)) {
      if (sym.description === description) return sym
    }
  }
  return undefined
}

function internal (instance: FastifyInstance, description: string): unknown {
  if (!internalsEnabled) return undefined
  const sym = findSymbol(instance, description)
  return sym === undefined ? undefined : (instance as any)[sym]
}

function schemaController (instance: FastifyInstance): SchemaControllerLike | undefined {
  const controller = internal(instance, 'fastify.schemaController') as SchemaControllerLike | undefined
  if (controller === undefined || controller === null || typeof controller.setupValidator !== 'function' || typeof controller.setupSerializer !== 'function') return undefined
  return controller
}

function serverOptions (instance: FastifyInstance): object | undefined {
  const options = internal(instance, 'fastify.options')
  return typeof options === 'object' && options !== null ? options : undefined
}

/** Caches the compilers set up per schema controller, so each is set up once. */
export class CompilerCache {
  private readonly validators = new WeakMap<object, FastifySchemaCompiler<any>>()
  private readonly serializers = new WeakMap<object, FastifySerializerCompiler<any>>()

  /** The validator compiler of a route, or undefined if only the lazy path can find it. */
  validatorCompiler (instance: FastifyInstance, routeOptions: RouteOptions): FastifySchemaCompiler<any> | undefined {
    if (typeof routeOptions.validatorCompiler === 'function') return routeOptions.validatorCompiler
    const controller = schemaController(instance)
    const options = serverOptions(instance)
    if (controller === undefined || options === undefined) return undefined
    let compiler = this.validators.get(controller)
    if (compiler === undefined) {
      controller.setupValidator(options)
      compiler = controller.validatorCompiler
      if (typeof compiler !== 'function') return undefined
      this.validators.set(controller, compiler)
    }
    return compiler
  }

  /** The serializer compiler of a route, or undefined if only the lazy path can find it. */
  serializerCompiler (instance: FastifyInstance, routeOptions: RouteOptions): FastifySerializerCompiler<any> | undefined {
    if (typeof routeOptions.serializerCompiler === 'function') return routeOptions.serializerCompiler
    const controller = schemaController(instance)
    const options = serverOptions(instance)
    if (controller === undefined || options === undefined) return undefined
    let compiler = this.serializers.get(controller)
    if (compiler === undefined) {
      controller.setupSerializer(options)
      compiler = controller.serializerCompiler
      if (typeof compiler !== 'function') return undefined
      this.serializers.set(controller, compiler)
    }
    return compiler
  }
}

/** The route's, then the instance's (`setSchemaErrorFormatter`), schema error formatter, if any. */
export function schemaErrorFormatter (instance: FastifyInstance, routeOptions: RouteOptions): SchemaErrorFormatter | undefined {
  if (typeof routeOptions.schemaErrorFormatter === 'function') return routeOptions.schemaErrorFormatter as SchemaErrorFormatter
  const formatter = internal(instance, 'fastify.schemaErrorFormatter')
  return typeof formatter === 'function' ? formatter as SchemaErrorFormatter : undefined
}

/** Fluent schemas (fluent-json-schema) become plain JSON Schema, as Fastify does for its own parts. */
export function unwrapSchema (schema: unknown): unknown {
  if (schema !== null && typeof schema === 'object' && ((schema as any).isFluentSchema === true || (schema as any)[Symbol.for('fluent-schema-object')] !== undefined)) {
    return (schema as any).valueOf()
  }
  return schema
}

/** A union split by a discriminating property. */
export interface SplitUnion {
  /** The branches, each compiled on its own. */
  branches: unknown[]
  /**
   * For every property that tells the branches apart (required in each,
   * a different `const` in each): tag value → branch index.
   */
  keys: Map<string, Map<unknown, number>>
}

// Keywords that say nothing about the value: a union carrying only these besides anyOf/oneOf can be split.
const ANNOTATIONS = new Set(['$id', '$schema', '$comment', 'title', 'description', 'examples', 'deprecated', 'readOnly', 'writeOnly'])

/**
 * Recognises a discriminated union: `anyOf` / `oneOf` of inline object
 * schemas, each requiring the same property with a distinct constant
 * (`const`, or a one-value `enum`) — what `Type.Union([Type.Object({ type:
 * Type.Literal('join'), … }), …])` produces. When the tag, as sent, names
 * a branch, validating that branch is equivalent to validating the union,
 * reports the branch's own errors instead of every branch's, and costs one
 * branch instead of many. A tag that names none may still be valid once the
 * union's validator coerces it, so that validator is kept as well
 * (`DiscriminatedUnionValidator` in validate.ts).
 * Returns null for anything else (including branches with `$ref`s, which
 * may point into the union's root).
 */
export function splitDiscriminatedUnion (schema: unknown): SplitUnion | null {
  // (`type: 'object'` beside the union changes nothing: the split path refuses non-objects anyway)
  const union = unionBranches(schema, ANNOTATIONS)
  if (union === null) return null
  const { branches } = union

  let candidates: Set<string> | null = null
  const tagsPerBranch: Array<Map<string, unknown>> = []
  for (const branch of branches) {
    if (branch === null || typeof branch !== 'object' || Array.isArray(branch)) return null
    if (JSON.stringify(branch).includes('"$ref"')) return null
    const tags = requiredConstants(branch as Record<string, unknown>)
    if (tags === null) return null
    tagsPerBranch.push(tags)
    const next = new Set<string>()
    for (const name of candidates ?? tags.keys()) {
      if (tags.has(name)) next.add(name)
    }
    if (next.size === 0) return null
    candidates = next
  }

  const keys = new Map<string, Map<unknown, number>>()
  for (const name of candidates!) {
    const map = new Map<unknown, number>()
    tagsPerBranch.forEach((tags, index) => map.set(tags.get(name), index))
    if (map.size === branches.length) keys.set(name, map) // distinct in every branch
  }
  if (keys.size === 0) return null
  return { branches, keys }
}

