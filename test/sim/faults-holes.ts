import * as grpc from '@grpc/grpc-js';
import { connectedAt, cutFromMasters, leave, visitServedScvm, whenConnected, whenSo, type FaultKit, type FaultMenu } from './fault-kit';
import type { Recipe } from './recipes';
import type { SimHost, SimScvm, World } from './world';
import type { SimProcess } from './kernel';

/** No message lost, repeated, late or queued behind a burst: a needless fence is seen only when nothing was disturbed. */
const CALM_NETWORK = { dropRate: 0, dupRate: 0, lateReplyRate: 0, lateDuplicateRate: 0, burstChance: 0 };

/** Fault kinds this file adds (schedule.ts draws them like any other). */
export const HOLE_FAULT_KINDS: string[] = ['gate-kill-then-leave', 'hang-gate-kill-freeze', 'hang-then-fence-point', 'hang-isolate-failover', 'hang-gate-kill-failover', 'admit-across-condemnation', 'renumber-then-reuse', 'renewed-then-killed-at-hung-nfs', 'condemn-while-gate-sleeps', 'condemn-while-gate-sleeps-then-failover', 'follower-gate-die-fence-broken', 'follower-gate-die-then-return', 'revoke-into-broken-stream', 'fence-broken-then-failover-then-restart', 'limit-lowered-twice-while-gate-sleeps', 'follower-cut-past-lease', 'follower-gate-die-refused-then-cut', 'scvm-frozen-fenced-then-left', 'silent-holder-left-twice', 'successor-killed-with-expired-holder', 'renumber-while-holder-cut-then-reuse', 'agent-kill-in-grace'];

/**
 * What both agent-kill-in-grace recipes need: an embedded master (its restart
 * starts the grace), no NFS fence and the fence agent on, one strike at a
 * time, and nothing else disturbing, so the needless-fence check can see a
 * second kill.
 */
const AGENT_KILL_IN_GRACE: Pick<Recipe, 'world' | 'swarm'> = {
  world: { mode: 'embedded', fence: 'none', fenceAgent: true },
  swarm: { faultGapMs: [12000, 15000], lateTimerChance: 0, pauseAfterCheckChance: 0, nfsTailChance: 0, ...CALM_NETWORK },
};

export const HOLE_RECIPES: Recipe[] = [
  {
    // Issue 18 hole b: a gate dies while some of its calls sit in a slow NFS
    // server (the tail), its host reconnects to the new gate and soon leaves
    // (the old connection reset): the new gate releases the client, and
    // nothing but the follower's dirty hub keeps the master from granting it
    // elsewhere while the dead gate's calls still run.
    name: 'gate-dies-slow-nfs-then-host-leaves',
    reaches: ['follower-release-while-dirty'],
    kinds: ['gate-kill-then-leave'],
    world: { fence: 'none' },
    swarm: { nfsTailChance: 0.2, nfsTailMaxMs: 2500, depthMax: 8, thinkMaxMs: 300 },
  },
  {
    // A gate dies with calls at a hung NFS server (its follower sees the
    // layer leave with calls unknown), comes back, and its follower freezes
    // before the new gate gets a lease; a host it served moves on. Only a
    // fence run when the layer left covers the dead gate's calls: the frozen
    // follower never reaches its fence point while the master waits its
    // lease out.
    name: 'gate-dies-at-hung-nfs-then-follower-freezes',
    reaches: ['follower-lazy-fence-on-lost-layer'],
    kinds: ['hang-gate-kill-freeze'],
    world: { fence: 'reliable', fenceAgent: false },
    // No bursts: the follower hears of the gate's death before it freezes.
    swarm: { burstChance: 0 },
  },
  {
    // An NFS server hangs with calls queued; then either its gate freezes
    // and its follower is cut off from the master, or its follower freezes:
    // the one left running reaches its lease's fence point, and a host moves
    // on. A fence run there that fails must be tried again before the
    // master's wait-out ends.
    name: 'hang-then-fence-point-fails',
    reaches: ['fence-point-no-retry'],
    kinds: ['hang-then-fence-point'],
    // A fence that sometimes fails at once (exit 1), else works fast. Not
    // 'flaky': a fast failure then a slow run whose kill lands at 80-95% of
    // its timeout outlasts the master's wait-out even when retried (found
    // while writing this recipe; reported, not fixed here).
    world: { fence: 'fails-fast', fenceAgent: false },
    // Reaches in 24 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 2,
  },
  {
    // An NFS server hangs with calls queued; its follower (no fence) is cut
    // off from every master and the leader restarts: the new leader's grace
    // ends by time while that registered server, which cannot fence, never
    // came back; a host it served moves on.
    name: 'hang-isolate-then-failover',
    reaches: ['grace-ends-over-unfenced-server'],
    kinds: ['hang-isolate-failover'],
    world: { fence: 'none', fenceAgent: false },
  },
  {
    // A gate dies with calls at a hung NFS server nothing fences; the leader
    // is gone long enough for the followers to fence (forgetting their
    // clients), then restarts twice: the second time the follower resumes
    // the session it got since, its hub still dirty.
    name: 'gate-dies-at-hung-nfs-then-failover',
    reaches: ['follower-intro-hides-unaccounted'],
    kinds: ['hang-gate-kill-failover'],
    world: { fence: 'none', fenceAgent: false },
    // Each strike takes about 8 s: fewer, so they do not blur into one outage.
    swarm: { faultGapMs: [4000, 9000] },
  },
  {
    // A host reconnects to a gate whose Admit reply comes late (its status
    // overtaken by the stream); the gate then sleeps through a revoke, so
    // the master condemns the session and the follower fences while that
    // reply is still on its way; the host later moves on, its old
    // connection left open.
    name: 'late-admit-across-condemnation',
    reaches: ['gate-late-admit-unfences'],
    kinds: ['admit-across-condemnation'],
    world: { fence: 'reliable', fenceAgent: false },
    // Each strike takes about 4 s: fewer, so they do not undo each other.
    swarm: { faultGapMs: [3000, 7000] },
    // It reaches its bug in about 13 of 100 seeds: at the weight of the
    // others, one random schedule in 1,000, and a 5,000-schedule search
    // missed it in about 0.7% of runs.
    // Reaches in 6 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 5,
  },
  {
    // Issue 18 hole d: a host served remotely over its management address
    // is renumbered (its old address's grant ends) and reconnects from the
    // new one; a while later another host gets that old address and
    // connects from it, its own connection elsewhere left open.
    name: 'address-reused-by-another-host',
    reaches: ['follower-stale-address-admits'],
    kinds: ['renumber-then-reuse'],
    world: { fence: 'reliable', fenceAgent: false, lateMgmtRegistration: false },
    // Each strike takes about 8 s.
    swarm: { faultGapMs: [4000, 9000] },
  },
  {
    // The same, with the holder's follower cut off from the masters past its
    // lease as A is renumbered: the revoke of α's grant goes to a session
    // that dies, and the follower's next introduction claims A, admitted
    // from α, which B then uses (campaign seed 2082951979).
    name: 'address-reused-while-holder-cut',
    reaches: ['master-adopts-claim-of-moved-address'],
    kinds: ['renumber-while-holder-cut-then-reuse'],
    world: { fence: 'reliable', fenceAgent: false, lateMgmtRegistration: false },
    // Each strike takes about 12 s.
    swarm: { faultGapMs: [7000, 12000] },
    // Reaches in 16 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 2,
  },
  {
    // A gate's lease runs out while its follower sleeps: it stops, drains
    // and reports "not serving, nothing in flight". Its NFS server hangs;
    // the follower wakes and renews it, and the gate forwards a reconnected
    // host's calls to the hung server and dies before its next report; the
    // host moves on. Only a final report proves a leaving layer idle: the
    // periodic one was overtaken by the renewal.
    name: 'renewed-then-killed-at-hung-nfs',
    reaches: ['hub-trusts-idle-report'],
    kinds: ['renewed-then-killed-at-hung-nfs'],
    world: { fence: 'reliable', fenceAgent: false },
    // Each strike takes about 8 s.
    swarm: { faultGapMs: [4000, 9000] },
    // Reaches in 16 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 2,
  },
  {
    // An NFS server hangs with a host's calls queued, and its gate falls
    // asleep; another host there moves on, so its revoke goes unanswered
    // and the master condemns the session, then waits it out for the first
    // host, which moves on too. The follower opens a new session whose
    // renewals reach the gate when it wakes: the ended lease's fence point
    // must still fence the calls its fence stopped (seed 86850814).
    name: 'condemned-while-gate-sleeps',
    reaches: ['follower-ended-lease-fence-point-dropped'],
    kinds: ['condemn-while-gate-sleeps'],
    world: { fence: 'reliable', fenceAgent: false },
    // Each strike takes about 8 s.
    swarm: { faultGapMs: [4000, 9000] },
  },
  {
    // A gate falls asleep with a host admitted (that host quiet, so the
    // gate's last report shows nothing in flight for it); another host there moves on,
    // so its revoke goes unanswered and the master condemns the session; the
    // follower fences and opens a new session, then the leader dies and a
    // new one takes over; the first host moves on and logs in elsewhere, and
    // the gate wakes to the leases queued before the fence (seed 488438426).
    name: 'condemned-while-gate-sleeps-then-failover',
    // With the listing of fence-dropped clients off (its mask, MASKED_BY in
    // run.ts), it also reaches the ended lease's fence point: 8 of 60 seeds.
    reaches: ['follower-intro-omits-fence-dropped', 'follower-ended-lease-fence-point-dropped'],
    kinds: ['condemn-while-gate-sleeps-then-failover'],
    // Embedded: an elected successor takes longer than the leases the gate
    // was sent before the fence (it wakes to none that still serve).
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false },
    // Each strike takes about 5 s.
    swarm: { faultGapMs: [4000, 9000] },
    // At the weight of the others a search found the ended lease's fence
    // point after 1,900 schedules; at 3, after 404.
    // Reaches in 11 of 60 (the fence-dropped clients) and 8 of 60 (the ended lease's fence point) seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 4,
  },
  {
    // An NFS server hangs with a host's calls queued; the follower and the
    // gate die together (nfsha's processes crash, the NFS server lives on),
    // so no one is left to fence at the old lease's fence point, and the
    // fence command is broken for a while: the new follower's start fence
    // fails. The host moves on; the master must not complete the old
    // session's wait-out while the server reports that failure (seed
    // 352024172, where a flaky start fence failed once and nothing retried).
    name: 'follower-and-gate-die-fence-broken',
    reaches: ['master-waitout-ignores-later-fence-failure', 'follower-start-fence-failure-forgotten'],
    kinds: ['follower-gate-die-fence-broken'],
    world: { fence: 'reliable', fenceAgent: false },
    // Each strike takes about 8 s.
    swarm: { faultGapMs: [4000, 9000] },
    // Reaches in 36 of 60 seeds (the later failure), 7 of 60 (the start
    // fence's failure, with its masks) (2026-12-07): weighted so that weight × reach is about the same for every recipe, and no known bug waits on a rare draw.
    weight: 2,
  },
  {
    // The same without any fence: the new follower cannot fence at start,
    // so it must count what its predecessor's NFS layers left as unproven
    // (the master tells it so), or a host taken over at the same server
    // moves on once it acks, and a new leader ends its grace on its word.
    name: 'follower-and-gate-die-no-fence',
    reaches: ['master-unfenced-restart-unflagged'],
    kinds: ['follower-gate-die-then-return'],
    world: { fence: 'none', fenceAgent: false },
    swarm: { faultGapMs: [4000, 9000] },
    // Reaches in 13 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
  },
  {
    // An SCVM's fence command breaks and a gate dies, so the follower's
    // fence fails and the master records that server as unable to fence.
    // The follower process dies, the leader restarts (its grace reads that
    // record), and once the fence works again a new follower process starts
    // and fences at start. It no longer holds the grace past its time: every
    // other server's logins would wait for an operator (seed 1872905532).
    name: 'fence-broken-then-failover-then-restart',
    reaches: ['master-fenced-restart-still-unfenced'],
    kinds: ['fence-broken-then-failover-then-restart'],
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false },
    // Each strike takes about 6 s.
    swarm: { faultGapMs: [6000, 9000] },
  },
  {
    // Issue 18 hole g: a host leaves an SCVM while the master's messages to
    // its follower are stalled, so the login's revoke waits on the old
    // stream; that stream breaks and the follower resumes its session on a
    // new one at once. The revoke is lost with the old stream: only a copy
    // sent on the new one reaches the holder, else a healthy holder is
    // condemned (the condemnation check).
    name: 'revoke-into-broken-stream',
    reaches: ['master-revoke-lost-with-stream'],
    kinds: ['revoke-into-broken-stream'],
    // No latency bursts: the check then knows a message takes at most 2 ms.
    swarm: { burstChance: 0 },
  },
  {
    // Issue 18 hole c: a restarted master with a lower client limit leaves a
    // claim unadopted, so the follower stops serving that client locally
    // while its gate sleeps (the client's host idle, so the gate's last
    // report shows nothing in flight for it); the master restarts again
    // before the gate wakes. Only the follower's record that the client is
    // draining makes its next introduction claim it, so the new master's
    // grace does not end with the client granted elsewhere.
    name: 'limit-lowered-twice-while-gate-sleeps',
    reaches: ['follower-replaced-not-draining'],
    kinds: ['limit-lowered-twice-while-gate-sleeps'],
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false, maxClientsPerSession: 2, limitAfterRestart: 1 },
    swarm: { faultGapMs: [5000, 9000] },
  },
  {
    // Planned gate restarts while many requests arrive a second time, late
    // (a copy held up on the way, or a retry whose original was only slow):
    // an older report of the stopping gate, arriving after its final one,
    // must not undo it, or a clean stop counts as a layer that left with
    // calls unknown and its NFS server is fenced for nothing.
    name: 'graceful-restart-under-late-copies',
    reaches: ['hub-takes-stale-report'],
    kinds: ['gate-graceful-restart'],
    swarm: { lateDuplicateRate: 0.8, lateDuplicateMaxMs: 1000, faultGapMs: [800, 1600] },
    // Reaches in 19 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 2,
  },
  {
    // A follower is cut off from the masters for longer than its session
    // lasts, with its own host served there: it fences and comes back in a
    // new session, and the host logs in again at the same server. The old,
    // silent session of the requester's own server is no holder to fence,
    // wait out or hold for an operator: the client stays on that NFS server
    // (a liveness bug, found by the liveness phase).
    name: 'follower-cut-past-lease',
    reaches: ['master-fences-own-requester'],
    kinds: ['follower-cut-past-lease'],
    world: { fence: 'none', fenceAgent: false },
    swarm: { faultGapMs: [6000, 9000] },
  },
  {
    // A gate dies while its NFS server is slow, with a host's calls there;
    // the host then moves on. The fence (run at once for the lost layer, and
    // for the revoke) often fails at once: the revoke is held (the master
    // holds the client there), and must end once the calls drain or a later
    // run works, not wait for an operator. Found on the fixed code by the
    // liveness phase: the host came home to the server that held it and was
    // handed back the grant revoked there, which its follower refuses.
    name: 'gate-dies-slow-nfs-fence-fails',
    reaches: ['master-regrants-revoked-token', 'follower-held-revoke-never-refenced'],
    kinds: ['gate-kill-then-leave'],
    world: { fence: 'fails-fast', fenceAgent: false },
    swarm: { nfsTailChance: 0.2, nfsTailMaxMs: 2500, depthMax: 8, thinkMaxMs: 300 },
    // Reaches in 13 of 60 (the revoked token handed back) seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
  },
  {
    // An NFS server hangs with calls queued and its follower is cut off (or
    // frozen) while a host it serves moves on, on a machine whose clock runs
    // slow by the drift bound, and its fence works but slowly (near the end
    // of its timeout). The fence must still land before the master's
    // wait-out ends: the budget the master gives counts the drift.
    name: 'slow-fence-at-drift-bound',
    reaches: ['fence-budget-counts-drift'],
    kinds: ['hang-then-isolate'],
    world: { fence: 'slow', fenceAgent: false },
    swarm: { driftAtEdge: 1, masterDrift: false, faultGapMs: [3000, 6000] },
    // 21 of 60 seeds reach its bug; at weight 1 searches took 111 to 1,140
    // random schedules, the second slowest in the table.
    weight: 2,
  },
  {
    // The same, but the new follower's first introduction (refused while
    // its dead predecessor's session lives) is all the master hears of the
    // failed start fence: the follower is then cut off until that session's
    // wait-out is over (recipe seed 136, which needed the follower to stay
    // refused that long by chance).
    name: 'follower-and-gate-die-refused-then-cut',
    reaches: ['master-ignores-refused-introduction-fencing'],
    kinds: ['follower-gate-die-refused-then-cut'],
    // One master: with candidates, the refused introduction may go to one
    // that is not the leader, and then no master heard the failure (a double
    // fault only the fence agent covers).
    world: { mode: 'embedded', fence: 'reliable', fenceAgent: false },
    swarm: { faultGapMs: [4000, 9000] },
  },
  {
    // A whole SCVM freezes and a host it serves moves on: the fence agent
    // kills the SCVM, which comes back up with a new follower process that
    // has no fence of its own. The agent's kill covered every earlier
    // session of that server, so the new follower's revokes must not be
    // held as if its predecessor's NFS layers might still run calls: a host
    // that logs in there and leaves again would get that healthy SCVM
    // condemned and killed again, and again (swarm seed 1872910914; the
    // needless-fence check in World.fenceScvm). Nothing else strikes for a
    // while, nor do buggify's stalls, so that check can see it.
    name: 'scvm-frozen-fenced-then-left',
    reaches: ['master-fenced-predecessor-unproven'],
    kinds: ['scvm-frozen-fenced-then-left'],
    world: { fence: 'none', fenceAgent: true },
    swarm: { faultGapMs: [12000, 16000], lateTimerChance: 0, pauseAfterCheckChance: 0, nfsTailChance: 0, ...CALM_NETWORK },
  },
  {
    // A follower freezes while two hosts are served there, and both move on
    // at once: two logins leave one silent holder, and each needs it fenced.
    // The SCVM comes back up at once after the fence agent's kill (an HA
    // restart): a second run for the same holder, not waiting for the first
    // to end and looking again, kills the healthy SCVM again (the
    // needless-fence check in World.fenceScvm).
    name: 'silent-holder-left-twice',
    reaches: ['master-fence-runs-overlap'],
    kinds: ['silent-holder-left-twice'],
    world: { fence: 'none', fenceAgent: true },
    swarm: { faultGapMs: [6000, 9000], lateTimerChance: 0, pauseAfterCheckChance: 0, nfsTailChance: 0, ...CALM_NETWORK },
  },
  {
    // A follower dies with two hosts served there; it comes back as a new
    // process whose session opens once the old one expired, and its own host
    // (its agent stalled) logs in there again, while the other host, stalled,
    // is still held by the old session. That host then moves on: the fence agent kills the
    // SCVM for the old session, and the new session, opened before the run
    // and talking during it, dies with it. The SCVM comes back up at once,
    // and its own host moves on too, away from the dead new session: that
    // run already killed it, so a second run kills the healthy SCVM again
    // (the needless-fence check in World.fenceScvm).
    name: 'successor-killed-with-expired-holder',
    reaches: ['master-fence-run-proves-only-silent-sessions'],
    kinds: ['successor-killed-with-expired-holder'],
    world: { fence: 'none', fenceAgent: true },
    // A fence agent that takes its time (a power-off through IPMI): the new
    // session's keepalives (every 500 ms) go on during the run.
    swarm: { faultGapMs: [9000, 12000], lateTimerChance: 0, pauseAfterCheckChance: 0, nfsTailChance: 0, ...CALM_NETWORK, fenceAgentMs: [600, 1500] },
  },
  {
    // An NFS server hangs with a host's calls queued, and its follower is
    // cut off from the masters past its lease (it forgets the grant; the
    // calls stay queued), while the leader restarts: every other follower
    // resumes its session at once, so the new leader's grace awaits that
    // server alone. Back in, the follower lists the host in flight: the
    // revoke cannot drain and there is no fence, so the master condemns the
    // session and its fence agent kills the SCVM inside the grace. The SCVM
    // comes back up (an HA restart) while the grace still runs: its new
    // follower speaks for all of it (the agent killed every earlier
    // session), and awaiting it anyway ended the grace by time with a second
    // kill of the healthy SCVM (the needless-fence check in World.fenceScvm).
    name: 'agent-kill-in-grace',
    reaches: ['master-grace-awaits-agent-fenced-server'],
    kinds: ['agent-kill-in-grace'],
    // It reaches its bug in 15 of 60 seeds.
    // Reaches in 15 of 60 seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 3,
    ...AGENT_KILL_IN_GRACE,
  },
  {
    // The same, with a fence agent that takes its time (a power-off through
    // IPMI): the SCVM comes back up as the grace ends, before its new
    // follower introduced itself, and the grace's own run kills it again
    // (campaign seeds 398880001, 398903709, 398911437).
    name: 'agent-kill-in-grace-slow-agent',
    reaches: ['master-grace-refences-agent-fenced-server', 'master-grace-fence-ignores-run-under-way'],
    kinds: ['agent-kill-in-grace'],
    ...AGENT_KILL_IN_GRACE,
    swarm: { ...AGENT_KILL_IN_GRACE.swarm, fenceAgentMs: [700, 1500] },
    // It reaches the first in 5 of 60 seeds, the second in 19 of 60.
    // Reaches in 5 of 60 (the re-fence) and 19 of 60 (the run under way) seeds (2026-12-07): weighted so that weight × reach is
    // about the same for every recipe, and no known bug waits on a rare draw.
    weight: 5,
  },
];

/** Fresh management addresses for renumbered hosts, per world. */
const nextAddress = new WeakMap<World, number>();
function freshMgmtIp(w: World): string {
  const n = nextAddress.get(w) ?? 200;
  nextAddress.set(w, n + 1);
  return `10.20.0.${n}`;
}

/** A host with calls out on an accepted connection, picked at random, and the SCVM whose gate it is at. */
function busyHost(f: FaultKit): { h: SimHost; s: SimScvm } | undefined {
  const busy = f.w.hosts.filter((x) => x.current?.conn && !x.current.closed && x.current.inFlight > 0);
  if (!busy.length) return undefined;
  const h = f.r.pick(busy);
  return { h, s: f.w.scvms[h.current!.gate - 1] };
}

/** A busy host (busyHost) whose SCVM's NFS server then hangs for `minMs`–`maxMs`, its calls queued there. */
function hangBusyServer(f: FaultKit, minMs: number, maxMs: number): { h: SimHost; s: SimScvm } | undefined {
  const busy = busyHost(f);
  if (!busy) return undefined;
  const nfs = busy.s.nfs.proc;
  f.pause(nfs);
  f.k.after(f.r.between(minMs, maxMs), () => f.k.resume(nfs));
  return busy;
}

/**
 * An NFS server hangs with a host's calls queued; the follower and the gate
 * die together (nfsha's processes crash, the NFS server lives on), so no
 * one is left to fence at the old lease's fence point, and the fence command
 * is broken for a while: the new follower's start fence fails (or there is
 * none). The host moves on; with `thenReturn`, once the old session has
 * expired and the new follower is in, it comes back to that server (the new
 * session takes the client over from the old one: the same NFS server) and
 * moves on again, while the dead gate's calls may still be queued.
 */
function followerAndGateDie(f: FaultKit, thenReturn: boolean, cutAfterRefusal = false): string | undefined {
  const { w, k, r } = f;
  const busy = hangBusyServer(f, 7000, 10000);
  if (!busy) return undefined;
  const { h, s } = busy;
  const dieAt = r.between(20, 200);
  s.fenceBrokenUntil = k.now + dieAt + r.between(4000, 7000);
  const back = dieAt + r.between(100, 600);
  k.after(dieAt, () => {
    if (w.healedAt !== undefined) return;
    s.killFollower();
    s.killGate();
    k.after(back - dieAt, () => {
      s.revive();
      // The new follower's first introduction (its failed start fence in
      // it) is refused while the old session lives; then it is cut off
      // until the old session's wait-out is over: that refused introduction
      // is all the master hears of the failure.
      // (World.mayCut keeps a follower whose fence failed from being cut
      // off, since the master could not hear of it: here it has heard.)
      const fp = s.followerProc;
      if (cutAfterRefusal && fp) {
        // Cut once the master has refused an introduction sent after the
        // start fence failed: the second refusal after the failure answers
        // one sent after the first refusal, so after the failure. (Watched
        // on the follower's side: what the master did with it is what the
        // search is for.)
        const start = k.now - back;
        const who = `follower-${s.i}`;
        let failed = false;
        let refusals = 0;
        const cut = () => {
          if (w.healedAt !== undefined || fp.dead) return;
          // Past World.mayCut (above), until the old session's wait-out is over.
          cutFromMasters(f, fp, start + dieAt + r.between(3800, 4600) - k.now, (a, b) => w.net.partition(a, b));
        };
        w.logWatchers.push((from, ev, fields) => {
          if (fp.dead || w.healedAt !== undefined || k.now > start + dieAt + 3000) return true;
          if (from !== who) return false;
          if (ev === 'follower.fencing') failed = fields.fencing === 'FENCING_FAILED';
          else if (ev === 'session.opened' || ev === 'session.resumed') return true;
          else if (failed && ev === 'session.stream.closed' && fields.code === grpc.status.ALREADY_EXISTS && ++refusals === 2) {
            k.after(r.between(0, 30), cut);
            return true;
          }
          return false;
        });
      }
    });
  });
  // With the cut, the host leaves only once the new follower's introduction
  // was refused (a login elsewhere condemns the old session, and a new one
  // would then be let in).
  const leaveAt = cutAfterRefusal ? back + r.between(350, 800) : r.between(300, 1500);
  k.after(leaveAt, () => { if (w.healedAt === undefined && h.route.target === s.i) leave(f, h); });
  if (thenReturn) {
    k.after(back + r.between(3000, 5000), () => {
      if (w.healedAt !== undefined || h.route.target === s.i) return;
      h.move({ target: s.i, via: s.i === h.i ? 'local' : r.pick(['storage', 'mgmt'] as const) });
      whenConnected(f, h, s, 0, 1500, () => k.after(r.between(0, 300), () => { if (w.healedAt === undefined) leave(f, h); }));
    });
  }
  return `scvm-${s.i}, ${h.hostId}`;
}

/**
 * visitServedScvm, then `then` with the SCVM's own host connected there too
 * and its live follower process (given up otherwise, or after the heal).
 */
function visitScvmWithItsHost(f: FaultKit, then: (s: SimScvm, x: SimHost, own: SimHost, fp: SimProcess) => void): ReturnType<typeof visitServedScvm> {
  const { w } = f;
  return visitServedScvm(f, (s, x) => {
    const own = w.hosts.find((h) => h.i === s.i && connectedAt(h, s.i));
    const fp = s.followerProc;
    if (own && fp && !fp.dead && w.healedAt === undefined) then(s, x, own, fp);
  });
}

export function holeFaults(f: FaultKit): FaultMenu {
  const { w, k, r } = f;
  /**
   * A's own NFS server hangs, so its agent routes it to another SCVM s;
   * there it uses its management address α. A is renumbered (α is gone:
   * its grant at s ends) and reconnects from the new address. Then B,
   * served elsewhere, gets α and moves to s over its management path, its
   * old connection left open.
   */
  const renumberThenReuse = (cutHolder: boolean): string | undefined => {
    const a = r.pick(w.hosts);
    const home = w.scvms[a.i - 1];
    const nfs = home.nfs.proc;
    f.pause(nfs);
    k.after(r.between(10000, 14000), () => k.resume(nfs));
    const deadline = k.now + 6000;
    const poll = () => {
      if (w.healedAt !== undefined || k.now > deadline) return;
      if (a.route.via === 'local' || !a.current?.conn || a.current.closed) return void k.after(20, poll);
      const s = w.scvms[a.route.target - 1];
      if (a.route.via !== 'mgmt') {
        a.move({ target: s.i, via: 'mgmt' });
        return void k.after(20, poll);
      }
      const alpha = a.mgmtIp;
      const strike = () => {
        if (w.healedAt !== undefined || a.route.target !== s.i) return;
        const fresh = freshMgmtIp(w);
        // The cut variant: s's follower is cut off from the masters past
        // its lease as A is renumbered, so the revoke of α's grant goes to
        // a session that dies, and the follower's next session claims A
        // again, admitted from α (campaign seed 2082951979).
        const fp = s.followerProc;
        // Long enough for the follower to give its stream up (2 s without
        // an ack) and the master to condemn the session over the revoke;
        // short enough that the follower's lease (3 s) still holds A.
        const cutMs = cutHolder ? r.between(2100, 2800) : 0;
        if (cutHolder) {
          if (!fp || fp.dead) return;
          cutFromMasters(f, fp, cutMs);
        }
        a.renumber(fresh);
        // Identity is the source address: until the registry learns A's
        // new address (its agent registers again), α is A's to the master
        // too, and a host using it is A to every part of the system. An
        // operator reuses an address once its old owner moved off it in
        // the registry (the new owner's agent is refused it before that);
        // the strike does the same (seed 1454780760 gave α away before
        // A's agent had registered again).
        const learned = () => w.masters.find((m) => m.isLeader())?.runtime?.core()?.registry.list()
          .some((h) => h.id === a.hostId && h.mgmtIp === fresh) === true;
        const renumberedAt = k.now;
        /** What is left of the cut (none in the plain variant). */
        const cutLeft = () => Math.max(0, cutMs - (k.now - renumberedAt));
        // A fence may have restarted A's hung NFS server by now (a revoke
        // there did not drain), and A would soon go home, its connection at
        // s closed and α forgotten there. In the cut variant A's agent
        // (restarted with the new address) hangs once registered, past the
        // cut, so A stays at s with α admitted there until B comes.
        const holdAtS = () => {
          const ap = a.agentProc;
          if (!cutHolder || !ap || ap.dead || ap.paused) return;
          f.pause(ap);
          k.after(cutLeft() + r.between(2500, 3500), () => k.resume(ap));
        };
        // In the cut variant B comes once the follower is back (its new
        // session then admits α as A).
        whenSo(f, learned, k.now + 6000, 50, () => (holdAtS(), k.after(cutLeft() + r.between(600, 1200), () => {
          if (w.healedAt !== undefined) return;
          const bs = w.hosts.filter((x) => x !== a && x.route.target !== s.i && x.current?.conn && !x.current.closed);
          if (!bs.length) return;
          // No two hosts ever hold one address (another strike may have reused it).
          if (w.hosts.some((x) => x.mgmtIp === alpha)) return;
          const b = r.pick(bs);
          b.renumber(alpha);
          k.after(r.between(600, 1200), () => {
            if (w.healedAt !== undefined || b.route.target === s.i) return;
            b.move({ target: s.i, via: 'mgmt' }, true);
          });
        })));
      };
      // The cut variant strikes once the follower admits A from α.
      if (!cutHolder) k.after(r.between(100, 400), strike);
      else whenSo(f, () => s.follower?.admissions.clientOf(alpha) === `host:${a.hostId}`, k.now + 3000, 20, strike);
    };
    k.after(20, poll);
    return `${a.hostId} (scvm-${home.i} hangs)`;
  };
  return [
    ['gate-kill-then-leave', () => {
      // A gate process dies while a host it serves has calls out (some may
      // sit in the NFS server's slow tail), and comes back; the host
      // reconnects there, then moves on with its old connection reset.
      const busy = busyHost(f);
      if (!busy) return undefined;
      const { h, s } = busy;
      s.killGate();
      const back = r.between(30, 250);
      k.after(back, () => s.revive());
      // Once it is connected there again (as an NFS client reconnects at
      // once), a moment later it moves on.
      whenConnected(f, h, s, back, 2500, () => k.after(r.between(0, 100), () => leave(f, h)));
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['revoke-into-broken-stream', () => {
      const connected = w.hosts.filter((x) => x.current?.conn && !x.current.closed);
      if (!connected.length) return undefined;
      const h = r.pick(connected);
      const s = w.scvms[h.current!.gate - 1];
      const m = f.leader();
      const fp = s.followerProc, mp = m.proc;
      if (!fp || !mp || !w.mayCut(fp, mp)) return undefined;
      // The master's messages to the follower stall (its keepalives still go out)...
      w.net.partitionOneWay(mp, fp);
      leave(f, h);
      // ...then the connection breaks, taking what it held with it; the
      // follower reconnects and resumes its session on a new stream.
      k.after(r.between(30, 300), () => {
        w.net.reset(fp, m.address);
        w.net.healOneWay(mp, fp);
      });
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['follower-gate-die-fence-broken', () => followerAndGateDie(f, false)],
    ['follower-gate-die-then-return', () => followerAndGateDie(f, true)],
    ['follower-gate-die-refused-then-cut', () => followerAndGateDie(f, false, true)],
    ['silent-holder-left-twice', () => {
      if (!w.cfg.fenceAgent) return undefined;
      const visit = visitScvmWithItsHost(f, (s, x, own, fp) => {
        f.pause(fp);
        k.after(r.between(6000, 8000), () => k.resume(fp));
        leave(f, x);
        leave(f, own);
        // Back up at once after the agent's kill.
        whenSo(f, () => fp.dead, k.now + 6000, 1, () => k.after(r.between(0, 20), () => s.revive()));
      });
      return visit && `scvm-${visit.s.i}, ${visit.x.hostId}`;
    }],
    ['successor-killed-with-expired-holder', () => {
      if (!w.cfg.fenceAgent) return undefined;
      const visit = visitScvmWithItsHost(f, (s, x, own) => {
        // x's NFS client stalls (it logs in nowhere) while its follower dies,
        // and the own host's agent too (so the host stays routed there).
        const agent = own.agentProc;
        if (!agent || agent.dead) return;
        k.pause(x.proc);
        k.pause(agent);
        // Whatever happens below, neither stays stalled for good.
        k.after(9000, () => { k.resume(x.proc); k.resume(agent); });
        const before = own.current;
        s.killFollower();
        k.after(r.between(100, 600), () => s.revive());
        const from = k.now;
        // Once the new follower's session is open and its own host logged in
        // there again, x moves on, away from the old session.
        w.logWatchers.push((who, ev, fields) => {
          if (w.healedAt !== undefined || k.now > from + 8000) return true;
          if (!who.startsWith('master-') || ev !== 'session.opened' || fields.server !== `scvm-${s.i}`) return false;
          const successor = s.followerProc;
          whenSo(f, () => connectedAt(own, s.i) && own.current !== before, k.now + 3000, 5, () => k.after(r.between(0, 50), () => {
            k.resume(x.proc);
            k.resume(agent);
            leave(f, x);
          }));
          // Once the agent killed the SCVM, back up at once; then its own host moves on.
          whenSo(f, () => successor?.dead === true, k.now + 5000, 1, () => k.after(r.between(0, 20), () => {
            s.revive();
            k.after(r.between(50, 400), () => { if (w.healedAt === undefined && own.route.target === s.i) leave(f, own); });
          }));
          return true;
        });
      });
      return visit && `scvm-${visit.s.i}, ${visit.x.hostId}`;
    }],
    ['scvm-frozen-fenced-then-left', () => {
      if (!w.cfg.fenceAgent) return undefined;
      const connected = w.hosts.filter((x) => x.current?.conn && !x.current.closed);
      if (!connected.length) return undefined;
      const h = r.pick(connected);
      const s = w.scvms[h.current!.gate - 1];
      const fp = s.followerProc, gp = s.gate?.proc;
      if (!fp || !gp || fp.dead || gp.dead) return undefined;
      // The whole SCVM freezes (only the fence agent covers that).
      for (const p of [fp, gp, s.nfs.proc]) f.pause(p);
      const thaw = r.between(7000, 10000);
      for (const p of [fp, gp, s.nfs.proc]) k.after(thaw, () => k.resume(p));
      k.after(r.between(0, 300), () => { if (w.healedAt === undefined && h.route.target === s.i) leave(f, h); });
      // Once the agent has killed it and it is back up, a host served there
      // (its own, come home) moves on a moment after it logged in.
      whenSo(f, () => s.followerProc !== fp && !!s.followerProc && !s.followerProc.dead && w.hosts.some((x) => connectedAt(x, s.i)), k.now + thaw, 20, () => {
        const x = r.pick(w.hosts.filter((y) => connectedAt(y, s.i)));
        k.after(r.between(0, 300), () => { if (w.healedAt === undefined && connectedAt(x, s.i)) leave(f, x); });
      });
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['hang-gate-kill-freeze', () => {
      const busy = hangBusyServer(f, 7000, 10000);
      if (!busy) return undefined;
      const { h, s } = busy;
      const killAt = r.between(20, 200);
      k.after(killAt, () => {
        s.killGate();
        k.after(r.between(30, 250), () => {
          s.revive();
          // The follower freezes as the new gate starts (before it hears it).
          const fp = s.followerProc;
          if (!fp) return;
          f.pause(fp);
          k.after(r.between(4500, 7000), () => k.resume(fp));
          k.after(r.between(0, 300), () => { if (w.healedAt === undefined) leave(f, h); });
        });
      });
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['hang-then-fence-point', () => {
      const busy = busyHost(f);
      if (!busy) return undefined;
      const { h, s } = busy;
      const m = f.leader();
      const fp = s.followerProc, gp = s.gate?.proc, mp = m.proc;
      if (!fp || !gp || !mp) return undefined;
      const nfs = s.nfs.proc;
      f.pause(nfs);
      const hang = r.between(6000, 9000);
      k.after(hang, () => k.resume(nfs));
      const gateFreezes = r.chance(0.5);
      k.after(r.between(0, 200), () => {
        if (gateFreezes) {
          // The gate sleeps past the hang; its follower alone reaches the fence point.
          f.pause(gp);
          k.after(hang + r.between(200, 1500), () => k.resume(gp));
          f.cut(fp, mp);
          k.after(r.between(4500, 6500), () => w.net.heal(fp, mp));
        } else {
          // The follower sleeps; its gate alone reaches the fence point.
          f.pause(fp);
          k.after(r.between(4500, 7000), () => k.resume(fp));
        }
      });
      k.after(r.between(300, 1000), () => { if (w.healedAt === undefined) leave(f, h); });
      return `scvm-${s.i} (${gateFreezes ? 'gate frozen, follower cut off' : 'follower frozen'}), ${h.hostId}`;
    }],
    ['hang-isolate-failover', () => {
      const busy = busyHost(f);
      if (!busy) return undefined;
      const { h, s } = busy;
      const fp = s.followerProc;
      const m = f.leader();
      if (!fp || !m.proc) return undefined;
      const nfs = s.nfs.proc;
      f.pause(nfs);
      k.after(r.between(8000, 12000), () => k.resume(nfs));
      // Cut off from every master (a new leader must not hear it either).
      const masters = w.masters.map((x) => x.proc).filter((p): p is NonNullable<typeof p> => !!p);
      for (const mp of masters) f.cut(fp, mp);
      k.after(r.between(6000, 10000), () => { for (const mp of masters) w.net.heal(fp, mp); });
      const down = r.between(100, 1500);
      k.after(r.between(0, 800), () => {
        if (w.healedAt !== undefined) return;
        m.kill();
        k.after(down, () => m.restart());
      });
      k.after(r.between(1000, 5000), () => { if (w.healedAt === undefined) leave(f, h); });
      return `scvm-${s.i}, m${m.k}, ${h.hostId}`;
    }],
    ['hang-gate-kill-failover', () => {
      // An NFS server hangs; every master goes down (the one, or all three
      // candidates) long enough for every lease to run out, so the
      // followers fence and forget their clients; then a gate dies with
      // calls at the hung server nothing can fence. The masters come back
      // (new sessions), then the leader restarts again: the followers now
      // resume a session, and a host that was there moves on.
      const busy = busyHost(f);
      if (!busy) return undefined;
      const { h, s } = busy;
      const nfs = s.nfs.proc;
      f.pause(nfs);
      k.after(r.between(9000, 13000), () => k.resume(nfs));
      const first = r.between(100, 400);
      const down = r.between(3800, 4800);
      k.after(first, () => {
        if (w.healedAt !== undefined) return;
        for (const m of w.masters) {
          m.kill();
          k.after(down + r.between(0, 300), () => m.restart());
        }
      });
      k.after(first + r.between(3500, 3700), () => {
        if (w.healedAt !== undefined) return;
        s.killGate();
        k.after(r.between(30, 600), () => s.revive());
      });
      const second = first + down + r.between(500, 2000);
      k.after(second, () => {
        if (w.healedAt !== undefined) return;
        const m2 = f.leader();
        m2.kill();
        k.after(r.between(100, 1000), () => m2.restart());
      });
      k.after(second + r.between(0, 1000), () => { if (w.healedAt === undefined && h.route.target === s.i) leave(f, h); });
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['admit-across-condemnation', () => {
      // g, an SCVM's own host, reconnects there (an Admit whose reply comes
      // late), and the gate falls asleep just after asking; x, a host that
      // came over for a moment, moves on meanwhile, so its revoke goes
      // unanswered: the master condemns the session and the follower fences
      // while g's Admit reply is still on its way. The gate wakes, its NFS
      // server hangs, and g moves on, its old connection left open.
      const g = w.hosts.find((y) => y.route.target === y.i && y.current?.conn && !y.current.closed && r.chance(0.5))
        ?? w.hosts.find((y) => y.route.target === y.i && y.current?.conn && !y.current.closed);
      if (!g) return undefined;
      const s = w.scvms[g.i - 1];
      const others = w.hosts.filter((y) => y !== g);
      if (!s.gate || !others.length) return undefined;
      const x = r.pick(others);
      // Just after the agents' route decisions (every 500 ms), so x stays a moment.
      k.after(500 - (k.now % 500) + r.between(2, 10), () => {
        if (w.healedAt !== undefined) return;
        x.move({ target: s.i, via: r.pick(['storage', 'mgmt'] as const) });
        whenConnected(f, x, s, 0, 450, () => {
          const old = g.current;
          const gp = s.gate?.proc;
          if (!old || old.closed || g.route.target !== s.i || !gp || gp.dead) return;
          // g's connection is reset and it reconnects at once; its Admit's
          // reply will come late (its status overtaken by the stream).
          w.net.lateNext.set(`${gp.name} Admit`, r.between(2000, 3500));
          g.lost(old);
          g.connect();
          k.after(r.between(2.5, 8), () => {
            if (w.healedAt !== undefined) return;
            f.pause(gp);
            if (!gp.paused) return;
            leave(f, x);
            k.after(r.between(2000, 2600), () => {
              k.resume(gp);
              const nfs = s.nfs.proc;
              f.pause(nfs);
              k.after(r.between(6000, 9000), () => k.resume(nfs));
              k.after(r.between(200, 800), () => {
                if (w.healedAt !== undefined || g.route.target !== s.i) return;
                const to = r.pick(w.scvms.filter((y) => y.i !== s.i));
                g.move({ target: to.i, via: r.pick(['storage', 'mgmt'] as const) }, true);
              });
            });
          });
        });
      });
      return `scvm-${s.i}, ${g.hostId} reconnects, ${x.hostId} comes and goes`;
    }],
    ['agent-kill-in-grace', () => {
      const busy = busyHost(f);
      const m = f.leader();
      if (!busy || !m.proc || m.proc.dead || w.healedAt !== undefined) return undefined;
      const { h, s } = busy;
      const fp = s.followerProc;
      if (!fp || fp.dead) return undefined;
      const nfs = s.nfs.proc;
      f.pause(nfs);
      k.after(r.between(9000, 12000), () => k.resume(nfs));
      // Past the follower's lease (3 s), so it opens a new session; the cut
      // is by machine, so it holds against the restarted leader too.
      const cutMs = r.between(3200, 3900);
      cutFromMasters(f, fp, cutMs);
      // Once the follower's new session is told to revoke the host (its
      // calls in flight), the gate dies with them queued: its layer left
      // before acking, so the follower cannot confirm the revoke.
      const who = `follower-${s.i}`;
      const until = k.now + cutMs + 2000;
      w.logWatchers.push((from, ev) => {
        if (fp.dead || w.healedAt !== undefined || k.now > until) return true;
        if (from !== who || ev !== 'revoke.received') return false;
        k.after(r.between(5, 200), () => {
          if (w.healedAt !== undefined) return;
          s.killGate();
          k.after(r.between(30, 300), () => s.revive());
        });
        return true;
      });
      // The leader restarts late in the cut: the others' leases still hold,
      // and the cut follower comes back early in the grace.
      const downAt = cutMs - r.between(300, 1500);
      k.after(downAt, () => {
        if (w.healedAt !== undefined || !m.proc || m.proc.dead) return;
        m.kill();
        k.after(r.between(50, 250), () => m.restart());
      });
      return `scvm-${s.i} (${h.hostId}'s calls hung there) cut off ${cutMs.toFixed(0)} ms, m${m.k} restarts`;
    }],
    ['renumber-then-reuse', () => renumberThenReuse(false)],
    ['renumber-while-holder-cut-then-reuse', () => renumberThenReuse(true)],
    ['renewed-then-killed-at-hung-nfs', () => {
      const busy = busyHost(f);
      if (!busy) return undefined;
      const { h, s } = busy;
      const fp = s.followerProc;
      if (!fp || !s.gate) return undefined;
      // Long enough for the gate's stop point (lease − 1 s), short enough
      // that the master still holds the follower's session.
      const sleep = r.between(1800, 2900);
      f.pause(fp);
      if (!fp.paused) return undefined;
      const nfs = s.nfs.proc;
      k.after(sleep - r.between(0, 150), () => {
        f.pause(nfs);
        k.after(r.between(6000, 9000), () => k.resume(nfs));
      });
      // The gate dies within moments of forwarding again: before its next
      // report (every 250 ms), so its last one still says idle.
      const killSoon = () => k.after(r.between(0, 30), () => {
        if (w.healedAt !== undefined) return;
        s.killGate();
        k.after(r.between(30, 250), () => s.revive());
        k.after(r.between(0, 400), () => { if (w.healedAt === undefined && h.route.target === s.i) leave(f, h); });
      });
      k.after(sleep, () => {
        k.resume(fp);
        const gate = s.gate;
        const until = k.now + 1000;
        const poll = () => {
          if (w.healedAt !== undefined || k.now > until || s.gate !== gate || !gate) return;
          if (!gate.core.serving()) return void k.after(1, poll);
          // Renewed: the host, refused while the gate stood, reconnects now
          // (its retry timer due), and its calls go to the hung server.
          if (h.route.target === s.i && (!h.current || h.current.closed)) h.connect();
          whenConnected(f, h, s, 0, 500, killSoon);
        };
        k.after(1, poll);
      });
      return `scvm-${s.i}, ${h.hostId}`;
    }],
    ['fence-broken-then-failover-then-restart', () => {
      const s = f.scvm();
      if (w.healedAt !== undefined || !s.gate || s.gate.proc.dead || !s.followerProc || s.followerProc.dead) return undefined;
      const broken = r.between(1600, 2500);
      s.fenceBrokenUntil = k.now + broken;
      // The gate dies: its follower fences the NFS server, which fails, and
      // says so in its next keepalive (the master records it).
      s.killGate();
      k.after(r.between(100, 300), () => s.revive());
      const dies = r.between(1000, 1300);
      k.after(dies, () => { if (w.healedAt === undefined) s.killFollower(); });
      const m = f.leader();
      k.after(dies + r.between(50, 200), () => {
        if (!m.proc || m.proc.dead) return;
        m.kill();
        k.after(r.between(100, 300), () => m.restart());
      });
      // A new follower process once the fence works again: it fences at start.
      k.after(broken + r.between(100, 400), () => s.revive());
      return `scvm-${s.i}'s fence broken ${broken.toFixed(0)} ms, its gate and follower die, m${m.k} restarts`;
    }],
    ['condemn-while-gate-sleeps-then-failover', () => {
      // The revoke of x waits for the sleeping gate until the master's drain
      // limit (about 1.5-1.9 s) condemns the session; the follower fences and
      // opens a new one at once. The leader then dies, and h logs in
      // elsewhere once the new leader's grace ends (on the followers' word).
      // The gate wakes while the leases it was sent before the fence still
      // serve, and reads them before the fence: the follower's introduction
      // must have listed h.
      const h = w.hosts.find((y) => connectedAt(y, y.route.target));
      if (!h) return undefined;
      const s = w.scvms[h.current!.gate - 1];
      const others = w.hosts.filter((y) => y !== h);
      if (!s.gate || !others.length) return undefined;
      // x: a host s already serves besides h, else one moved there just
      // after the agents' route tick (every 500 ms), so that it is admitted
      // at s before its agent takes it home.
      const there = others.filter((y) => connectedAt(y, s.i));
      const x = there.length ? r.pick(there) : r.pick(others);
      const tick = there.length ? 0 : 500 - (k.now % 500) + 1;
      if (!there.length) k.after(tick, () => { if (w.healedAt === undefined && x.route.target !== s.i) x.move({ target: s.i, via: r.pick(['storage', 'mgmt'] as const) }); });
      whenConnected(f, x, s, tick, 450, () => {
        const gp = s.gate?.proc;
        if (!gp || gp.dead || h.route.target !== s.i || w.healedAt !== undefined) return;
        // h goes quiet first (its ESXi host stalls): the gate reports it
        // idle, so nothing but the follower's memory speaks for it.
        k.pause(h.proc);
        k.after(r.between(300, 450), () => pauseGate(gp));
      });
      const pauseGate = (gp: SimProcess) => {
        if (gp.dead || w.healedAt !== undefined) return void k.resume(h.proc);
        f.pause(gp);
        if (!gp.paused) return void k.resume(h.proc);
        // Woken at the latest while the last leases sent before a fence still serve.
        k.after(r.between(3000, 3900), () => k.resume(gp));
        k.after(r.between(0, 30), () => { if (w.healedAt === undefined) leave(f, x); });
        const fencesBefore = s.follower?.status().fences ?? 0;
        const m = f.leader();
        const poll = (waited: number) => {
          const st = s.follower?.status();
          if (w.healedAt !== undefined || !st || waited > 3000) return void k.resume(h.proc);
          if (st.fences === fencesBefore || st.lease !== 'live') return void k.after(10, () => poll(waited + 10));
          // Fenced and in a new session: the leader dies, h moves on, the gate wakes.
          const down = r.between(20, 200);
          const back = down + r.between(50, 250);
          const away = back + r.between(200, 600);
          k.after(down, () => { if (m.proc && !m.proc.dead) m.kill(); });
          k.after(back, () => m.restart());
          k.after(away, () => {
            k.resume(h.proc);
            if (w.healedAt === undefined && h.route.target === s.i) leave(f, h);
          });
          k.after(away + r.between(100, 700), () => k.resume(gp));
        };
        poll(0);
      };
      return `scvm-${s.i}, ${h.hostId} stays, ${x.hostId} leaves, the leader restarts`;
    }],
    ['limit-lowered-twice-while-gate-sleeps', () => {
      // x comes over to s: s holds two clients.
      const m = f.leader();
      const v = visitServedScvm(f, (s) => {
        const gp = s.gate?.proc;
        if (!gp || gp.dead || !m.proc || m.proc.dead) return;
        // Its hosts go quiet first (their ESXi hosts stall): the gate
        // reports them idle, so only the follower's memory speaks for them.
        const quiet = w.hosts.filter((y) => connectedAt(y, s.i));
        for (const y of quiet) k.pause(y.proc);
        const wake = () => { for (const y of quiet) k.resume(y.proc); };
        k.after(r.between(300, 450), () => {
          if (gp.dead || w.healedAt !== undefined || !m.proc || m.proc.dead) return wake();
          f.pause(gp);
          if (!gp.paused) return wake();
          k.after(r.between(2500, 3500), () => k.resume(gp));
          const epoch = s.follower?.status().epoch;
          m.kill();
          k.after(r.between(100, 250), () => m.restart());
          // Once s introduced itself to the restarted master (which left a
          // claim unadopted), the master restarts again; then the hosts move on.
          const poll = (waited: number) => {
            const st = s.follower?.status();
            if (w.healedAt !== undefined || !st || waited > 1500) return wake();
            if (st.epoch === epoch || st.lease !== 'live') return void k.after(10, () => poll(waited + 10));
            k.after(r.between(0, 100), () => {
              if (!m.proc || m.proc.dead) return wake();
              m.kill();
              const back = r.between(100, 250);
              k.after(back, () => m.restart());
              k.after(back + r.between(100, 500), () => {
                wake();
                for (const y of quiet) if (w.healedAt === undefined && y.route.target === s.i) leave(f, y);
              });
            });
          };
          k.after(100, () => poll(100));
        });
      });
      return v && `scvm-${v.s.i} serves ${v.x.hostId} too, its hosts go quiet and its gate sleeps, m${m.k} restarts twice with a lower client limit`;
    }],
    ['follower-cut-past-lease', () => {
      const h = w.hosts.find((y) => y.route.target === y.i && connectedAt(y, y.i));
      if (!h || w.healedAt !== undefined) return undefined;
      const s = w.scvms[h.i - 1];
      const fp = s.followerProc;
      if (!fp || fp.dead) return undefined;
      cutFromMasters(f, fp, r.between(3500, 6000));
      return `scvm-${s.i}'s follower cut off from the masters past its lease, ${h.hostId} served there`;
    }],
    ['condemn-while-gate-sleeps', () => {
      // A host h has calls at s; the NFS server hangs and s's gate falls
      // asleep; x, a host that came over, moves on, so its revoke goes
      // unanswered and the master condemns the session; h moves on later,
      // and the master waits the ended lease out for it. Found 6 of 100
      // recipe seeds with the mutant: the shape of seed 86850814 also needs
      // h's login to reach the master after the condemnation and h not to
      // reconnect at s under the new session (which drains it by a revoke).
      const busy = busyHost(f);
      if (!busy) return undefined;
      const { h, s } = busy;
      const others = w.hosts.filter((y) => y !== h);
      if (!s.gate || !others.length) return undefined;
      const x = r.pick(others);
      if (x.route.target !== s.i) x.move({ target: s.i, via: r.pick(['storage', 'mgmt'] as const) });
      whenConnected(f, x, s, 0, 1500, () => {
        const gp = s.gate?.proc;
        if (!gp || gp.dead || h.route.target !== s.i) return;
        const nfs = s.nfs.proc;
        f.pause(nfs);
        k.after(r.between(6000, 9000), () => k.resume(nfs));
        k.after(r.between(5, 50), () => {
          if (w.healedAt !== undefined) return;
          f.pause(gp);
          if (!gp.paused) return;
          k.after(r.between(2000, 3500), () => k.resume(gp));
          k.after(r.between(0, 30), () => { if (w.healedAt === undefined) leave(f, x); });
          k.after(r.between(1500, 3000), () => { if (w.healedAt === undefined && h.route.target === s.i) leave(f, h); });
        });
      });
      return `scvm-${s.i}, ${h.hostId} waits, ${x.hostId} leaves`;
    }],
  ];
}
