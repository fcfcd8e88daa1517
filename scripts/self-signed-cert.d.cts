/** A key and its self-signed certificate for 127.0.0.1 and localhost, as PEM text (P-256, valid one day). */
export interface KeyAndCert {
  key: string
  cert: string
}

/** Made once per process with the openssl CLI; throws if openssl is missing. */
export function selfSignedCert (): KeyAndCert
