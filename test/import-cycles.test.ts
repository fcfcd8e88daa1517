import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import ts from 'typescript'

// No module of lib/ may reach itself through its imports: a cycle means two
// modules that cannot be read (or loaded) one before the other. Type-only
// imports count too, since they tie the modules together just the same for
// a reader. The graph comes from TypeScript's own import scanner
// (`preProcessFile`: `import`, `import type`, `export … from`, `import()`),
// so it sees what tsc sees without compiling anything.

const LIB = path.join(__dirname, '..', 'lib')

/** The modules a file imports, resolved to files among `known` (package imports are left out). */
function importsOf (file: string, source: string, known: ReadonlySet<string>): string[] {
  const found: string[] = []
  for (const { fileName } of ts.preProcessFile(source, true, true).importedFiles) {
    if (!fileName.startsWith('.')) continue
    const base = path.join(path.dirname(file), fileName).replace(/\.js$/, '')
    const target = [base + '.ts', path.join(base, 'index.ts')].find((candidate) => known.has(candidate))
    if (target !== undefined) found.push(target)
  }
  return found
}

/** Every cycle a depth-first walk closes, each as the path from a module back to itself. */
function findCycles (graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const cycles: string[][] = []
  const done = new Set<string>()
  const walking: string[] = [] // the modules being walked, outermost first
  const visit = (file: string): void => {
    walking.push(file)
    for (const next of graph.get(file) ?? []) {
      const at = walking.indexOf(next)
      if (at !== -1) cycles.push([...walking.slice(at), next])
      else if (!done.has(next)) visit(next)
    }
    walking.pop()
    done.add(file)
  }
  for (const file of graph.keys()) if (!done.has(file)) visit(file)
  return cycles
}

function graphOf (sources: ReadonlyMap<string, string>): Map<string, string[]> {
  const known = new Set(sources.keys())
  return new Map([...sources].map(([file, source]) => [file, importsOf(file, source, known)]))
}

t.test('no import cycle in lib/, type-only imports included', async (t) => {
  const files = (fs.readdirSync(LIB, { recursive: true }) as string[])
    .filter((name) => name.endsWith('.ts'))
    .map((name) => path.join(LIB, name))
  t.ok(files.length > 10, `the walk found lib/'s modules (${files.length})`)
  const graph = graphOf(new Map(files.map((file) => [file, fs.readFileSync(file, 'utf8')])))
  const cycles = findCycles(graph).map((cycle) => cycle.map((file) => path.relative(LIB, file)).join(' → '))
  t.same(cycles, [], 'no module imports itself, directly or through others')
})

t.test('the check finds a cycle made only of type imports and re-exports', async (t) => {
  const graph = graphOf(new Map([
    ['/x/a.ts', "import type { B } from './b.js'\nexport type A = B"],
    ['/x/b.ts', "export { C as B } from './dir/index.js'"],
    ['/x/dir/index.ts', "import { type A } from '../a.js'\nimport fs from 'node:fs'\nexport type C = A"],
    ['/x/free.ts', "import type { A } from './a.js'"]
  ]))
  t.same(graph.get('/x/dir/index.ts'), ['/x/a.ts'], "'./dir/index.js' resolves, package imports are left out")
  t.same(findCycles(graph), [['/x/a.ts', '/x/b.ts', '/x/dir/index.ts', '/x/a.ts']])
})
