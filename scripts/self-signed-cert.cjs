// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl
// CLI once per process (Node can make keys but not certificates): for the
// HTTP/2 tests (test/http2, test/interop) and the bench's TLS scenario
// (bench/lib/http2-compare.mjs). Types: self-signed-cert.d.cts.

'use strict'
// CommonJS, so the TypeScript tests (CommonJS here) and the bench (ES modules) can both load it.
const { execFileSync } = require('node:child_process')
const { mkdtempSync, readFileSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

let made

/** { key, cert } as PEM strings: P-256, valid one day. Throws if openssl is missing. */
function selfSignedCert () {
  if (made !== undefined) return made
  const dir = mkdtempSync(join(tmpdir(), 'rfc6455-tls-'))
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

exports.selfSignedCert = selfSignedCert
