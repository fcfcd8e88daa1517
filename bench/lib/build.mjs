// The plugin is measured as users run it: the published build in dist/,
// rebuilt first whenever a source file under lib/ is newer than it.

import { execFileSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const BUILT = join(ROOT, 'dist/esm/index.js')

function newestSource (dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
  }
  return newest
}

/** Builds dist/ if it is missing or older than lib/; returns true if it built. */
export function ensureBuilt (log) {
  let builtAt = 0
  try {
    builtAt = statSync(BUILT).mtimeMs
  } catch {}
  if (builtAt >= newestSource(join(ROOT, 'lib'))) return false
  log('building dist/ (npm run build) so the plugin is measured as published')
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  return true
}
