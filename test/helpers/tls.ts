// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl
// CLI once per test process (Node can make keys but not certificates).

import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface KeyAndCert {
  key: Buffer
  cert: Buffer
}

let made: KeyAndCert | undefined

export function selfSignedCert (): KeyAndCert {
  if (made !== undefined) return made
  const dir = mkdtempSync(join(tmpdir(), 'rfc6455-tls-'))
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')
    ], { stdio: 'ignore' })
    made = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }
    return made
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
