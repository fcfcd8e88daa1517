// Runs @fastify/websocket's own test suite (the test/ directory its npm
// package ships) against this plugin, with the test files unchanged: they are
// copied into a temporary directory next to an index.js that only re-exports
// this package's built dist/cjs/index.js, so every `require('..')` in them
// gets fastify-rfc6455 instead of @fastify/websocket. Prints one line per test
// (result, file, name, and the first line of a failure) and a summary.
//
//   node scripts/fastify-websocket-suite.mjs [--root .] [--json results.json]
//        [--file base.test.js ...] [--test-timeout 15000] [--file-timeout 300000] [--keep]
//
// --root          the checkout whose dist/ is tested (default: the one this
//                 script is in); it must be built (`npm run build`). The suite
//                 is the @fastify/websocket installed there (a devDependency).
// --json          also write the results to this file (shape at the bottom)
// --file          run only this test file of the suite (repeatable)
// --test-timeout  a file's process is killed when no test has finished for
//                 this long; the test it was in fails ("timed out") and the
//                 file's remaining tests run on in a new process
// --file-timeout  the most one file may take, all its processes together
// --keep          keep the temporary directory (its path is printed)
//
// Each file runs as `node --test --test-force-exit` with a reporter that
// writes one JSON line per test. Top-level tests run one after the other, so
// when a process is killed or ends early, the first test it did not report is
// the one it was in; the tests after it are run with --test-name-pattern in a
// new process and marked `resumed` in the JSON.
//
// Bounded: files run one at a time, every process group is killed at the
// latest after --file-timeout, and nothing is left running. Loopback only:
// the suite's servers listen on localhost (fastify.listen({ port: 0 }), and
// one test's own http.Server on localhost:3000, as the suite has it).
//
// Exit code: 0 when every test passed, 1 when some failed, 2 when the harness
// could not run (no dist/, no suite).

import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const SCRIPT = fileURLToPath(import.meta.url)

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: resolve(dirname(SCRIPT), '..') },
    json: { type: 'string' },
    file: { type: 'string', multiple: true },
    'test-timeout': { type: 'string', default: '15000' },
    'file-timeout': { type: 'string', default: '300000' },
    keep: { type: 'boolean', default: false }
  }
})

const root = resolve(values.root)
const testTimeout = Number(values['test-timeout'])
const fileTimeout = Number(values['file-timeout'])

let work   // the temporary directory, once made
let running   // the file process running now, if any

function cleanUp () {
  if (running) try { process.kill(-running.pid, 'SIGKILL') } catch {}
  if (work && !values.keep) rmSync(work, { recursive: true, force: true })
}

function fatal (message) {
  process.stderr.write(`fastify-websocket-suite: ${message}\n`)
  cleanUp()
  process.exit(2)
}

// Stopped from outside (Ctrl-C, a test runner's timeout): leave no process and no directory behind.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    cleanUp()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

if (!(testTimeout > 0) || !(fileTimeout > 0)) fatal('--test-timeout and --file-timeout take a number of milliseconds')
const dist = join(root, 'dist/cjs/index.js')
if (!existsSync(dist)) fatal(`${dist} does not exist: run \`npm run build\` in ${root} first`)

let suiteDir
try {
  suiteDir = dirname(createRequire(join(root, 'package.json')).resolve('@fastify/websocket/package.json'))
} catch {
  fatal(`@fastify/websocket is not installed under ${root} (it is a devDependency: npm ci)`)
}
if (!existsSync(join(suiteDir, 'test'))) fatal(`${suiteDir} has no test/ directory`)
const suitePackage = JSON.parse(readFileSync(join(suiteDir, 'package.json'), 'utf8'))

// The layout the tests expect: <work>/package.json (main: index.js), <work>/index.js, <work>/test/*.test.js.
work = mkdtempSync(join(tmpdir(), 'fastify-websocket-suite-'))
cpSync(join(suiteDir, 'package.json'), join(work, 'package.json'))
cpSync(join(suiteDir, 'test'), join(work, 'test'), { recursive: true })
// fastify, ws, split2 …: the tests resolve them from <work>/node_modules, which
// is this checkout's, so the tests and the plugin load the same fastify.
symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir')

// Re-exports only. @fastify/websocket's index.js exports its plugin as
// module.exports and as `.default` and `.fastifyWebsocket`; fastify-rfc6455's
// require() gives its plugin, with `.default` on it.
writeFileSync(join(work, 'index.js'), `'use strict'
// Written by scripts/fastify-websocket-suite.mjs: @fastify/websocket's entry point, re-exporting fastify-rfc6455.
const plugin = require(${JSON.stringify(dist)})
module.exports = plugin
module.exports.default = plugin.default
module.exports.fastifyWebsocket = plugin.default
`)

// The node:test reporter, written out as a module of its own: one JSON line
// per finished test, and the test file's stderr (which `node --test` relays
// as events) so that a crash can be read in the JSON.
async function * jsonLinesReporter (source) {
  const { inspect } = await import('node:util')
  const firstLine = (error) => {
    if (!error) return undefined
    const cause = error.cause ?? error
    const text = String((cause && (cause.message || cause.code)) || cause)
    return text.split('\n').find((line) => line.trim() !== '') ?? text
  }
  // An assertion's two sides, short: "Expected values to be strictly equal:" alone says little.
  const sides = (error) => {
    const cause = error?.cause
    if (!cause || cause.code !== 'ERR_ASSERTION' || !('actual' in cause)) return undefined
    const show = (value) => value instanceof Error
      ? `${value.name}: ${value.message}`.slice(0, 200)
      : inspect(value, { depth: 1, breakLength: Infinity, maxStringLength: 120 }).slice(0, 200)
    return { actual: show(cause.actual), expected: show(cause.expected) }
  }
  for await (const event of source) {
    if (event.type === 'test:stderr') {
      yield JSON.stringify({ event: 'stderr', message: event.data.message }) + '\n'
    } else if (event.type === 'test:pass' || event.type === 'test:fail') {
      const { data } = event
      const error = data.details?.error
      yield JSON.stringify({
        event: event.type,
        name: data.name,
        nesting: data.nesting,
        skip: data.skip !== undefined && data.skip !== false,
        todo: data.todo !== undefined && data.todo !== false,
        durationMs: data.details?.duration_ms,
        failureType: error?.failureType,
        error: firstLine(error),
        code: error?.cause?.code ?? error?.code,
        assertion: sides(error)
      }) + '\n'
    }
  }
}
const reporter = join(work, 'json-lines-reporter.mjs')
writeFileSync(reporter, `// Written by scripts/fastify-websocket-suite.mjs.\nexport default ${jsonLinesReporter.toString()}\n`)

// A file's top-level tests in order: `test('name', …)` at the start of a line, as the suite writes them.
function declaredTests (source) {
  const names = []
  for (const match of source.matchAll(/^test\(\s*(['"])((?:\\.|(?!\1).)*)\1/gm)) {
    names.push(match[2].replace(/\\(.)/g, '$1'))
  }
  return names
}

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

function childEnv () {
  const env = { ...process.env }
  // Inherited from a tap or node:test run, these would change how the child runs and reports.
  delete env.NODE_OPTIONS
  delete env.NODE_TEST_CONTEXT
  for (const key of Object.keys(env)) if (key.startsWith('TAP')) delete env[key]
  return env
}

// One `node --test` process on one file. `only`: run just these tests (the
// others are then reported as skipped by the name pattern; the caller ignores
// them). The process group is killed when no test has finished for
// testTimeout ms ('idle'), or at `deadline` ('budget').
function runProcess (file, only, deadline) {
  return new Promise((resolvePromise) => {
    const args = ['--test', '--test-force-exit', `--test-reporter=${reporter}`, '--test-reporter-destination=stdout']
    if (only) args.push(`--test-name-pattern=^(?:${only.map(escapeRegExp).join('|')})$`)
    args.push(join('test', file))
    const child = spawn(process.execPath, args, { cwd: work, env: childEnv(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    running = child
    const events = []
    let stderr = ''
    let killed = null
    const kill = (why) => {
      killed ??= why
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }
    let idle = setTimeout(kill, testTimeout, 'idle')
    const budget = setTimeout(kill, Math.max(0, deadline - Date.now()), 'budget')
    let partial = ''
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop()
      for (const line of lines) {
        let event
        try { event = JSON.parse(line) } catch { continue }
        if (event.event === 'stderr') {
          stderr += event.message
          continue
        }
        events.push(event)
        clearTimeout(idle)
        idle = setTimeout(kill, testTimeout, 'idle')
      }
    })
    child.stderr.setEncoding('utf8').on('data', (chunk) => { stderr += chunk })
    child.on('close', (exitCode, signal) => {
      clearTimeout(idle)
      clearTimeout(budget)
      // The whole group, always: a grandchild left behind would hold a port.
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
      running = undefined
      resolvePromise({ exitCode, signal, killed, events, stderr })
    })
  })
}

// Runs a file as a whole. If its process is killed (a test hung) or ends
// before reporting every test, the test it was in fails with that reason and
// the tests after it run in a new process.
async function runFile (file) {
  const declared = declaredTests(readFileSync(join(work, 'test', file), 'utf8'))
  const results = new Map()
  const processes = []
  const deadline = Date.now() + fileTimeout
  let only = null
  for (let attempt = 0; attempt <= declared.length; attempt++) {
    const started = Date.now()
    const run = await runProcess(file, only, deadline)
    const wanted = only && new Set(only)
    const resumed = attempt > 0 ? { resumed: true } : {}
    const outsideTests = []
    let reported = 0
    for (const event of run.events) {
      if (event.nesting !== 0) continue   // subtests (the suite has none): their outcome is their parent's
      if (wanted && !wanted.has(event.name)) continue   // skipped by the name pattern
      if (!declared.includes(event.name) && event.name.endsWith(file)) {
        // node:test's test for the file's process: a failure outside every test, or a cancellation.
        outsideTests.push(event.error)
        continue
      }
      const result = event.skip ? 'skip' : event.todo ? 'todo' : event.event === 'test:pass' ? 'pass' : 'fail'
      results.set(event.name, {
        file,
        name: event.name,
        result,
        ...(result === 'fail' ? { error: event.error ?? 'failed', failureType: event.failureType, code: event.code, assertion: event.assertion } : {}),
        durationMs: event.durationMs === undefined ? undefined : Math.round(event.durationMs),
        ...resumed
      })
      reported++
    }
    processes.push({
      tests: only ? only.length : 'all',
      exitCode: run.exitCode,
      signal: run.signal,
      killed: run.killed,
      durationMs: Date.now() - started,
      outsideTests,
      stderr: run.stderr.length > 4000 ? run.stderr.slice(0, 4000) + '\n…' : run.stderr
    })
    const remaining = declared.filter((name) => !results.has(name))
    if (remaining.length === 0) break
    if (run.killed === 'budget' || (!run.killed && reported === 0 && attempt > 0)) {
      const error = run.killed === 'budget' ? `not run: the file's ${fileTimeout} ms were spent` : 'not reported'
      for (const name of remaining) results.set(name, { file, name, result: 'fail', error, ...resumed })
      break
    }
    const [current, ...rest] = remaining
    results.set(current, {
      file,
      name: current,
      result: 'fail',
      error: run.killed === 'idle'
        ? `timed out: no test finished for ${testTimeout} ms, the process was killed`
        : `the test process ended during this test (exit code ${run.exitCode}${run.signal ? `, ${run.signal}` : ''})`,
      ...resumed
    })
    if (rest.length === 0) break
    only = rest
  }
  const tests = declared.map((name) => results.get(name))
  // Anything reported under a name the declaration scan did not find (a computed name), last.
  for (const [name, test] of results) if (!declared.includes(name)) tests.push(test)
  return { tests, processes }
}

const files = values.file ?? readdirSync(join(work, 'test')).filter((name) => name.endsWith('.test.js')).sort()
for (const file of files) {
  if (!existsSync(join(work, 'test', file))) fatal(`no test file ${file} in ${join(suiteDir, 'test')}`)
}

const tests = []
const runs = []
for (const file of files) {
  const run = await runFile(file)
  tests.push(...run.tests)
  runs.push({ file, processes: run.processes })
}

const summary = {
  total: tests.length,
  pass: tests.filter((test) => test.result === 'pass').length,
  fail: tests.filter((test) => test.result === 'fail').length,
  skip: tests.filter((test) => test.result === 'skip' || test.result === 'todo').length
}

const width = Math.max(0, ...tests.map((test) => test.file.length))
for (const test of tests) {
  const mark = test.result === 'pass' ? 'pass' : test.result === 'fail' ? 'FAIL' : test.result
  process.stdout.write(`${mark.padEnd(4)}  ${test.file.padEnd(width)}  ${test.name}\n`)
  const indent = ' '.repeat(width + 8)
  if (test.error) process.stdout.write(`${indent}↳ ${test.error}\n`)
  if (test.assertion) process.stdout.write(`${indent}  actual ${test.assertion.actual}, expected ${test.assertion.expected}\n`)
}
for (const run of runs) {
  for (const proc of run.processes) {
    if (proc.killed) process.stdout.write(`${run.file}: a process was killed (${proc.killed === 'idle' ? `no test finished for ${testTimeout} ms` : `the file took over ${fileTimeout} ms`})\n`)
  }
}
process.stdout.write(`\n@fastify/websocket ${suitePackage.version}'s suite against ${dist} (Node ${process.version})\n` +
  `${summary.total} tests: ${summary.pass} passed, ${summary.fail} failed, ${summary.skip} skipped\n`)

if (values.json) {
  writeFileSync(values.json, JSON.stringify({
    suite: { name: suitePackage.name, version: suitePackage.version, dir: suiteDir },
    dist,
    node: process.version,
    testTimeout,
    fileTimeout,
    files: runs,
    tests,
    summary
  }, null, 2) + '\n')
}

if (values.keep) process.stdout.write(`kept ${work}\n`)
cleanUp()

process.exitCode = summary.fail === 0 ? 0 : 1

// --json writes
// { suite: { name, version, dir }, dist, node, testTimeout, fileTimeout,
//   files: [{ file, processes: [{ tests: 'all' | count, exitCode, signal, killed: null | 'idle' | 'budget',
//                                 durationMs, outsideTests: [first lines], stderr }] }],
//   tests: [{ file, name, result: 'pass' | 'fail' | 'skip' | 'todo',
//             error?, failureType?, code?, assertion?: { actual, expected }, durationMs?, resumed? }],
//   summary: { total, pass, fail, skip } }
