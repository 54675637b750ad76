/**
 * A self-signed certificate made for one run, for its private Redis on an address other than
 * loopback: the spec carries the certificate itself as the CA, so the run's processes trust this
 * server and no other. Made with the openssl CLI (Node can sign, but not build an X.509
 * certificate); the key stays in a mode-0700 folder that stop() removes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunError } from '../errors.js';

export class RunCertificate {
  private constructor(
    private readonly dir: string,
    readonly certFile: string,
    readonly keyFile: string,
    readonly pem: string,
  ) {}

  /** A certificate for `host` (an IP address or a name), valid for 7 days. */
  static create(host: string): RunCertificate {
    const dir = mkdtempSync(join(tmpdir(), 'sparkring-redis-tls-'));
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    const san = /^[\d.]+$/.test(host) || host.includes(':') ? `IP:${host}` : `DNS:${host}`;
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '7',
          '-subj',
          '/CN=sparkring run redis',
          '-addext',
          `subjectAltName=${san}`,
          '-keyout',
          keyFile,
          '-out',
          certFile,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      const stderr = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
      throw new RunError(
        'setup',
        `cannot make the private Redis's TLS certificate with openssl (${stderr.split('\n').at(-1)}); install openssl, or pass --redis rediss://... with --redis-ca`,
      );
    }
    return new RunCertificate(dir, certFile, keyFile, readFileSync(certFile, 'utf8'));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
