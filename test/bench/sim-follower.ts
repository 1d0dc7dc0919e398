import * as grpc from '@grpc/grpc-js';
import { nfshaGrpc, type SessionMasterClient } from '../../common/proto';
import { benchFollowerTls, testClient } from '../support/pki';
import type { MasterMessage__Output } from '../../gen/nfsha/v1/MasterMessage';
import type { LoginReply__Output } from '../../gen/nfsha/v1/LoginReply';

/**
 * A simulated follower for load benchmarks: a real Session stream with
 * keepalives, that acknowledges every revoke at once (an NFS layer with
 * nothing to close). Each has its own mTLS connection and certificate, as
 * real followers do (the certificates share one key, to be quick to make).
 */
export class SimFollower {
  sessionId = '';
  private stream?: grpc.ClientDuplexStream<object, MasterMessage__Output>;
  private timer?: NodeJS.Timeout;
  private seq = 0;

  private readonly client: SessionMasterClient;

  constructor(address: string, readonly serverId: string, private readonly keepaliveMs = 500) {
    this.client = testClient(nfshaGrpc().SessionMaster, address, benchFollowerTls(serverId));
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const stream = this.client.Session() as unknown as grpc.ClientDuplexStream<object, MasterMessage__Output>;
      this.stream = stream;
      stream.on('data', (m: MasterMessage__Output) => {
        if (m.granted) {
          this.sessionId = m.granted.sessionId;
          this.timer = setInterval(() => stream.write({ keepalive: { seq: ++this.seq } }), this.keepaliveMs);
          resolve();
        } else if (m.revoke) {
          stream.write({ revokeAck: { revokeId: m.revoke.revokeId } });
        }
      });
      stream.on('error', (e: Error) => reject(e));
      stream.write({ introduction: { serverId: this.serverId, hostId: `h-${this.serverId}` } });
    });
  }

  login(address: string): Promise<LoginReply__Output> {
    return new Promise((resolve, reject) => this.client.Login({ sessionId: this.sessionId, clientAddress: address }, { deadline: new Date(Date.now() + 30_000) }, (err, r) => (err ? reject(err) : resolve(r!))));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.stream?.cancel();
    this.client.close();
  }
}

/** The n-th of many distinct client addresses (10.x.y.z). */
export function clientAddress(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}
