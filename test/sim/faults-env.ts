import type { FaultKit, FaultMenu } from './fault-kit';

/** Faults of what the control plane stands on: etcd's own leadership, the registry's storage, TCP's half-open connections. */
export const ENV_FAULT_KINDS = ['etcd-leader-change', 'etcd-quorum-loss', 'registry-write-fails', 'half-open-reset', 'host-gate-one-way'];

export function envFaults(f: FaultKit): FaultMenu {
  const { w, r } = f;
  return [
    ['etcd-leader-change', () => {
      // etcd loses its leader (the member hosting it is lost): a short
      // election with nothing answered, then every lease renewed in full.
      if (!w.etcd || w.healedAt !== undefined) return undefined;
      const ms = r.between(100, 1500);
      w.etcd.leaderChange(ms);
      return `${ms.toFixed(0)} ms`;
    }],
    ['etcd-quorum-loss', () => {
      // Two of three members lost: no quorum until one comes back, for every
      // master at once (etcd-cut cuts off one), then a leader change.
      if (!w.etcd || w.healedAt !== undefined) return undefined;
      const ms = r.between(1000, 6000);
      w.etcd.leaderChange(ms);
      return `${ms.toFixed(0)} ms`;
    }],
    ['registry-write-fails', () => {
      // The registry's writes fail for a while (a full disk under the
      // embedded master's state directory, etcd over its space quota): an
      // introduction must not go ahead unrecorded, and a best-effort write
      // (a server's fencing changing) is simply lost.
      if (w.healedAt !== undefined) return undefined;
      const until = w.kernel.now + r.between(500, 5000);
      w.failRegistryWritesUntil(until);
      return `${(until - w.kernel.now).toFixed(0)} ms`;
    }],
    ['half-open-reset', () => {
      // A follower (or an agent) gives its connection to the masters up and
      // reconnects at once, while each master's side stays open a while:
      // what the old stream had on its way still arrives there, after the
      // new stream's introduction, and the master ends the old call later.
      const h = w.hosts[r.int(w.hosts.length)];
      const s = f.scvm();
      const p = r.chance(0.7) ? s.followerProc : h.agentProc;
      if (!p || p.dead) return undefined;
      const lag = r.between(20, 2500);
      for (const m of w.masters) w.net.reset(p, m.address, lag);
      return `${p.name} (master notices after ${lag.toFixed(0)} ms)`;
    }],
    ['host-gate-one-way', () => {
      // One direction between a host and the gate it uses stalls (a lossy
      // link, a switch port dropping one way): its calls, or the replies,
      // wait for the heal, and arrive late at a gate the host may have left.
      const h = w.hosts[r.int(w.hosts.length)];
      const gate = `gate-${h.route.target}`;
      const direction = r.chance(0.5) ? `${h.hostId}>${gate}` : `${gate}>${h.hostId}`;
      w.holdHostGate(direction);
      f.k.after(r.between(200, 5000), () => w.releaseHostGate(direction));
      return direction;
    }],
  ];
}
