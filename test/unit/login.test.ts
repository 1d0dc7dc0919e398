import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { setSimulationMutants } from '../../common/mutants';
import { createMasterCore } from '../../master/core';
import { DEFAULT_MASTER_OPTIONS } from '../../master/options';
import { sessionMasterHandlers } from '../../master/service';
import { HostRegistry } from '../../master/identity';
import { LoginCoordinator, type LoginResult } from '../../master/login';
import { SessionState, SessionTable, type Session, type SessionSink } from '../../master/sessions';
import { FencingTokens } from '../../master/tokens';
import { FenceAgent } from '../../master/fence-agent';
import { DEFAULT_MASTER_LIMITS, type MasterLimits } from '../../master/limits';
import { KeyedRateLimiter } from '../../common/rate-limit';
import { silentLogger } from '../../common/log';
import { compareTokens } from '../../common/token';
import { fakeClock, flush, type FakeClock } from '../support/fake-clock';

const TTL = 3000;
const SURELY = Math.ceil(TTL * 1.1) + 250;
const ACK_TIMEOUT = 1000;

interface Harness {
  clock: FakeClock;
  sessions: SessionTable;
  registry: HostRegistry;
  logins: LoginCoordinator;
  open(serverId: string, hostId?: string, fencing?: Session['fencing']): Session & { revokes: Array<{ revokeId: string; clientId: string }>; ended?: string; confirmed?: string };
}

function harness(limits?: MasterLimits, withFenceAgent?: (clock: FakeClock) => FenceAgent): Harness {
  const clock = fakeClock();
  const fenceAgent = withFenceAgent?.(clock);
  const sessions = new SessionTable(clock, { ttlMs: TTL, clockDriftBound: 0.1, graceMarginMs: 250 });
  const registry = new HostRegistry([
    { id: 'esx-9', storageIp: '10.0.0.9', mgmtIp: '10.1.0.9' },
    ...[1, 2, 3, 4].map((n) => ({ id: `esx-9${n}`, storageIp: `10.9.0.${n}` })),
    ...[0, 1, 2, 3].map((n) => ({ id: `esx-2${n}`, storageIp: `10.2.0.${n}` })),
    { id: 'esx-98', storageIp: '10.9.9.8' },
    { id: 'esx-99', storageIp: '10.9.9.9' },
  ]);
  const logins = new LoginCoordinator({ clock, sessions, registry, tokens: new FencingTokens(7), revokeAckTimeoutMs: ACK_TIMEOUT, log: silentLogger(), limits, fenceAgent });
  return {
    clock, sessions, registry, logins,
    open(serverId, hostId = '', fencing = 'FENCING_READY') {
      const { session } = sessions.introduce({ serverId, hostId, storageIp: '', mgmtIp: '', resumeSessionId: '', fencing });
      const s = session as Harness['open'] extends (...a: never[]) => infer R ? R : never;
      s.revokes = [];
      const sink: SessionSink = {
        sendRevoke: (r) => s.revokes.push({ revokeId: r.revokeId, clientId: r.clientId }),
        end: (_code, details) => { s.ended = details; },
        confirmFence: (operator) => { s.confirmed = operator; },
      };
      s.sink = sink;
      return s;
    },
  };
}

/** Two sessions, a and b; a owns host:esx-9. */
async function heldByA() {
  const h = harness();
  const a = h.open('scvm-1');
  const b = h.open('scvm-2');
  await h.logins.login(a.id, '10.0.0.9');
  return { h, a, b };
}

/** Starts a login and reports whether it has settled, without awaiting it. */
function track(p: Promise<LoginResult>) {
  const t: { done: boolean; result?: LoginResult; error?: Error } = { done: false };
  p.then((r) => { t.done = true; t.result = r; }, (e) => { t.done = true; t.error = e; });
  return t;
}

describe('login and revoke: a holder without a working fence is held, never waited out (issue 18)', () => {
  afterEach(() => setSimulationMutants([]));

  /** Advances the clock by `ms`, keeping `live` renewed. */
  async function advance(h: Harness, ms: number, live: Session): Promise<void> {
    for (let left = ms; left > 0; left -= 500) {
      await h.clock.tickAsync(Math.min(500, left));
      h.sessions.renew(live);
    }
    await flush();
  }

  /** scvm-1 (no fence command) owns host:esx-9; scvm-2 asks for it. */
  async function unfencedHolder() {
    const h = harness();
    const a = h.open('scvm-1', '', 'FENCING_NONE');
    const b = h.open('scvm-2');
    await h.logins.login(a.id, '10.0.0.9');
    return { h, a, b };
  }

  it('fails a login UNAVAILABLE naming the silent holder, without condemning it, and lists the hold', async () => {
    const { h, a, b } = await unfencedHolder();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await h.clock.tickAsync(ACK_TIMEOUT);
    await flush();
    assert.equal(t.done, true);
    assert.equal(t.error?.name, 'Unavailable');
    assert.match(t.error!.message, /held by scvm-1.*nfsha fence-confirm scvm-1/);
    assert.equal(a.condemned, false, 'not condemned: condemning proves nothing without a fence');
    assert.equal(a.ended, undefined);
    assert.deepEqual(h.logins.heldClients().map((x) => [x.clientId, x.serverId]), [['host:esx-9', 'scvm-1']]);
    assert.deepEqual(h.logins.ownerships().map(([, o]) => o.sessionId), [a.id]);
  });

  it('fails a login whose holder reports a drain that outlasts the limit, keeping the holder\'s session', async () => {
    const { h, a, b } = await unfencedHolder();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    for (let i = 0; i < 4; i++) {
      h.logins.onRevokeProgress(a.id, a.revokes[0].revokeId, 3);
      h.sessions.renew(a);
      await h.clock.tickAsync(900);
    }
    await flush();
    assert.equal(t.error?.name, 'Unavailable');
    assert.match(t.error!.message, /did not drain/);
    assert.equal(h.sessions.state(a), SessionState.Live);
  });

  /** scvm-1 (no fence) holds host:esx-9; a login at scvm-2 ends with the client held there, the drain outlasting the limit. */
  async function heldAfterUndrainedRevoke() {
    const h = harness();
    const a = h.open('scvm-1', '', 'FENCING_NONE');
    const b = h.open('scvm-2');
    const first = await h.logins.login(a.id, '10.0.0.9');
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    for (let i = 0; i < 4; i++) {
      h.logins.onRevokeProgress(a.id, a.revokes[0].revokeId, 3);
      h.sessions.renew(a);
      h.sessions.renew(b);
      await h.clock.tickAsync(900);
    }
    await flush();
    assert.match(t.error!.message, /did not drain/);
    return { h, a, first };
  }

  it('lets the holding server log the client in again under a new token: its follower refuses the one it was told to revoke (found by the liveness phase)', async () => {
    const { h, a, first } = await heldAfterUndrainedRevoke();
    // The host came home: the server that holds it asks for it again.
    const again = await h.logins.login(a.id, '10.0.0.9');
    assert.equal(again.alreadyOwned, false, 'not the revoked grant handed back');
    assert.ok(compareTokens(again.token, first.token) > 0, 'a newer token than the one revoked');
    assert.deepEqual(h.logins.heldClients(), [], 'the hold ends: the client is granted where it was held');
  });

  it('with mutant master-regrants-revoked-token on, the revoked token is handed back (the fix\'s exact revert)', async () => {
    const { h, a, first } = await heldAfterUndrainedRevoke();
    setSimulationMutants(['master-regrants-revoked-token']);
    const again = await h.logins.login(a.id, '10.0.0.9');
    assert.equal(again.alreadyOwned, true);
    assert.deepEqual(again.token, first.token);
  });

  it('never forgets a dead unfenced holder\'s clients, until an operator confirms the fence; then the client moves', async () => {
    const { h, a, b } = await unfencedHolder();
    a.sink = undefined;
    await advance(h, SURELY + 1000, b);
    assert.equal(h.logins.mayForget(a), false, 'its holds stay');
    await assert.rejects(h.logins.login(b.id, '10.0.0.9'), { name: 'Unavailable' });
    const r = await h.logins.confirmFence('scvm-1', 'operator/alice', 'powered off');
    assert.deepEqual(r.released, ['host:esx-9']);
    assert.deepEqual(h.logins.heldClients(), []);
    const granted = await h.logins.login(b.id, '10.0.0.9');
    assert.equal(granted.clientId, 'host:esx-9');
  });

  it('ends a held revoke of a live holder when an operator confirms its fence, and tells its follower', async () => {
    const { h, a, b } = await unfencedHolder();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    h.logins.onRevokeProgress(a.id, a.revokes[0].revokeId, 3);
    await h.logins.confirmFence('scvm-1', 'operator/alice', 'checked');
    await h.clock.tickAsync(0);
    assert.equal(t.done, true);
    assert.equal(t.result?.clientId, 'host:esx-9');
    assert.equal(a.confirmed, 'operator/alice');
  });

  it('refuses to confirm a server it knows nothing of', async () => {
    const { h } = await unfencedHolder();
    await assert.rejects(h.logins.confirmFence('scvm-7', 'operator/alice', ''), { name: 'NotFound' });
  });

  it('mutant master-waitout-without-fence brings back the condemn-and-wait-out', async () => {
    setSimulationMutants(['master-waitout-without-fence']);
    const { h, a, b } = await unfencedHolder();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await advance(h, ACK_TIMEOUT + SURELY + 500, b);
    assert.equal(a.condemned, true);
    assert.equal(t.result?.clientId, 'host:esx-9');
  });
});

describe('a silent holder whose server came back unable to fence (simulation seed 352024172)', () => {
  afterEach(() => setSimulationMutants([]));

  /** Keeps `live` renewed while the clock moves `ms`. */
  async function advance(h: Harness, ms: number, ...live: Session[]): Promise<void> {
    for (let left = ms; left > 0; left -= 500) {
      await h.clock.tickAsync(Math.min(500, left));
      for (const s of live) h.sessions.renew(s);
    }
    await flush();
  }

  /**
   * scvm-1 (with a fence) owns host:esx-9; its follower and gate die (the
   * gate's calls sit in a hung NFS server, and nobody is left to fence at the
   * lease's fence point); a new follower of scvm-1 comes back, its start
   * fence failed; scvm-2 asks for the client.
   */
  async function diedThenCameBackUnfenced(cameBack: 'before' | 'during') {
    const { h, a, b } = await heldByA();
    a.sink = undefined;
    let a2: Session | undefined;
    const comeBack = () => { a2 = h.open('scvm-1', '', 'FENCING_FAILED'); h.sessions.setFencing(a2, 'FENCING_FAILED', "follower's fence command failed: exit 1"); };
    // Its session expires (before), or is condemned by the login (during).
    await advance(h, cameBack === 'before' ? TTL + 500 : 500, b);
    if (cameBack === 'before') comeBack();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await advance(h, 1000, b, ...(a2 ? [a2] : []));
    if (cameBack === 'during') comeBack();
    await advance(h, SURELY + 500, b, a2!);
    return { h, a, a2: a2!, b, t };
  }

  for (const when of ['before', 'during'] as const) {
    it(`holds the client, naming the failed fence, when the server came back ${when} the wait-out`, async () => {
      const { h, t } = await diedThenCameBackUnfenced(when);
      assert.equal(t.done, true);
      assert.equal(t.result, undefined, 'granted elsewhere while the dead gate\'s calls may still run in scvm-1\'s NFS server');
      assert.equal(t.error?.name, 'Unavailable');
      assert.match(t.error!.message, /held by scvm-1.*later follower of it reports its fence failed, in session/);
      assert.deepEqual(h.logins.heldClients().map((x) => x.clientId), ['host:esx-9']);
    });
  }

  it('keeps the holds of the silent session past its lease, and lets the client move once the server\'s fence works again', async () => {
    const { h, a, a2, b } = await diedThenCameBackUnfenced('before');
    assert.equal(h.logins.mayForget(a), false, 'forgetting the holds would free the client unproven');
    h.sessions.setFencing(a2, 'FENCING_READY', '');
    assert.equal(h.logins.mayForget(a), true);
    const r = await h.logins.login(b.id, '10.0.0.9');
    assert.equal(r.clientId, 'host:esx-9');
  });

  it('keeps the failure standing after the later session itself died, until a session of that server reports a working fence (recipe seed 180)', async () => {
    const { h, a, a2, b } = await diedThenCameBackUnfenced('before');
    a2.sink = undefined;
    await advance(h, SURELY + 500, b);
    h.sessions.sweep((s) => h.logins.mayForget(s));
    assert.equal(h.sessions.get(a2.id), undefined, 'the later session is gone');
    assert.equal(h.logins.mayForget(a), false, 'the old session\'s holds must stay: nothing has fenced its server since');
    await assert.rejects(h.logins.login(b.id, '10.0.0.9'), /reports its fence failed/);
    const a3 = h.open('scvm-1');
    assert.equal(h.logins.mayForget(a), true, 'a later follower reports a working fence');
    void a3;
  });

  /** scvm-1's new follower tries to introduce itself while its dead predecessor's session still lives: refused, but its failed fence is heard. */
  async function refusedIntroduction() {
    const { h, a, b } = await heldByA();
    a.sink = undefined;
    await advance(h, 500, b);
    assert.throws(() => h.sessions.introduce({ serverId: 'scvm-1', hostId: '', storageIp: '', mgmtIp: '', resumeSessionId: '', fencing: 'FENCING_FAILED', fencingDetail: 'exit 1' }), { name: 'AlreadyExists' });
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await advance(h, SURELY + 500, b);
    return { h, t };
  }

  it('hears the failed fence of an introduction refused while the earlier session lives, and holds the client (recipe seed 136)', async () => {
    const { t } = await refusedIntroduction();
    assert.equal(t.result, undefined, 'granted elsewhere: the master completed the wait-out before the new follower could open a session');
    assert.match(t.error?.message ?? '', /reports its fence failed, in an introduction refused while an earlier session lives/);
  });

  it('with mutant master-ignores-refused-introduction-fencing on, the wait-out completes (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-ignores-refused-introduction-fencing']);
    const { t } = await refusedIntroduction();
    assert.equal(t.result?.clientId, 'host:esx-9');
  });

  it('with mutant master-waitout-ignores-later-fence-failure on, the wait-out completes and the client moves (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-waitout-ignores-later-fence-failure']);
    const { t } = await diedThenCameBackUnfenced('during');
    assert.equal(t.result?.clientId, 'host:esx-9');
  });
});

describe('login and revoke (master)', () => {
  it('grants a free client at once with a fencing token of the current epoch', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    const r = await h.logins.login(a.id, '10.0.0.9');
    assert.equal(r.clientId, 'host:esx-9');
    assert.deepEqual(r.token, { epoch: 7, sequence: 1 });
    assert.equal(r.revoked, 0);
  });

  it('treats several logins of one client on one session as one login', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    const first = await h.logins.login(a.id, '10.0.0.9');
    const second = await h.logins.login(a.id, '10.1.0.9');
    assert.equal(second.alreadyOwned, true);
    assert.deepEqual(second.token, first.token);
  });

  it('resolves the private local address to the host of the server it arrived on', async () => {
    const h = harness();
    const a = h.open('scvm-1', 'esx-1');
    const b = h.open('scvm-2', 'esx-2');
    assert.equal((await h.logins.login(a.id, '192.168.33.1')).clientId, 'host:esx-1');
    assert.equal((await h.logins.login(b.id, '192.168.33.1')).clientId, 'host:esx-2');
    assert.equal((await h.logins.login(b.id, '::ffff:10.0.0.9')).clientId, 'host:esx-9', 'an IPv4-mapped address is the same host');
  });

  it('refuses an address no registered host owns, instead of making it a client of its own (one host, two clients)', async () => {
    const h = harness();
    const a = h.open('scvm-1', 'esx-1');
    await assert.rejects(h.logins.login(a.id, '10.0.0.77'), { name: 'Unavailable', message: /belongs to no registered host/ });
    assert.deepEqual(h.logins.ownerships(), []);
  });

  it('refuses local clients of a server that did not say which host it runs on', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    await assert.rejects(h.logins.login(a.id, '192.168.33.1'), { name: 'FailedPrecondition', message: /--host-id/ });
  });

  it('revokes a client held elsewhere and grants only after the holder acks', async () => {
    const { h, a, b } = await heldByA();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    assert.equal(a.revokes.length, 1);
    assert.equal(a.revokes[0].clientId, 'host:esx-9');
    await h.clock.tickAsync(ACK_TIMEOUT - 1);
    assert.equal(t.done, false, 'granted before the holder acked');
    assert.equal(h.logins.owner('host:esx-9')?.sessionId, a.id);
    assert.equal(h.logins.onRevokeAck(a.id, a.revokes[0].revokeId), true);
    await flush();
    assert.equal(t.done, true);
    assert.equal(t.result!.revoked, 1);
    assert.equal(h.logins.owner('host:esx-9')?.sessionId, b.id);
  });

  it('ignores a revoke ack sent by a session that was not revoked', async () => {
    const { h, a, b } = await heldByA();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    assert.equal(h.logins.onRevokeAck(b.id, a.revokes[0].revokeId), false);
    await flush();
    assert.equal(t.done, false);
  });

  it('grants away from a silent holder only once its lease has surely expired, never earlier', async () => {
    const { h, a, b } = await heldByA();
    // b keeps its own session alive while a falls silent.
    const renewB = async (ms: number) => {
      for (let left = ms; left > 0; left -= Math.min(500, left)) {
        h.sessions.renew(b);
        await h.clock.tickAsync(Math.min(500, left));
      }
    };
    const heardFromA = h.clock.now();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    assert.equal(a.revokes.length, 1, 'the silent holder is still sent a revoke');
    await renewB(SURELY - 1);
    h.sessions.renew(b);
    assert.equal(t.done, false, 'granted while the silent holder might still serve');
    assert.equal(h.sessions.state(a), SessionState.Condemned);
    assert.match(a.ended ?? '', /condemned/);
    await h.clock.tickAsync(1);
    await flush();
    assert.equal(t.done, true);
    assert.equal(t.error, undefined);
    assert.equal(h.clock.now() - heardFromA, SURELY);
    assert.equal(h.logins.owner('host:esx-9')?.sessionId, b.id);
  });

  it('does not grant while a holder that came back in a new session still claims the client: it revokes that one too (race 1)', async () => {
    const { h, a, b } = await heldByA();
    const token = h.logins.owner('host:esx-9')!.token;
    const heardFromA = h.clock.now();
    // a's stream broke at the transport (UNAVAILABLE): its follower never saw
    // ABORTED, so it keeps serving and reconnects.
    a.sink = undefined;
    const renewB = () => h.sessions.renew(b);
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    assert.equal(h.sessions.state(a), SessionState.Condemned, 'the silent holder is condemned and waited out');
    await h.clock.tickAsync(1000);
    renewB();
    // Inside the wait-out the follower re-introduces itself: a new session
    // (the condemned one cannot resume) that claims the client.
    const a2 = h.open('scvm-1');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token }]), ['host:esx-9']);
    // To just after a's wait-out ends (a2 keeps its own session alive).
    while (h.clock.now() < heardFromA + SURELY + 10) {
      await h.clock.tickAsync(Math.min(500, heardFromA + SURELY + 10 - h.clock.now()));
      renewB();
      h.sessions.renew(a2);
    }
    await flush();
    assert.equal(t.done, false, 'granted while the re-introduced holder still serves the client');
    assert.deepEqual(a2.revokes.map((r) => r.clientId), ['host:esx-9'], 'the new holder is revoked as well');
    assert.equal(h.logins.onRevokeAck(a2.id, a2.revokes[0].revokeId), true, 'the ack is for a revoke in flight');
    await h.clock.tickAsync(0);
    assert.equal(t.done, true);
    assert.equal(t.result!.revoked, 2);
    assert.deepEqual(h.logins.ownerships().map(([, o]) => o.sessionId), [b.id]);
  });

  it('waits out a holder whose stream is gone without sending it anything', async () => {
    const { h, a, b } = await heldByA();
    a.sink = undefined;
    await h.clock.tickAsync(1000);
    h.sessions.renew(b);
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await h.clock.tickAsync(SURELY - 1000 - 1);
    assert.equal(t.done, false);
    assert.equal(a.revokes.length, 0);
    await h.clock.tickAsync(1);
    assert.equal(t.done, true);
    assert.equal(t.error?.message, undefined);
  });

  it('hands a client from an expired session of a server to that server\'s new session at once: no wait-out, no fence, no hold (found by the simulation\'s liveness phase)', async () => {
    const h = harness();
    const old = h.open('scvm-1', '', 'FENCING_NONE');
    await h.logins.login(old.id, '10.0.0.9');
    old.sink = undefined;
    await h.clock.tickAsync(TTL + 1);
    assert.equal(h.sessions.state(old), SessionState.Expired);
    const again = h.open('scvm-1', '', 'FENCING_NONE');
    const r = await h.logins.login(again.id, '10.0.0.9');
    assert.equal(r.clientId, 'host:esx-9');
    assert.equal(r.revoked, 1, 'the earlier session\'s hold was taken over');
    assert.deepEqual(h.logins.heldClients(), [], 'the server asking is not held for its own confirmation');
  });

  it('with mutant master-fences-own-requester on, the server\'s own earlier session holds the client (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-fences-own-requester']);
    const h = harness();
    const old = h.open('scvm-1', '', 'FENCING_NONE');
    await h.logins.login(old.id, '10.0.0.9');
    old.sink = undefined;
    await h.clock.tickAsync(TTL + 1);
    const again = h.open('scvm-1', '', 'FENCING_NONE');
    await assert.rejects(h.logins.login(again.id, '10.0.0.9'), /held by scvm-1/);
  });

  it('fails the login if the requester expired while waiting, and leaves the holder in place', async () => {
    const { h, a, b } = await heldByA();
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await h.clock.tickAsync(SURELY);
    assert.equal(t.done, true);
    assert.equal(t.error?.name, 'NotFound');
    assert.equal(h.logins.owner('host:esx-9'), undefined, 'the silent holder lost it; nobody else got it');
  });

  it('refuses unknown sessions and malformed addresses without changing state', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    await h.logins.login(a.id, '10.0.0.9');
    const before = JSON.stringify(h.logins.ownerships());
    await assert.rejects(h.logins.login('nope', '10.0.0.9'), { name: 'NotFound' });
    await assert.rejects(h.logins.login(a.id, 'not-an-ip'), { name: 'InvalidArgument' });
    await assert.rejects(h.logins.login(a.id, '10.0.0.256'), { name: 'InvalidArgument' });
    await assert.rejects(h.logins.logout('nope', 'host:esx-9'), { name: 'NotFound' });
    assert.equal(JSON.stringify(h.logins.ownerships()), before);
  });

  it('logs out only what the session owns', async () => {
    const { h, a, b } = await heldByA();
    assert.equal(await h.logins.logout(b.id, 'host:esx-9'), false);
    assert.equal(await h.logins.logout(a.id, 'host:esx-9'), true);
    const r = await h.logins.login(b.id, '10.0.0.9');
    assert.equal(r.revoked, 0, 'a logged-out client needs no revoke');
  });

  it('ignores a logout of an older grant that arrives after a newer login of the same session (campaign seed 53387)', async () => {
    const { h, a, b } = await heldByA();
    const old = (await h.logins.login(a.id, '10.0.0.9')).token;
    // The holder releases the old grant; before that logout lands again (a
    // late or repeated copy), the client logs in again on the same session.
    assert.equal(await h.logins.logout(a.id, 'host:esx-9', old), true);
    const again = await h.logins.login(a.id, '10.1.0.9');
    assert.ok(compareTokens(again.token, old) > 0);
    assert.equal(await h.logins.logout(a.id, 'host:esx-9', old), false, 'a release of the older grant does not free the newer one');
    const login = h.logins.login(b.id, '10.0.0.9');
    const elsewhere = track(login);
    await flush();
    assert.deepEqual(a.revokes.map((r) => r.clientId), ['host:esx-9'], 'a login elsewhere still has to revoke the holder');
    assert.equal(elsewhere.done, false);
    h.logins.onRevokeAck(a.id, a.revokes[0].revokeId);
    assert.equal((await login).revoked, 1);
  });

  it('issues tokens that only grow, whatever the order of logins and acks', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 })), { minLength: 1, maxLength: 25 }), async (steps) => {
        const h = harness();
        const servers = [h.open('scvm-1'), h.open('scvm-2'), h.open('scvm-3')];
        let last = { epoch: 0, sequence: 0 };
        for (const [server, client] of steps) {
          const s = servers[server];
          const p = h.logins.login(s.id, `10.2.0.${client}`);
          await flush();
          for (const other of servers) for (const r of other.revokes.splice(0)) h.logins.onRevokeAck(other.id, r.revokeId);
          const r = await p;
          if (!r.alreadyOwned) {
            assert.ok(compareTokens(r.token, last) > 0, `token ${JSON.stringify(r.token)} not above ${JSON.stringify(last)}`);
            last = r.token;
          }
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('claims older than a later grant (campaign seed 54107)', () => {
  it('holds a re-introduced claim older than a grant made since, revokes it, and does not list it as adopted', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    const first = (await h.logins.login(a.id, '10.0.0.9')).token;
    await h.logins.logout(a.id, 'host:esx-9', first);
    const second = (await h.logins.login(b.id, '10.0.0.9')).token;
    await h.logins.logout(b.id, 'host:esx-9', second);
    // A session introduces itself still claiming that first grant (scvm-1's
    // follower back after an isolation, as in the seed; any session will do).
    const a2 = h.open('scvm-3');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token: first }]), [], 'not adopted: the follower drops it');
    await flush();
    assert.deepEqual(a2.revokes.map((r) => r.clientId), ['host:esx-9'], 'and revoked, in case it still serves it');
    const login = h.logins.login(b.id, '10.0.0.9');
    const elsewhere = track(login);
    await flush();
    assert.equal(elsewhere.done, false, 'a login elsewhere waits for that revoke');
    h.logins.onRevokeAck(a2.id, a2.revokes[0].revokeId);
    assert.ok(compareTokens((await login).token, second) > 0);
  });

  it('adopts a claim of the newest grant it made as before', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    const token = (await h.logins.login(a.id, '10.0.0.9')).token;
    const a2 = h.open('scvm-3');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token }]), ['host:esx-9']);
  });
});

describe('claims from an address that names another host now (campaign seed 2082951979)', () => {
  /** a holds esx-9, admitted from its management address 10.1.0.9; esx-9 is renumbered and esx-98 gets 10.1.0.9. */
  async function renumberedAndReused() {
    const { h, a, b } = await heldByA();
    const token = (await h.logins.login(a.id, '10.1.0.9')).token;
    h.registry.upsert({ id: 'esx-9', storageIp: '10.0.0.9', mgmtIp: '10.1.0.99' });
    h.registry.upsert({ id: 'esx-98', storageIp: '10.9.9.8', mgmtIp: '10.1.0.9' });
    return { h, a, b, token };
  }

  afterEach(() => setSimulationMutants([]));

  it('holds a re-introduced claim admitted from an address another host has now, revokes it, and does not list it as adopted', async () => {
    const { h, b, token } = await renumberedAndReused();
    // A follower cut off while the revoke of that address went to its old
    // session introduces itself again, still claiming esx-9 from it (scvm-1's
    // in the seed; any session will do).
    const a2 = h.open('scvm-3');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token, addresses: ['10.0.0.9', '10.1.0.9'] }]), [], 'not adopted: the follower drops it and forgets the address');
    await flush();
    assert.deepEqual(a2.revokes.map((r) => r.clientId), ['host:esx-9'], 'and revoked, in case it still serves it');
    const elsewhere = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    assert.equal(elsewhere.done, false, 'a login elsewhere waits for that revoke');
  });

  it('treats an address no host has now the same way', async () => {
    const { h, token } = await heldByA().then(async ({ h, a }) => ({ h, token: (await h.logins.login(a.id, '10.1.0.9')).token }));
    h.registry.upsert({ id: 'esx-9', storageIp: '10.0.0.9', mgmtIp: '10.1.0.99' });
    const a2 = h.open('scvm-3');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token, addresses: ['10.1.0.9'] }]), []);
  });

  it('adopts a claim whose addresses are all still the client\'s, and one from a follower that lists none', async () => {
    const { h, token } = await renumberedAndReused();
    const a2 = h.open('scvm-3');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token, addresses: ['10.0.0.9', '10.1.0.99'] }]), ['host:esx-9']);
    const a3 = h.open('scvm-4');
    assert.deepEqual(h.logins.adopt(a3.id, [{ clientId: 'host:esx-9', token }]), ['host:esx-9']);
  });

  it('with mutant master-adopts-claim-of-moved-address on, the claim is adopted (the fix\'s exact revert)', async () => {
    const { h, token } = await renumberedAndReused();
    setSimulationMutants(['master-adopts-claim-of-moved-address']);
    const a2 = h.open('scvm-3');
    assert.deepEqual(h.logins.adopt(a2.id, [{ clientId: 'host:esx-9', token, addresses: ['10.1.0.9'] }]), ['host:esx-9']);
  });
});

describe('login after a failover', () => {
  it('re-grants an adopted client with a token of the current epoch, not the old term\'s', async () => {
    const h = harness();
    const a = h.open('scvm-1');
    h.logins.adopt(a.id, [{ clientId: 'host:esx-9', token: { epoch: 4, sequence: 9 } }]);
    const r = await h.logins.login(a.id, '10.0.0.9');
    assert.equal(r.alreadyOwned, false);
    assert.deepEqual(r.token, { epoch: 7, sequence: 1 });
    assert.deepEqual(h.logins.ownerships().map(([c, o]) => [c, { sessionId: o.sessionId, token: o.token }]), [['host:esx-9', { sessionId: a.id, token: { epoch: 7, sequence: 1 } }]]);
    assert.equal((await h.logins.login(a.id, '10.0.0.9')).alreadyOwned, true);
  });
});

describe('master limits', () => {
  it('refuses a session more clients than its limit, naming it, while others log in and owned clients stay', async () => {
    const h = harness({ ...DEFAULT_MASTER_LIMITS, maxClientsPerSession: 2 });
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    await h.logins.login(a.id, '10.9.0.1');
    await h.logins.login(a.id, '10.9.0.2');
    await assert.rejects(h.logins.login(a.id, '10.9.0.3'), { name: 'ResourceExhausted', limit: 'clients_per_session', message: /limit 2/ });
    assert.equal((await h.logins.login(a.id, '10.9.0.2')).alreadyOwned, true);
    await h.logins.login(b.id, '10.9.0.3');
    assert.deepEqual(h.logins.clientsOf(a.id).sort(), ['host:esx-91', 'host:esx-92']);
  });

  it('holds every claim of an introduction: one over the limit is revoked, and a login elsewhere waits for that revoke (race 7)', async () => {
    const h = harness({ ...DEFAULT_MASTER_LIMITS, maxClientsPerSession: 1 });
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    const claims = [{ clientId: 'host:esx-91', token: { epoch: 7, sequence: 1 } }, { clientId: 'host:esx-92', token: { epoch: 7, sequence: 2 } }];
    assert.deepEqual(h.logins.adopt(a.id, claims), ['host:esx-91'], 'only one fits the limit');
    await flush();
    assert.deepEqual(a.revokes.map((r) => r.clientId), ['host:esx-92'], 'the claim over the limit is revoked');
    // Until the follower has dropped it, the client is not free.
    const t = track(h.logins.login(b.id, '10.9.0.2'));
    await flush();
    assert.equal(t.done, false, 'granted a claimed client its claimer may still serve');
    h.logins.onRevokeAck(a.id, a.revokes[0].revokeId);
    await h.clock.tickAsync(0);
    assert.equal(t.done, true);
    assert.equal(h.logins.owner('host:esx-92')?.sessionId, b.id);
  });

  it('with mutant master-over-limit-claim-unheld on, the claim over the limit is forgotten and a login elsewhere is granted at once (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-over-limit-claim-unheld']);
    try {
      const h = harness({ ...DEFAULT_MASTER_LIMITS, maxClientsPerSession: 1 });
      const a = h.open('scvm-1');
      const b = h.open('scvm-2');
      const claims = [{ clientId: 'host:esx-91', token: { epoch: 7, sequence: 1 } }, { clientId: 'host:esx-92', token: { epoch: 7, sequence: 2 } }];
      assert.deepEqual(h.logins.adopt(a.id, claims), ['host:esx-91']);
      await flush();
      assert.deepEqual(a.revokes, [], 'nothing revoked: the follower is left to drop it');
      const r = await h.logins.login(b.id, '10.9.0.2');
      assert.equal(r.clientId, 'host:esx-92', 'granted while its claimer may still serve it');
    } finally {
      setSimulationMutants([]);
    }
  });

  it('checks the client limit before revoking anything: a refused login takes no client away', async () => {
    const h = harness({ ...DEFAULT_MASTER_LIMITS, maxClientsPerSession: 1 });
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    await h.logins.login(a.id, '10.0.0.9');
    await h.logins.login(b.id, '10.9.0.1');
    await assert.rejects(h.logins.login(b.id, '10.0.0.9'), { name: 'ResourceExhausted', limit: 'clients_per_session' });
    assert.deepEqual(a.revokes, [], 'the holder was not revoked');
    assert.equal(h.logins.owner('host:esx-9')?.sessionId, a.id);
  });

  it('counts logins in flight against the client limit', async () => {
    const h = harness({ ...DEFAULT_MASTER_LIMITS, maxClientsPerSession: 1 });
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    await h.logins.login(a.id, '10.0.0.9');
    const first = track(h.logins.login(b.id, '10.0.0.9')); // waits for a's ack
    await flush();
    await assert.rejects(h.logins.login(b.id, '10.9.0.2'), { name: 'ResourceExhausted', limit: 'clients_per_session' });
    h.logins.onRevokeAck(a.id, a.revokes[0].revokeId);
    await flush();
    assert.equal(first.result?.clientId, 'host:esx-9');
  });

  it('bounds logins in flight per session, so one follower cannot use up the rest', async () => {
    const h = harness({ ...DEFAULT_MASTER_LIMITS, maxPendingLoginsPerSession: 1, maxPendingLogins: 10 });
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    const c = h.open('scvm-3');
    await h.logins.login(a.id, '10.0.0.9');
    const pending = track(h.logins.login(b.id, '10.0.0.9')); // waits for a's revoke ack
    await flush();
    await assert.rejects(h.logins.login(b.id, '10.9.9.9'), { name: 'ResourceExhausted', limit: 'pending_logins_per_session' });
    assert.equal((await h.logins.login(c.id, '10.9.9.8')).revoked, 0, 'another session still logs in');
    h.logins.onRevokeAck(a.id, a.revokes[0].revokeId);
    await flush();
    assert.equal(pending.result?.clientId, 'host:esx-9');
    await h.logins.login(b.id, '10.9.9.9');
  });

  it('limits introductions per key with a token bucket (fake clock)', async () => {
    const clock = fakeClock();
    const limiter = new KeyedRateLimiter(clock, 2, 3);
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('scvm-1')), [true, true, true, false]);
    assert.equal(limiter.take('scvm-2'), true, 'other keys have their own bucket');
    await clock.tickAsync(499);
    assert.equal(limiter.take('scvm-1'), false);
    await clock.tickAsync(1);
    assert.equal(limiter.take('scvm-1'), true, 'one token back after 500 ms at 2/s');
  });
});

describe('a revoke written to a stream the holder then replaced (issue 18 hole g)', () => {
  afterEach(() => setSimulationMutants([]));

  /** A Session stream as the handler sees it: what it writes, and the status it ends with. */
  function sessionCall() {
    const call = Object.assign(new EventEmitter(), {
      written: [] as Array<Record<string, any>>,
      status: undefined as { code: number; details: string } | undefined,
      write(m: Record<string, unknown>) { this.written.push(m); return true; },
      end() { /* the follower's half */ },
    });
    call.on('error', (e: { code: number; details: string }) => { call.status = e; });
    return call;
  }
  const intro = (serverId: string, resumeSessionId = '', clients: unknown[] = []) => ({
    kind: 'introduction',
    introduction: { serverId, hostId: '', storageIp: '', mgmtIp: '', clients, highestEpoch: 0, resumeSessionId, protocol: 2, nfs: 'NFS_HEALTH_UNSPECIFIED', fencing: 'FENCING_READY', fencingDetail: '' },
  });

  /**
   * scvm-1 holds host:esx-9; scvm-2 logs it in, so the master writes a
   * revoke to scvm-1's stream, which breaks before the revoke got there;
   * 800 ms later scvm-1 resumes its session on a new stream.
   */
  async function revokeThenResume() {
    const clock = fakeClock();
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, hosts: [{ id: 'esx-9', storageIp: '10.0.0.9' }], tls: { insecure: true } }, clock, silentLogger(), {
      epoch: 4, mayAct: () => true, expectedServers: [], graceMs: 0, leader: () => undefined,
    });
    const handlers = sessionMasterHandlers(c);
    const open = async (serverId: string, resume = '', clients: unknown[] = []) => {
      const call = sessionCall();
      handlers.Session(call as never);
      call.emit('data', intro(serverId, resume, clients));
      await flush();
      return { call, sessionId: call.written[0].granted.sessionId as string };
    };
    const a = await open('scvm-1');
    const b = await open('scvm-2');
    const held = await c.logins.login(a.sessionId, '10.0.0.9');
    const t = track(c.logins.login(b.sessionId, '10.0.0.9'));
    await flush();
    const sent = a.call.written.filter((m) => m.revoke);
    assert.equal(sent.length, 1);
    a.call.emit('cancelled');
    await clock.tickAsync(800);
    const again = await open('scvm-1', a.sessionId, [{ clientId: 'host:esx-9', token: held.token }]);
    assert.equal(again.call.written[0].granted.resumed, true);
    return { c, clock, t, again, revokeId: sent[0].revoke.revokeId as string };
  }

  it('sends it again on the new stream, gives the holder a fresh ack timeout, and grants once it acks there', async () => {
    const { c, clock, t, again, revokeId } = await revokeThenResume();
    assert.deepEqual(again.call.written.filter((m) => m.revoke).map((m) => m.revoke.revokeId), [revokeId], 'the revoke written to the replaced stream was not sent again');
    await clock.tickAsync(ACK_TIMEOUT - 1);
    assert.equal(again.call.status, undefined, 'a healthy holder condemned');
    again.call.emit('data', { kind: 'revokeAck', revokeAck: { revokeId } });
    await flush();
    assert.equal(t.done, true);
    assert.equal(t.error, undefined);
    assert.equal(c.logins.owner('host:esx-9')?.sessionId, c.sessions.all().find((s) => s.serverId === 'scvm-2')!.id);
  });

  it('with mutant master-revoke-lost-with-stream on, the holder never hears it and is condemned (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-revoke-lost-with-stream']);
    const { clock, again } = await revokeThenResume();
    assert.equal(again.call.written.filter((m) => m.revoke).length, 0);
    await clock.tickAsync(ACK_TIMEOUT);
    assert.equal(again.call.status?.code, 10, 'ABORTED: condemned');
  });
});

/**
 * A Session stream the test plays the follower of: opens it on `handlers`,
 * sends `introduction`, and keeps everything the master writes.
 */
async function introduceOn(handlers: ReturnType<typeof sessionMasterHandlers>, introduction: Record<string, unknown>) {
  const call = Object.assign(new EventEmitter(), {
    written: [] as Array<Record<string, any>>,
    write(m: Record<string, unknown>) { this.written.push(m); return true; },
    end() { /* the follower's half */ },
  });
  handlers.Session(call as never);
  call.emit('data', { kind: 'introduction', introduction: { hostId: '', storageIp: '', mgmtIp: '', clients: [], clientsInFlight: [], protocol: 2, nfs: 'NFS_HEALTH_UNSPECIFIED', fencingDetail: '', ...introduction } });
  await flush();
  return call;
}

describe('an introduction\'s clients with calls in flight and no grant (issue 18 hole f)', () => {
  afterEach(() => setSimulationMutants([]));

  /**
   * A master that restarted (it knows no session): scvm-3 re-introduces
   * itself claiming host:esx-3 and listing host:esx-9, which it holds no
   * grant for but whose calls its NFS layer still drains; scvm-2 logs
   * host:esx-9 in.
   */
  async function restartedMaster() {
    const clock = fakeClock();
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, hosts: [{ id: 'esx-9', storageIp: '10.0.0.9' }, { id: 'esx-3', storageIp: '10.0.0.3' }], tls: { insecure: true } }, clock, silentLogger(), {
      epoch: 9, mayAct: () => true, expectedServers: [], graceMs: 0, leader: () => undefined,
    });
    const handlers = sessionMasterHandlers(c);
    const open = async (serverId: string, resumeSessionId: string, clients: unknown[], clientsInFlight: string[]) => {
      const call = await introduceOn(handlers, { serverId, clients, clientsInFlight, highestEpoch: 5, resumeSessionId, fencing: 'FENCING_READY' });
      return { call, sessionId: call.written[0].granted.sessionId as string, adopted: call.written[0].granted.adoptedClients as string[] };
    };
    const s3 = await open('scvm-3', 'old-session', [{ clientId: 'host:esx-3', token: { epoch: 5, sequence: 2 } }], ['host:esx-9']);
    const s2 = await open('scvm-2', '', [], []);
    const login = track(c.logins.login(s2.sessionId, '10.0.0.9'));
    await flush();
    return { c, s3, s2, login };
  }

  it('holds such a client for that server and revokes it there: a login elsewhere waits until those calls are done', async () => {
    const { c, s3, login } = await restartedMaster();
    assert.equal(login.done, false, 'granted host:esx-9 to scvm-2 while scvm-3 still has calls of it in flight');
    assert.deepEqual(s3.adopted, ['host:esx-3'], 'adopted a client it holds no grant for');
    const revokes = s3.call.written.filter((m) => m.revoke && m.revoke.clientId === 'host:esx-9');
    assert.equal(revokes.length, 1, 'revoked there');
    c.logins.onRevokeAck(s3.sessionId, revokes[0].revoke.revokeId);
    await flush();
    assert.equal(login.done, true);
    assert.equal(login.error, undefined);
  });

  it('with mutant follower-claims-omit-inflight on, the login is granted at once (the fix\'s exact revert)', async () => {
    setSimulationMutants(['follower-claims-omit-inflight']);
    const { login } = await restartedMaster();
    assert.equal(login.done, true);
    assert.equal(login.error, undefined);
  });
});

describe('a new follower that could not fence at start, of a server that had one before (recipe follower-and-gate-die-no-fence)', () => {
  afterEach(() => setSimulationMutants([]));

  /** Introductions to one master, each on its own stream; returns what each was granted. */
  function master(expectedServers: string[]) {
    const clock = fakeClock();
    const c = createMasterCore({ ...DEFAULT_MASTER_OPTIONS, hosts: [{ id: 'esx-3', storageIp: '10.0.0.3' }], tls: { insecure: true } }, clock, silentLogger(), {
      epoch: 9, mayAct: () => true, expectedServers: expectedServers.map((serverId) => ({ serverId, hostId: '', storageIp: '', mgmtIp: '', fencing: 'FENCING_NONE' as const })), graceMs: 0, leader: () => undefined,
    });
    const handlers = sessionMasterHandlers(c);
    const introduce = async (serverId: string, o: { resume?: string; fencedAtStart?: boolean } = {}) => {
      const call = await introduceOn(handlers, { serverId, highestEpoch: 0, resumeSessionId: o.resume ?? '', fencing: o.fencedAtStart ? 'FENCING_READY' : 'FENCING_NONE', nfsFencedAtStart: o.fencedAtStart === true });
      const g = call.written.find((m) => m.granted)?.granted;
      assert.ok(g, `no grant: ${JSON.stringify(call.written)}`);
      return { call, granted: g as { sessionId: string; predecessorUnproven: boolean } };
    };
    return { c, clock, introduce };
  }

  it('tells it so when the server was registered before this term, or introduced before in it; not on a server\'s first start, a resumed session, or a start fence that worked', async () => {
    const m = master(['scvm-3']);
    assert.equal((await m.introduce('scvm-3')).granted.predecessorUnproven, true, 'registered before: a predecessor ran');
    assert.equal((await m.introduce('scvm-4')).granted.predecessorUnproven, false, 'first start of a server');
    const again = master([]);
    const first = await again.introduce('scvm-5');
    assert.equal(first.granted.predecessorUnproven, false);
    first.call.emit('end');
    await again.clock.tickAsync(5000);
    again.c.sessions.sweep();
    assert.equal((await again.introduce('scvm-5')).granted.predecessorUnproven, true, 'introduced before in this term');
    assert.equal((await master(['scvm-6']).introduce('scvm-6', { fencedAtStart: true })).granted.predecessorUnproven, false, 'its start fence covered the predecessor');
  });

  it('keeps a new leader\'s grace from ending on its word: without a fence, others\' logins are held naming it', async () => {
    const m = master(['scvm-3']);
    await m.introduce('scvm-3');
    assert.equal(m.c.readiness.isReady(), false, 'a new leader ended its grace on the word of a follower that cannot speak for its predecessor');
    assert.deepEqual(m.c.readiness.heldBy(), ['scvm-3']);
    assert.deepEqual(m.c.readiness.heldBy('scvm-3'), [], 'its own logins are not held by it');
  });

  it('with mutant master-unfenced-restart-unflagged on, it is not told (the fix\'s exact revert)', async () => {
    setSimulationMutants(['master-unfenced-restart-unflagged']);
    const m = master(['scvm-3']);
    assert.equal((await m.introduce('scvm-3')).granted.predecessorUnproven, false);
  });
});

describe('a login whose requester\'s SCVM the fence agent killed while it waited', () => {
  afterEach(() => setSimulationMutants([]));

  /** The simulation's liveness phase found it (etcd and registry faults): the grant held the client in a dead session, and the next move fenced the SCVM again, killing the follower that had replaced it. */
  async function scenario() {
    const h = harness(undefined, (clock) => new FenceAgent({ argv: [], timeoutMs: 1000, clock, log: silentLogger(), run: async () => ({ ok: true, startedAt: clock.now(), ms: 0, detail: 'ok' }) }));
    const a = h.open('scvm-1');
    const b = h.open('scvm-2');
    await h.logins.login(a.id, '10.0.0.9');
    const t = track(h.logins.login(b.id, '10.0.0.9'));
    await flush();
    await h.clock.tickAsync(100);
    // A new leader's grace fences scvm-2 (it did not come back in time): b's follower is gone.
    assert.equal(await h.logins.fenceAgent!.fenceServers([{ serverId: 'scvm-2', hostId: '', storageIp: '', mgmtIp: '', fencing: 'FENCING_READY' }], 'grace', () => []), true);
    h.logins.onRevokeAck(a.id, a.revokes[0].revokeId);
    await flush();
    return { h, a, b, t };
  }

  it('is refused, and the client is not left held by the dead session', async () => {
    const { h, b, t } = await scenario();
    assert.equal(t.done, true);
    assert.match(t.error?.message ?? 'granted', /scvm-2 was fenced after session .* last renewed/);
    assert.notEqual(h.logins.owner('host:esx-9')?.sessionId, b.id);
    assert.equal(h.logins.ownerships().some(([, o]) => o.sessionId === b.id), false, 'nothing held by the fenced session');
  });

  it('mutant master-grants-to-fenced-session grants it (the bug this guards against)', async () => {
    setSimulationMutants(['master-grants-to-fenced-session']);
    const { h, b, t } = await scenario();
    assert.equal(t.error, undefined);
    assert.equal(h.logins.owner('host:esx-9')?.sessionId, b.id);
  });
});
