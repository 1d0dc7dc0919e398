import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { ConfigError } from './settings';
import { formatIdentity, identityFromAltNames, type Identity, type Role } from './identity';

/**
 * How a component talks gRPC: mutual TLS with the cluster CA (the default),
 * or plain text, which only `--insecure` asks for and only on loopback.
 */
export type TlsSettings =
  | { insecure: true }
  | {
      insecure?: false;
      /** A TLS directory from `nfsha init`: ca.pem, cert.pem, key.pem. */
      dir: string;
      /** How often the files are re-read, so renewed certificates take effect without a restart. */
      refreshMs?: number;
    };

export const DEFAULT_TLS_REFRESH_MS = 60_000;

/** Where a component's TLS directory is, unless --tls, $NFSHA_TLS or its config says otherwise. */
export const DEFAULT_TLS_DIR = '/etc/nfsha/tls';

/** The identity a peer proved with its certificate; `insecure` on a plain-text server. */
export type PeerIdentity = Identity | 'insecure';

function files(dir: string) {
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
}

/**
 * Reads a TLS directory once and returns the identity its certificate names,
 * so a missing file, a key that does not match or a certificate for another
 * role is a clear error at start rather than a failed handshake later.
 */
export function loadOwnIdentity(dir: string, expected: Role[], expectedId?: string): Identity {
  const f = files(dir);
  let certPem: string;
  let keyPem: string;
  try {
    fs.readFileSync(f.ca);
    certPem = fs.readFileSync(f.cert, 'utf8');
    keyPem = fs.readFileSync(f.key, 'utf8');
  } catch (err) {
    throw new ConfigError(`TLS directory ${dir}: ${(err as Error).message} (make one with "nfsha init")`);
  }
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certPem);
    if (!cert.checkPrivateKey(crypto.createPrivateKey(keyPem))) throw new Error('key.pem does not match cert.pem');
  } catch (err) {
    throw new ConfigError(`TLS directory ${dir}: ${(err as Error).message}`);
  }
  const who = identityFromAltNames(cert.subjectAltName);
  if (!who) throw new ConfigError(`TLS directory ${dir}: cert.pem names no nfsha identity (spiffe://nfsha/<role>/<id>)`);
  if (!expected.includes(who.role)) {
    throw new ConfigError(`TLS directory ${dir}: cert.pem is for ${formatIdentity(who)}, this component needs a ${expected.join(' or ')} certificate`);
  }
  if (expectedId !== undefined && who.id !== expectedId) {
    throw new ConfigError(`TLS directory ${dir} is for ${formatIdentity(who)}, not ${who.role}/${expectedId}`);
  }
  return who;
}

function provider(dir: string, refreshMs: number | undefined) {
  const f = files(dir);
  return new grpc.experimental.FileWatcherCertificateProvider({
    caCertificateFile: f.ca,
    certificateFile: f.cert,
    privateKeyFile: f.key,
    refreshIntervalMs: refreshMs ?? DEFAULT_TLS_REFRESH_MS,
  });
}

/** `unix:…`, 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackAddress(address: string): boolean {
  if (address.startsWith('unix:')) return true;
  const host = address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function assertLoopbackForInsecure(address: string, what: string): void {
  if (!isLoopbackAddress(address)) {
    throw new ConfigError(`--insecure (plain-text gRPC) is for loopback development only; ${what} ${address} is not a loopback address`);
  }
}

/** Server credentials: clients must present a certificate from the cluster CA. */
export function serverCredentials(tls: TlsSettings, listen: string): grpc.ServerCredentials {
  if (tls.insecure) {
    assertLoopbackForInsecure(listen, 'listen address');
    return grpc.ServerCredentials.createInsecure();
  }
  const p = provider(tls.dir, tls.refreshMs);
  return grpc.experimental.createCertificateProviderServerCredentials(p, p, true);
}

/**
 * Channel credentials that accept a server only if its certificate comes
 * from the cluster CA and names an identity `acceptServer` allows. Host names
 * are not checked: nodes are reached by IP, and the identity is what matters.
 */
export function channelCredentials(tls: TlsSettings, target: string, acceptServer: (who: Identity) => boolean, expectedText: string): grpc.ChannelCredentials {
  if (tls.insecure) {
    for (const t of target.split(',')) assertLoopbackForInsecure(t.trim(), 'target');
    return grpc.credentials.createInsecure();
  }
  const p = provider(tls.dir, tls.refreshMs);
  return grpc.experimental.createCertificateProviderChannelCredentials(p, p, {
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      const who = identityFromAltNames(cert.subjectaltname);
      if (who && acceptServer(who)) return undefined;
      return new Error(`server certificate is for ${who ? formatIdentity(who) : 'no nfsha identity'}, expected ${expectedText}`);
    },
  });
}

/** Credentials for calling masters (followers, agents, operators, other masters). */
export function masterChannelCredentials(tls: TlsSettings, target: string): grpc.ChannelCredentials {
  return channelCredentials(tls, target, (who) => who.role === 'master', 'a master');
}

/**
 * Channel options for `tls`: with TLS, the SNI name is fixed, because SNI
 * must be a host name, not the IP we dial, and picks no certificate here.
 */
export function channelOptions(tls: TlsSettings, base: grpc.ChannelOptions): grpc.ChannelOptions {
  return tls.insecure ? base : { ...base, 'grpc.ssl_target_name_override': 'nfsha' };
}
