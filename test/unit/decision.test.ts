import assert from 'node:assert/strict';
import { decideRoute, LOCAL, rendezvousWeight, type DecisionInput, type MemberView, type RemoteReachability } from '../../agent/decision';

const M = (n: number): MemberView => ({ serverId: `scvm-${n}`, hostId: `esx-${n}`, storageIp: `10.10.0.2${n}`, mgmtIp: `10.20.0.2${n}` });
const ALL = [M(1), M(2), M(3)];
const up: RemoteReachability = { storage: true, mgmt: true };
const mgmtOnly: RemoteReachability = { storage: false, mgmt: true };
const dead: RemoteReachability = { storage: false, mgmt: false };

function input(over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    hostId: 'esx-2', localServerId: 'scvm-2', members: ALL, local: 'up', localListed: 'up', localHealthyForMs: 60_000,
    remote: new Map([['scvm-1', up], ['scvm-3', up]]), current: LOCAL, holdDownMs: 30_000, ...over,
  };
}

/** The remote esx-2 picks among {scvm-1, scvm-3} by rendezvous hash. */
const preferred = rendezvousWeight('esx-2', 'scvm-1') > rendezvousWeight('esx-2', 'scvm-3') ? M(1) : M(3);
const other = preferred.serverId === 'scvm-1' ? M(3) : M(1);

describe('route decision (pure)', () => {
  it('keeps no static route while the local server is healthy', () => {
    const d = decideRoute(input());
    assert.deepEqual(d.route, LOCAL);
    assert.equal(d.alarm, undefined);
  });

  it('keeps the route untouched while the local server has not been probed or listed yet', () => {
    assert.deepEqual(decideRoute(input({ local: 'unknown', localHealthyForMs: 0 })).route, LOCAL);
    assert.deepEqual(decideRoute(input({ localListed: 'unknown', localHealthyForMs: 0, members: [M(1), M(3)] })).route, LOCAL);
  });

  it('reroutes to a healthy remote storage IP when the local server is unreachable', () => {
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0 }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: preferred.storageIp });
    assert.deepEqual(d.target, { serverId: preferred.serverId, via: 'storage' });
    assert.match(d.reason, /unreachable/);
  });

  it('reroutes when the local server is reachable but not listed by the master', () => {
    const d = decideRoute(input({ members: [M(1), M(3)], localListed: 'down' }));
    assert.equal(d.route.kind, 'remote');
    assert.match(d.reason, /not listed/);
  });

  it('keeps the current remote while it stays healthy, even if the hash prefers another', () => {
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, current: { kind: 'remote', gateway: other.storageIp } }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: other.storageIp });
    assert.match(d.reason, /keeping/);
  });

  it('moves the current remote to its management IP when only that answers, and back when storage returns', () => {
    const remote = new Map([[preferred.serverId, mgmtOnly], [other.serverId, up]]);
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, remote, current: { kind: 'remote', gateway: preferred.storageIp } }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: preferred.mgmtIp });
    assert.equal(d.target?.via, 'mgmt');
    const back = decideRoute(input({ local: 'down', localHealthyForMs: 0, current: { kind: 'remote', gateway: preferred.mgmtIp } }));
    assert.deepEqual(back.route, { kind: 'remote', gateway: preferred.storageIp });
    assert.match(back.reason, /answers again/);
  });

  it('prefers any server reachable on storage over management-only ones for a new choice', () => {
    const remote = new Map([[preferred.serverId, mgmtOnly], [other.serverId, up]]);
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, remote }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: other.storageIp });
  });

  it('uses a management IP when no server answers on storage', () => {
    const remote = new Map([[preferred.serverId, mgmtOnly], [other.serverId, mgmtOnly]]);
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, remote }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: preferred.mgmtIp });
  });

  it('leaves an unhealthy current remote for another healthy one', () => {
    const remote = new Map([[preferred.serverId, dead], [other.serverId, up]]);
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, remote, current: { kind: 'remote', gateway: preferred.storageIp } }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: other.storageIp });
    assert.match(d.reason, /current target .* unhealthy/);
  });

  it('treats a route to an address no member owns as unhealthy and replaces it', () => {
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, current: { kind: 'remote', gateway: '10.99.0.1' } }));
    assert.deepEqual(d.route, { kind: 'remote', gateway: preferred.storageIp });
  });

  it('ignores remote members on its own host', () => {
    const sameHost: MemberView = { serverId: 'scvm-2b', hostId: 'esx-2', storageIp: '10.10.0.99', mgmtIp: '' };
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, members: [...ALL, sameHost], remote: new Map([['scvm-2b', up]]) }));
    assert.equal(d.alarm, true);
  });

  it('fails back only once the local server has been healthy for the hold-down', () => {
    const current = { kind: 'remote' as const, gateway: preferred.storageIp };
    const early = decideRoute(input({ current, localHealthyForMs: 29_999 }));
    assert.deepEqual(early.route, current);
    assert.match(early.reason, /hold-down/);
    const late = decideRoute(input({ current, localHealthyForMs: 30_000 }));
    assert.deepEqual(late.route, LOCAL);
    assert.match(late.reason, /failing back/);
  });

  it('goes back to a healthy local within the hold-down when the current remote fails', () => {
    const d = decideRoute(input({ current: { kind: 'remote', gateway: preferred.storageIp }, localHealthyForMs: 10, remote: new Map([[preferred.serverId, dead], [other.serverId, up]]) }));
    assert.deepEqual(d.route, LOCAL);
  });

  it('acts on probes alone with the last membership (the caller keeps it when the master is gone)', () => {
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0 }));
    assert.equal(d.route.kind, 'remote');
  });

  it('leaves the route as it is and raises the alarm when nothing is healthy', () => {
    const current = { kind: 'remote' as const, gateway: preferred.storageIp };
    const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, remote: new Map([['scvm-1', dead], ['scvm-3', dead]]), current }));
    assert.deepEqual(d.route, current);
    assert.equal(d.alarm, true);
    assert.match(d.reason, /no healthy Access Server/);
    const fromLocal = decideRoute(input({ local: 'down', localHealthyForMs: 0, remote: new Map() }));
    assert.deepEqual(fromLocal.route, LOCAL);
    assert.equal(fromLocal.alarm, true);
  });

  it('spreads rerouted hosts over the survivors (rendezvous hash)', () => {
    const survivors = [M(1), M(3), { ...M(4), hostId: 'esx-4' }];
    const counts = new Map<string, number>();
    for (let h = 0; h < 3000; h++) {
      const d = decideRoute({
        hostId: `esx-h${h}`, localServerId: 'scvm-x', members: survivors, local: 'down', localListed: 'down', localHealthyForMs: 0,
        remote: new Map(survivors.map((m) => [m.serverId, up])), current: LOCAL, holdDownMs: 30_000,
      });
      counts.set(d.target!.serverId, (counts.get(d.target!.serverId) ?? 0) + 1);
    }
    for (const m of survivors) {
      const share = (counts.get(m.serverId) ?? 0) / 3000;
      assert.ok(share > 0.28 && share < 0.39, `${m.serverId} got ${share}`);
    }
  });

  it('keeps each host on its choice when an unrelated survivor disappears', () => {
    const survivors = [M(1), M(3), M(4)];
    for (let h = 0; h < 200; h++) {
      const base = { hostId: `esx-h${h}`, localServerId: 'scvm-x', local: 'down' as const, localListed: 'down' as const, localHealthyForMs: 0, current: LOCAL, holdDownMs: 30_000, remote: new Map(survivors.map((m) => [m.serverId, up])) };
      const before = decideRoute({ ...base, members: survivors }).target!.serverId;
      const gone = survivors.find((m) => m.serverId !== before)!;
      const after = decideRoute({ ...base, members: survivors.filter((m) => m !== gone) }).target!.serverId;
      assert.equal(after, before);
    }
  });

  describe('maintenance (a server the master marks leaving)', () => {
    const leaving = (m: MemberView): MemberView => ({ ...m, leaving: true });

    it('moves off a local server in maintenance at once, though its probes answer and it is listed', () => {
      const d = decideRoute(input({ localLeaving: true, members: [M(1), leaving(M(2)), M(3)] }));
      assert.deepEqual(d.route, { kind: 'remote', gateway: preferred.storageIp });
      assert.match(d.reason, /scvm-2 in maintenance/);
    });

    it('does not keep the route while the local server in maintenance is not probed yet', () => {
      const d = decideRoute(input({ localLeaving: true, local: 'unknown', localHealthyForMs: 0 }));
      assert.equal(d.route.kind, 'remote');
    });

    it('routes nothing to a remote in maintenance: the next one by rendezvous is taken', () => {
      const d = decideRoute(input({ local: 'down', localHealthyForMs: 0, members: ALL.map((m) => (m.serverId === preferred.serverId ? leaving(m) : m)) }));
      assert.deepEqual(d.target, { serverId: other.serverId, via: 'storage' });
    });

    it('moves a host routed to a remote that enters maintenance (stickiness gives way)', () => {
      const d = decideRoute(input({
        local: 'down', localHealthyForMs: 0, current: { kind: 'remote', gateway: preferred.storageIp },
        members: ALL.map((m) => (m.serverId === preferred.serverId ? leaving(m) : m)),
      }));
      assert.deepEqual(d.route, { kind: 'remote', gateway: other.storageIp });
    });

    it('raises the alarm and leaves the route when every other server is in maintenance too', () => {
      const d = decideRoute(input({ localLeaving: true, members: ALL.map(leaving) }));
      assert.deepEqual(d.route, LOCAL);
      assert.equal(d.alarm, true);
    });
  });
});
