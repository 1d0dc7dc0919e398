import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IOptions } from 'etcd3';
import { ConfigError } from '../common/settings';
import { ETCD_SERVER_NAME } from '../common/pki';
import { isLoopbackAddress, type TlsSettings } from '../common/tls';

/** How to reach etcd: its URLs and, with TLS, the credentials and the name its certificates carry. */
export type EtcdConnection = Pick<IOptions, 'hosts' | 'credentials' | 'grpcOptions'>;

/**
 * etcd endpoints as URLs: https (mTLS with this component's certificate)
 * unless it runs --insecure; plain text never leaves loopback.
 */
export function etcdUrls(endpoints: string[], tls: TlsSettings): string[] {
  return endpoints.map((e) => {
    const url = /^https?:\/\//.test(e) ? e : `${tls.insecure ? 'http' : 'https'}://${e}`;
    if (url.startsWith('http://') && !(tls.insecure && isLoopbackAddress(url.slice(7)))) {
      throw new ConfigError(`etcd endpoint ${e}: plain text is for --insecure loopback development only; use https:// (mTLS)`);
    }
    return url;
  });
}

/**
 * The etcd connection for `tls`. The files are read once: a renewed
 * certificate reaches the etcd hop at the next restart.
 */
export function etcdConnection(endpoints: string[], tls: TlsSettings): EtcdConnection {
  const hosts = etcdUrls(endpoints, tls);
  if (tls.insecure) return { hosts };
  const f = (name: string) => fs.readFileSync(path.join(tls.dir, name));
  return {
    hosts,
    credentials: { rootCertificate: f('ca.pem'), certChain: f('cert.pem'), privateKey: f('key.pem') },
    // Members are dialled by IP; their certificates name "etcd".
    grpcOptions: { 'grpc.ssl_target_name_override': ETCD_SERVER_NAME },
  };
}
