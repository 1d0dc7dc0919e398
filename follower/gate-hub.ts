import type * as grpc from '@grpc/grpc-js';
import type { GateCommand } from '../gen/nfsha/v1/GateCommand';
import type { WatchRevokesRequest__Output } from '../gen/nfsha/v1/WatchRevokesRequest';

type WatchCall = grpc.ServerWritableStream<WatchRevokesRequest__Output, GateCommand>;

interface PendingRevoke {
  waiting: Set<number>;
  done: () => void;
}

/**
 * The NFS layers watching this follower (WatchRevokes streams): broadcasts
 * lease renewals, revokes and fences, and gathers revoke acks. A revoke is
 * done when every watcher connected when it was sent has acked or gone away
 * (an NFS layer whose stream ends drops every client on its own).
 */
export class GateHub {
  private readonly watchers = new Map<number, WatchCall>();
  private readonly pending = new Map<string, PendingRevoke>();
  private nextWatcher = 1;

  get size(): number {
    return this.watchers.size;
  }

  add(call: WatchCall, initial: GateCommand): number {
    const id = this.nextWatcher++;
    this.watchers.set(id, call);
    const gone = () => this.remove(id);
    call.on('cancelled', gone);
    call.on('close', gone);
    call.on('error', gone);
    call.write(initial);
    return id;
  }

  private remove(id: number): void {
    if (!this.watchers.delete(id)) return;
    for (const p of new Set(this.pending.values())) {
      if (p.waiting.delete(id) && p.waiting.size === 0) p.done();
    }
  }

  broadcast(cmd: GateCommand): void {
    for (const call of this.watchers.values()) call.write(cmd);
  }

  /** Sends a revoke to every watcher; resolves when all have acked or left. */
  revoke(revokeId: string, clientId: string, reason: string, token: { epoch: number; sequence: number }): Promise<void> {
    return new Promise((resolve) => {
      if (this.watchers.size === 0) return resolve();
      const waiting = new Set(this.watchers.keys());
      const keys = [...waiting].map((w) => `${revokeId}.${w}`);
      const pending: PendingRevoke = { waiting, done: () => { for (const k of keys) this.pending.delete(k); resolve(); } };
      for (const k of keys) this.pending.set(k, pending);
      for (const w of waiting) {
        this.watchers.get(w)!.write({ revoke: { revokeId: `${revokeId}.${w}`, clientId, reason, epoch: token.epoch, sequence: token.sequence } });
      }
    });
  }

  /** An NFS layer's ack of a per-watcher revoke id; false when unknown. */
  ack(gateRevokeId: string): boolean {
    const p = this.pending.get(gateRevokeId);
    if (!p) return false;
    this.pending.delete(gateRevokeId);
    const watcher = Number(gateRevokeId.slice(gateRevokeId.lastIndexOf('.') + 1));
    if (p.waiting.delete(watcher) && p.waiting.size === 0) p.done();
    return true;
  }

  endAll(): void {
    for (const call of this.watchers.values()) call.end();
    this.watchers.clear();
  }
}
