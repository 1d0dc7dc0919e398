import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PkiDirectory, type Role } from '../../common/pki';
import type * as grpc from '@grpc/grpc-js';
import { CLIENT_CHANNEL_OPTIONS } from '../../common/grpc-client';
import { channelCredentials, channelOptions, type TlsSettings } from '../../common/tls';

/**
 * The test suite's cluster PKI: one CA and one TLS directory per identity,
 * issued on first use and kept in a fixed place under the temp directory, so
 * later runs (and `npm run lab`) skip the RSA key generation.
 */
export const TEST_PKI_DIR = path.join(os.tmpdir(), 'nfsha-test-pki-v2');

const pki = new PkiDirectory(TEST_PKI_DIR);

/**
 * The TLS directory of `role/id`, issued by the test CA. Servers (masters,
 * followers) also name 127.0.0.1 and localhost, as `nfsha init --master
 * m1=127.0.0.1+localhost` would, so standard clients (curl, grpc-core) can
 * verify them on loopback.
 */
export function tlsDir(role: Role, id: string): string {
  pki.issue({ role, id }, { names: role === 'master' || role === 'follower' ? ['127.0.0.1', 'localhost'] : undefined });
  return pki.tlsDir({ role, id });
}

export function tlsOf(role: Role, id: string): TlsSettings {
  return { dir: tlsDir(role, id) };
}

/** `--tls <dir>` for a child process. */
export function tlsArgs(role: Role, id: string): string[] {
  return ['--tls', tlsDir(role, id)];
}

/** The operator identity tests use for status and diagnostics. */
export const OPERATOR_TLS = (): TlsSettings => tlsOf('operator', 'test');

/** A CA nobody in the cluster trusts, with one identity, for wrong-CA tests. */
export function foreignTlsDir(role: Role, id: string): string {
  const other = new PkiDirectory(path.join(os.tmpdir(), 'nfsha-test-foreign-pki'));
  other.issue({ role, id });
  return other.tlsDir({ role, id });
}

export function testPki(): PkiDirectory {
  return pki;
}

/** A gRPC client of `Ctor` at `address`, as `tls` (the operator by default); it accepts any server of the test CA. */
export function testClient<C>(Ctor: new (address: string, creds: grpc.ChannelCredentials, options: grpc.ChannelOptions) => unknown, address: string, tls: TlsSettings = OPERATOR_TLS()): C {
  return new Ctor(address, channelCredentials(tls, address, () => true, 'any nfsha server'), channelOptions(tls, CLIENT_CHANNEL_OPTIONS)) as C;
}

/** A follower identity for benchmarks' simulated followers: all share one key, so a thousand are quick to issue. */
export function benchFollowerTls(id: string): TlsSettings {
  const shared = tlsDir('follower', 'bench-key');
  pki.issue({ role: 'follower', id }, { keyPem: fs.readFileSync(path.join(shared, 'key.pem'), 'utf8') });
  return { dir: pki.tlsDir({ role: 'follower', id }) };
}

/** An etcd member's TLS directory: its certificate also names 127.0.0.1, which etcd peers check. */
export function etcdTlsDir(name: string): string {
  pki.issue({ role: 'etcd', id: name }, { names: ['127.0.0.1'] });
  return pki.tlsDir({ role: 'etcd', id: name });
}
