// The YAML emitter (lib/asyncapi/yaml.ts) against three readers: js-yaml
// (what @asyncapi/parser reads YAML with) and `yaml` in its 1.2 and 1.1
// modes. Each value must read back as the value written; and the forms
// chosen are checked for the cases that decide them.
import { createRequire } from 'node:module'
import t from 'tap'
import { toYaml } from '../../lib/asyncapi/yaml.js'

// Both come with the dev dependencies: js-yaml through @asyncapi/parser, yaml through @fastify/swagger.
const jsyaml = createRequire(require.resolve('@asyncapi/parser'))('js-yaml') as { load (text: string): unknown }
const YAML = createRequire(require.resolve('@fastify/swagger'))('yaml') as { parse (text: string, options?: object): unknown }

const readers: Array<[string, (text: string) => unknown]> = [
  ['js-yaml', (text) => jsyaml.load(text)],
  ['yaml 1.2', (text) => YAML.parse(text)],
  ['yaml 1.1', (text) => YAML.parse(text, { version: '1.1' })]
]

const TRICKY_STRINGS = [
  '', ' ', 'plain words', '123', '-1', '1.5', '1e3', '0x1F', '0o17', '1_000', '1:20', '.inf', '-.inf', '.nan', 'NaN', 'Infinity',
  'true', 'True', 'TRUE', 'false', 'yes', 'Yes', 'no', 'NO', 'on', 'Off', 'y', 'N', 'null', 'Null', '~', '2024-01-01', '2001-12-14t21:59:43.10-05:00',
  'a: b', 'a:b', 'a #b', '#comment', '- item', '-', '? key', ': x', '[a]', '{a}', '*alias', '&anchor', '!tag', '%directive', '@at', '`tick`',
  '|', '>', '"quoted"', "'single'", 'trailing ', ' leading', 'tab\there', 'line\nbreak', 'ends\n', 'two ends\n\n', '\nstarts', 'crlf\r\nline',
  'nel\u0085x', 'ls\u2028x', 'ps\u2029x', 'del\u007f', 'bom\ufeff', 'nul\u0000', 'bell\u0007', 'esc\u001b', 'é ü 漢字 😀', '😀 first', 'lone\ud800',
  '<<', '=', '$ref', '/chat/{room}', '#/components/schemas/Join', 'C:\\path', 'a\\nb', 'multi\nline\n  indented\n\nblank above', '   \n', '\n\n'
]

/** A string as a test name: JSON, with everything outside printable ASCII escaped (TAP is line-based). */
const shown = (text: string): string => JSON.stringify(text).replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`)

t.test('every tricky string, as a value, a key, and in a sequence, reads back unchanged', async (t) => {
  for (const text of TRICKY_STRINGS) {
    // A lone surrogate has no UTF-8 form: JSON (and so the document) keeps it as an escape; readers differ on it.
    const value = { value: text, [text]: 'key', list: [text, { nested: text }] }
    const yaml = toYaml(value)
    for (const [name, read] of readers) {
      if (text === 'lone\ud800' && name !== 'js-yaml') continue
      t.same(read(yaml), value, `${shown(text)} (${name})`)
    }
  }
})

t.test('JSON values of every kind, nested', async (t) => {
  const value = {
    numbers: [0, -0, 1, -1, 1.5, 1e21, 1e-7, Number.MAX_SAFE_INTEGER, -2.5e-300],
    booleans: [true, false],
    nothing: null,
    empty: { object: {}, array: [], string: '' },
    nested: [[1, [2, [3]]], [{ a: [{ b: {} }] }], [[]]],
    dropped: undefined,
    fn: () => 1,
    date: new Date(0)
  }
  const expected = JSON.parse(JSON.stringify(value))
  for (const [name, read] of readers) t.same(read(toYaml(value)), expected, name)
  for (const top of [null, 1, 'text', 'a\nb', [], {}, [1], { a: 1 }]) {
    for (const [name, read] of readers) t.same(read(toYaml(top)), top, `top level ${JSON.stringify(top)} (${name})`)
  }
})

t.test('the forms chosen', async (t) => {
  t.equal(toYaml({ a: 'words here' }), 'a: words here\n', 'a plain string')
  t.equal(toYaml({ a: '123', b: 'true', c: 'yes', d: 'null', e: '' }), 'a: "123"\nb: "true"\nc: "yes"\nd: "null"\ne: ""\n', 'strings that look like something else are quoted')
  t.equal(toYaml({ 'a: b': 1, '200': 2, y: 3, $ref: 4 }), '"200": 2\n"a: b": 1\n"y": 3\n$ref: 4\n', 'keys quoted by the same rule (integer-like keys come first in JS)')
  t.equal(toYaml({ text: 'one\ntwo' }), 'text: |-\n  one\n  two\n', 'a multi-line string: a literal block, stripped')
  t.equal(toYaml({ text: 'one\ntwo\n' }), 'text: |\n  one\n  two\n', 'clipped')
  t.equal(toYaml({ text: 'one\n\n' }), 'text: |+\n  one\n\n', 'kept')
  t.equal(toYaml({ list: [{ a: 1, b: [2] }, [3]] }), 'list:\n  - a: 1\n    b:\n      - 2\n  - - 3\n', 'sequences of mappings and sequences')
  t.equal(toYaml({ a: 'x\u0085y' }), 'a: "x\\u0085y"\n', 'a C1 control is escaped')
})
