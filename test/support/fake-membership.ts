import { EventEmitter } from 'node:events';
import type { MemberView } from '../../agent/decision';
import type { MembershipEvents, MembershipSource } from '../../agent/membership-client';
import type { RouteReport } from '../../gen/nfsha/v1/RouteReport';

/** A membership feed that hands the agent a fixed list (no master). */
export class FakeMembership extends EventEmitter<MembershipEvents> implements MembershipSource {
  connected = true;
  reports: RouteReport[] = [];
  constructor(private readonly members: MemberView[]) { super(); }
  start(): void { this.emit('connected'); this.emit('members', this.members); }
  stop(): void { this.connected = false; }
  report(r: RouteReport): void { this.reports.push(r); }
}
