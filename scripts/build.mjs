// Builds dist/cjs (CommonJS) and dist/esm (ES modules), each with declarations.
import { execFileSync } from 'node:child_process'
import { appendFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const tsc = require.resolve('typescript/bin/tsc')

rmSync('dist', { recursive: true, force: true })
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--module', 'es2022', '--moduleResolution', 'bundler', '--outDir', 'dist/esm'], { stdio: 'inherit' })
writeFileSync('dist/cjs/package.json', '{ "type": "commonjs" }\n')
writeFileSync('dist/esm/package.json', '{ "type": "module" }\n')
// `require('fastify-rfc6455')` yields the plugin itself, as Fastify plugins conventionally do,
// with the named exports (and `default`) as its properties.
appendFileSync('dist/cjs/index.js', '\nmodule.exports = Object.assign(exports.default, exports);\n')
