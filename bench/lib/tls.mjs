// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl
// CLI once per run (Node can make keys but not certificates), for the
// scenario that runs WebSockets over TLS (bench/lib/http2-compare.mjs). The
// same as test/helpers/tls.ts, which the bench does not import (TypeScript).

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

let made

/** { key, cert } as PEM strings: P-256, valid one day. Throws if openssl is missing. */
export function selfSignedCert () {
  if (made !== undefined) return made
  const dir = mkdtempSync(join(tmpdir(), 'rfc6455-bench-tls-'))
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')
    ], { stdio: 'ignore' })
    made = { key: readFileSync(join(dir, 'key.pem'), 'latin1'), cert: readFileSync(join(dir, 'cert.pem'), 'latin1') }
    return made
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
