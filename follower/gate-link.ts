import * as grpc from '@grpc/grpc-js';
import { Backoff } from '../common/backoff';
import type { Clock } from '../common/clock';
import { deadlineIn } from '../common/grpc-client';
import type { Logger } from '../common/log';
import type { GateClient } from '../common/proto';
import { StreamLoop } from '../common/stream-loop';
import type { GateCommand__Output } from '../gen/nfsha/v1/GateCommand';
import type { AdmitGrant, GateCore, GateFollowerLink, GateStateReport } from './gate-core';

type WatchStream = grpc.ClientReadableStream<GateCommand__Output>;

function waitForReady(): grpc.Metadata {
  return new grpc.Metadata({ waitForReady: true });
}

export interface GateLinkOptions {
  /** The gate's name (WatchRevokesRequest.watcher). */
  name: string;
  /** The follower's Gate API (grpc-js, or the simulation's). */
  client: GateClient;
  clock: Clock;
  log: Logger;
  /** Deadline for one Admit call. Default 15000 ms. */
  admitTimeoutMs?: number;
  random?: () => number;
}

/**
 * The NFS layer's side of the follower's Gate API: the command stream (kept
 * open by a StreamLoop, waiting for a follower that starts later) fed into
 * the gate's logic, and admits, acks, releases and reports out of it.
 */
export class GateLink implements GateFollowerLink {
  private core?: GateCore;
  private readonly loop: StreamLoop<WatchStream, GateCommand__Output>;

  constructor(private readonly opts: GateLinkOptions) {
    this.loop = new StreamLoop<WatchStream, GateCommand__Output>({
      clock: opts.clock,
      backoff: new Backoff(100, 1000, opts.random),
      // The follower may start after us: wait for its socket rather than fail.
      firstAnswerMs: 0,
      open: () => opts.client.WatchRevokes({ watcher: opts.name }, waitForReady()),
      data: (_s, cmd, first) => {
        // A follower that predates GateWelcome starts with a lease or a fence.
        if (first && cmd.kind !== 'welcome') this.core?.onWelcome(0, 0);
        this.onCommand(cmd);
      },
      closed: (err) => this.core?.onStreamEnded(err?.details || err?.message || 'follower closed the stream'),
    });
  }

  /** Starts feeding `core` from the follower's command stream. */
  start(core: GateCore): void {
    this.core = core;
    this.loop.start();
  }

  stop(): void {
    this.loop.stop();
  }

  private onCommand(cmd: GateCommand__Output): void {
    const core = this.core!;
    switch (cmd.kind) {
      case 'welcome':
        core.onWelcome(cmd.welcome!.watcherId, cmd.welcome!.reportIntervalMs);
        break;
      case 'lease': {
        const l = cmd.lease!;
        core.onLease(l.deadlineMonotonicMs > 0 ? l.deadlineMonotonicMs : this.opts.clock.now() + l.remainingMs);
        break;
      }
      case 'fence':
        core.onFence(cmd.fence!.reason, cmd.fence!.seq);
        break;
      case 'nfsFenced':
        core.onNfsServerFenced(cmd.nfsFenced!.reason);
        break;
      case 'revoke': {
        const r = cmd.revoke!;
        core.onRevoke({ revokeId: r.revokeId, clientId: r.clientId, reason: r.reason, token: { epoch: r.epoch, sequence: r.sequence } });
        break;
      }
    }
  }

  admit(address: string): Promise<AdmitGrant> {
    return new Promise<AdmitGrant>((resolve, reject) => {
      this.opts.client.Admit({ clientAddress: address }, waitForReady(), { deadline: deadlineIn(this.opts.admitTimeoutMs ?? 15_000) }, (err, r) => {
        if (err) return reject(err);
        const deadline = r!.leaseDeadlineMonotonicMs > 0 ? r!.leaseDeadlineMonotonicMs : this.opts.clock.now() + r!.leaseRemainingMs;
        resolve({ clientId: r!.clientId, token: { epoch: r!.epoch, sequence: r!.sequence }, leaseDeadline: deadline, admissionSeq: r!.admissionSeq });
      });
    });
  }

  private warn(ev: string, extra: Record<string, unknown>): (err: grpc.ServiceError | null) => void {
    return (err) => {
      if (err) this.opts.log.warn({ ev, ...extra, err: err.message }, ev);
    };
  }

  ackRevoke(revokeId: string): void {
    this.opts.client.AckRevoke({ revokeId }, { deadline: deadlineIn(5000) }, this.warn('revoke.ack.failed', { revoke: revokeId }));
  }

  release(clientId: string, upToSeq: number): void {
    this.opts.client.Release({ clientId, releasedUpTo: upToSeq }, { deadline: deadlineIn(5000) }, this.warn('gate.release.failed', { client: clientId }));
  }

  /** Settles once the follower answered (true: it has the report) or the call failed (false). */
  report(r: GateStateReport): Promise<boolean> {
    return new Promise((resolve) => {
      this.opts.client.Report(r, { deadline: deadlineIn(1000) }, (err) => resolve(!err));
    });
  }
}
