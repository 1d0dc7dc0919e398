import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { monotonicMs } from '../../common/clock';
import { waitFor, type Proc } from './cluster';
import { completeLines } from './log-lines';
import { admissions, describeOverlap, overlaps, readGateEvents, type Admission } from './invariant';
import { BlockSampler, checkFinal, checkNoStaleWrites, parseWriterLog, type Ack } from './block-checker';
import { MASTER_IP, mgmtIpOfHost, storageIpOfHost, type Lab } from './lab';

const run = promisify(execFile);

/** A small seeded PRNG (mulberry32): the same seed gives the same fault schedule. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAULT_KINDS = [
  'scvm-links', 'follower-kill9', 'follower-sigstop', 'nft-partition', 'agent-restart', 'master-kill9',
  'nfs-sigstop', 'nfs-slow', 'gate-sigstop', 'scvm-freeze', 'transport-drop', 'sto-mgmt-switch', 'master-sigstop',
  'nfs-hang-reroute',
] as const;
/**
 * Fences that fail or are slow, each during an `nfs-hang-reroute` (the NFS
 * server hung with calls queued, the host moved away, the follower still in
 * session): a failing fence must hold the client (status names the hold)
 * unless the fence agent fences the whole SCVM; a slow one still fences.
 * Kept out of FAULT_KINDS so the seeds of the suite's chaos test keep their
 * schedules; `npm run chaos` draws them by default.
 */
export const FENCE_FAULT_KINDS = ['nfs-hang-fence-fails', 'nfs-hang-fence-slow'] as const;
/**
 * Planned work, not faults: `maintenance-restart` moves every host off an
 * SCVM (`nfsha maintenance enter --wait`), restarts its follower (a graceful
 * stop), gate and NFS server, ends the maintenance and waits until its hosts
 * are back; the pause measured spans both moves. One per SCVM in turn is a
 * rolling restart. `maintenance-move` is the same without the restart (the
 * bench's per-move pauses). Kept out of FAULT_KINDS (the suite's seeds keep
 * their schedules); `npm run chaos` draws them by default.
 */
export const PLANNED_KINDS = ['maintenance-restart', 'maintenance-move'] as const;
export const ALL_FAULT_KINDS = [...FAULT_KINDS, ...FENCE_FAULT_KINDS, ...PLANNED_KINDS] as const;
export type FaultKind = (typeof ALL_FAULT_KINDS)[number];

/** Faults on the master: the target is ignored, the leader is hit. */
export const MASTER_FAULTS: readonly FaultKind[] = ['master-kill9', 'master-sigstop'];

export interface Fault {
  kind: FaultKind;
  /** The SCVM / host it hits (1-based). */
  target: number;
}

export function schedule(seed: number, count: number, hosts: number, kinds: readonly FaultKind[] = FAULT_KINDS): Fault[] {
  const r = prng(seed);
  return Array.from({ length: count }, () => ({
    kind: kinds[Math.floor(r() * kinds.length)],
    target: 1 + Math.floor(r() * hosts),
  }));
}

/**
 * How long after a fault IO must be flowing again while the fault is still in
 * place: a frozen or cut-off follower's lease (3 s) has run out and it was
 * fenced or waited out, or a killed leader's etcd lease (3 s) expired and
 * another was elected. Faults that heal by themselves get less.
 */
export function effectMs(kind: FaultKind): number {
  return kind === 'maintenance-restart' || kind === 'maintenance-move' ? 0 : kind === 'transport-drop' ? 2500 : kind === 'nfs-slow' ? 4000 : 6000;
}

async function nft(ns: string, script: string): Promise<void> {
  await run('ip', ['netns', 'exec', ns, 'nft', script]);
}

/** Every process in a namespace (the whole SCVM). */
async function pidsIn(ns: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', ns]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').map(Number).filter((n) => n > 0);
}

function signalPids(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) try { process.kill(p, sig); } catch { /* gone */ }
}

/**
 * Planned maintenance of SCVM i with real agents: `nfsha maintenance enter
 * --wait` moves its host away; with `restart`, its follower stops
 * gracefully, then its gate, and its NFS server is killed, and all come
 * back; `maintenance exit`, and its host fails back after the hold-down.
 * Pushes the monotonic time just before the exit onto `marks`, which splits
 * the step into its two moves. After each move, status must agree with the
 * gates' event logs; between the two moves (the restart, until the new
 * follower is in session with its fence ready), the master must not
 * condemn, wait out or fence, and no NFS fence may run but the new
 * follower's start-up fence (and its retries, when it failed).
 */
async function maintenanceStep(lab: Lab, i: number, restart: boolean, marks: number[]): Promise<void> {
  const what = restart ? 'planned restart' : 'maintenance';
  await lab.maintenance('enter', i, ['--reason', restart ? 'rolling restart' : 'maintenance', '--wait', '--timeout', '60']);
  // Whatever fails below, the server leaves maintenance: a later step or
  // seed on this lab must find every host able to go home.
  let exited = false;
  try {
    const left = (await lab.status()).clients.filter((c) => c.serverId === `scvm-${i}`).map((c) => c.clientId);
    if (left.length) throw new Error(`maintenance enter --wait returned while scvm-${i} still served ${left.join(', ')}`);
    await statusAgreesWithGates(lab, [`scvm-${i}`], `after maintenance enter scvm-${i}`);
    // From here until the server is back in session it serves nothing:
    // whatever it does (its restart) must not look like a failure. The
    // moves themselves may fence: a drain that outlasts its limit on a
    // loaded machine fences, as it should.
    const from = Date.now();
    const fromMono = monotonicMs();
    if (restart) {
      // The follower stops gracefully (nothing to move now), then the gate,
      // then the NFS server; all come back, and the new follower is in
      // session with its NFS up and its fence ready before the exit.
      const gone = (p: Proc) => (p.child.exitCode !== null || p.child.signalCode !== null ? undefined : new Promise((r) => p.child.once('exit', r)));
      lab.followers[i - 1].signal('SIGTERM');
      await gone(lab.followers[i - 1]);
      lab.gates[i - 1].signal('SIGTERM');
      await gone(lab.gates[i - 1]);
      const pid = lab.nfsPid(i);
      if (pid) signalPids([pid], 'SIGKILL');
      await lab.reviveScvm(i);
      await waitFor(`scvm-${i} back in session after its restart (live, NFS up, fence ready)`, async () => (await lab.status()).sessions
        .some((x) => x.serverId === `scvm-${i}` && x.state === 'live' && x.nfs === 'up' && x.fencing === 'ready'), 60_000, 200);
    }
    const toMono = monotonicMs();
    marks.push(toMono);
    const master = loggedBetween(lab, 'master', ['revoke.waitout', 'revoke.fence', 'session.condemned'], from, Date.now());
    if (master.length) throw new Error(`the master treated scvm-${i}'s ${what} as a failure: ${master.map((e) => e.ev).join(', ')}`);
    const nfsFences = lab.fences().filter((x) => x.t >= fromMono && x.t <= toMono).map((x) => x.label);
    // A start-up fence that fails (it has 1 s; on a loaded machine the lab's
    // script can take longer) is retried, and the master, not told of a fence
    // at start, asks for one more: those are the fence doing its job.
    const startFenceFailed = loggedBetween(lab, `follower-${i}`, ['fence.failed'], from, Date.now()).length > 0;
    const allowed = restart ? (startFenceFailed ? 3 : 1) : 0;
    if (nfsFences.some((label) => label !== `gate-${i}`) || nfsFences.length > allowed) throw new Error(`NFS fences during scvm-${i}'s ${what} beyond its follower's start-up fence: ${nfsFences.join(', ')}`);
    exited = true;
    await lab.maintenance('exit', i);
  } finally {
    if (!exited) await lab.maintenance('exit', i).catch(() => undefined);
  }
  await waitFor(`esx-${i} local again, served by scvm-${i}`, async () => (await lab.route(i)) === 'local'
    && (await lab.status()).clients.some((c) => c.clientId === `host:esx-${i}` && c.serverId === `scvm-${i}`), 60_000, 200);
  await statusAgreesWithGates(lab, [], `after scvm-${i}'s ${what} and maintenance exit`);
}

/** Injects a fault; returns how to heal it. */
export async function inject(lab: Lab, f: Fault, marks: number[] = []): Promise<() => Promise<void>> {
  const s = lab.ns(`s${f.target}`);
  const h = lab.ns(`h${f.target}`);
  switch (f.kind) {
    case 'scvm-links':
      await lab.scvmLinks(f.target, 'down');
      return () => lab.scvmLinks(f.target, 'up');
    case 'follower-kill9':
      await lab.followers[f.target - 1].kill9();
      return async () => undefined; // revived with the rest of the SCVM
    case 'follower-sigstop':
      lab.followers[f.target - 1].signal('SIGSTOP');
      return async () => lab.followers[f.target - 1].signal('SIGCONT');
    case 'nft-partition':
      // The follower can no longer reach the master (one SCVM cut off from the control plane).
      await nft(s, `add table inet nfsha_chaos; add chain inet nfsha_chaos out { type filter hook output priority 0; }; add rule inet nfsha_chaos out ip daddr ${MASTER_IP} drop`);
      return async () => { await nft(s, 'delete table inet nfsha_chaos'); };
    case 'master-kill9': {
      const k = Number((await lab.status()).masterId.slice(1));
      await lab.masters[k - 1].kill9();
      return async () => { lab.masters[k - 1] = lab.startMaster(k); };
    }
    case 'master-sigstop': {
      // Longer than the etcd lease: another is elected; the old one wakes believing it leads.
      const k = Number((await lab.status()).masterId.slice(1));
      lab.masters[k - 1].signal('SIGSTOP');
      return async () => lab.masters[k - 1].signal('SIGCONT');
    }
    case 'agent-restart':
      await lab.agents[f.target - 1].kill9();
      lab.agents[f.target - 1] = lab.startAgent(f.target);
      return async () => undefined;
    case 'nfs-sigstop': {
      // A hung NFS server behind a healthy follower and a pingable SCVM.
      const pid = lab.nfsPid(f.target);
      if (pid) signalPids([pid], 'SIGSTOP');
      return async () => { if (pid) signalPids([pid], 'SIGCONT'); };
    }
    case 'nfs-slow': {
      // A slow NFS server: stopped 150 ms of every 300 ms.
      let on = true;
      const cycle = (async () => {
        while (on) {
          const pid = lab.nfsPid(f.target);
          if (pid) signalPids([pid], 'SIGSTOP');
          await new Promise((r) => setTimeout(r, 150));
          if (pid) signalPids([pid], 'SIGCONT');
          await new Promise((r) => setTimeout(r, 150));
        }
      })();
      return async () => { on = false; await cycle; };
    }
    case 'nfs-hang-reroute': {
      // The usual failover: a sick NFS server with calls queued, and the host
      // rerouted away from its SCVM while the follower still answers the master.
      const pid = lab.nfsPid(f.target);
      if (pid) signalPids([pid], 'SIGSTOP');
      await new Promise((r) => setTimeout(r, 300));
      await lab.scvmLinks(f.target, 'down');
      return async () => {
        await lab.scvmLinks(f.target, 'up');
        if (pid) signalPids([pid], 'SIGCONT');
      };
    }
    case 'nfs-hang-fence-fails':
    case 'nfs-hang-fence-slow': {
      const flag = `${lab.nfsPidFile(f.target)}.fault`;
      fs.writeFileSync(flag, f.kind === 'nfs-hang-fence-fails' ? 'fail' : 'slow');
      const heal = await inject(lab, { kind: 'nfs-hang-reroute', target: f.target });
      return async () => {
        fs.rmSync(flag, { force: true });
        await heal();
      };
    }
    case 'maintenance-restart':
    case 'maintenance-move':
      await maintenanceStep(lab, f.target, f.kind === 'maintenance-restart', marks);
      return async () => undefined;
    case 'gate-sigstop':
      lab.gates[f.target - 1].signal('SIGSTOP');
      return async () => lab.gates[f.target - 1].signal('SIGCONT');
    case 'scvm-freeze': {
      // Every process of the SCVM at once (the VM paused): nothing inside can act.
      const pids = await pidsIn(s);
      signalPids(pids, 'SIGSTOP');
      return async () => signalPids(pids, 'SIGCONT');
    }
    case 'transport-drop': {
      // The follower's stream to the master is reset and reconnecting is blocked
      // for 1 s, shorter than the session TTL: the session must resume.
      await nft(s, `add table inet nfsha_chaos; add chain inet nfsha_chaos out { type filter hook output priority 0; }; add rule inet nfsha_chaos out ip daddr ${MASTER_IP} tcp flags syn drop`);
      await run('ip', ['netns', 'exec', s, 'ss', '-K', 'dst', MASTER_IP]).catch(() => undefined);
      const healed = new Promise<void>((resolve) => setTimeout(() => { void nft(s, 'delete table inet nfsha_chaos').finally(resolve); }, 1000));
      return () => healed;
    }
    case 'sto-mgmt-switch': {
      // The host's own SCVM drops off the private link, so the host goes to a
      // remote SCVM's storage address; then the host's storage link fails and
      // it must move to the same SCVM's management address (a new source address).
      await lab.scvmLinks(f.target, 'down', ['priv']);
      await lab.waitRerouted(f.target, 15_000).catch(() => undefined);
      await lab.ip(lab.ns('sw'), 'link', 'set', `sto-h${f.target}`, 'down');
      void h;
      return async () => {
        await lab.ip(lab.ns('sw'), 'link', 'set', `sto-h${f.target}`, 'up');
        await lab.scvmLinks(f.target, 'up', ['priv']);
      };
    }
  }
}

/** A writer's log read as it grows (the whole file is never re-parsed). */
export class WriterTail {
  private offset = 0;
  private rest = '';
  readonly acks: Ack[] = [];

  constructor(readonly proc: Proc, readonly file: string) {}

  poll(): Ack[] {
    let fd: number;
    try { fd = fs.openSync(this.proc.logFile, 'r'); } catch { return this.acks; }
    try {
      const size = fs.fstatSync(fd).size;
      if (size > this.offset) {
        const buf = Buffer.alloc(size - this.offset);
        fs.readSync(fd, buf, 0, buf.length, this.offset);
        this.offset = size;
        const text = this.rest + buf.toString('utf8');
        const cut = text.lastIndexOf('\n');
        this.rest = text.slice(cut + 1);
        this.acks.push(...parseWriterLog(text.slice(0, cut + 1)).acks);
      }
    } finally {
      fs.closeSync(fd);
    }
    return this.acks;
  }

  acksAfter(t: number): number {
    const a = this.poll();
    let n = 0;
    for (let i = a.length - 1; i >= 0 && a[i].t > t; i--) n++;
    return n;
  }
}

/** Waits until every writer has acked `more` writes after `since` (monotonic ms). */
export async function waitIoResumed(writers: WriterTail[], since: number, more: number, timeoutMs: number): Promise<void> {
  await waitFor('IO resumed on every host', () => writers.every((w) => w.acksAfter(since) >= more), timeoutMs, 50);
}

/**
 * A fence that fails leaves the moved host's client held, unless the fence
 * agent fenced the whole SCVM (then IO resumes): waits for either. Returns
 * the hold the master named, if that came first.
 */
async function ioResumedOrHeld(lab: Lab, writers: WriterTail[], since: number): Promise<string | undefined> {
  return waitFor('IO resumed on every host, or a hold named in status', async () => {
    if (writers.every((w) => w.acksAfter(since) >= 10)) return 'none';
    const held = (await lab.status().catch(() => undefined))?.held ?? [];
    return held.length ? held.map((h) => `${h.clientId} by ${h.serverId}`).join(', ') : undefined;
  }, 60_000, 200).then((r) => (r === 'none' ? undefined : r));
}

/** Per writer, the longest gap between consecutive acks after `since`, counted from the last ack before it. */
export function ioPauses(writers: WriterTail[], since: number, until = Infinity): number[] {
  return writers.map((w) => {
    const all = w.poll();
    let prev = since;
    for (const a of all) if (a.t <= since) prev = a.t;
    let gap = 0;
    for (const a of all) {
      if (a.t <= since || a.t > until) continue;
      gap = Math.max(gap, a.t - prev);
      prev = a.t;
    }
    return gap;
  });
}

/** Writer options for the chaos workload: 8 calls in flight over 16 hot blocks, FILE_SYNC and UNSTABLE+COMMIT. */
export function writerArgs(seed: number): string[] {
  return ['--blocks', '16', '--block-size', '4096', '--inflight', '8', '--interval-ms', '5', '--unstable-pct', '50', '--seed', String(seed)];
}

export const BLOCK_SIZE = 4096;

/** Maps a client id seen by a gate to the host it is, through the lab's addressing (the master's host map). */
export function labHostOf(lab: Lab): (clientId: string, gate: string) => string {
  const byIp = new Map<string, string>();
  for (let i = 1; i <= lab.opts.hosts; i++) {
    byIp.set(storageIpOfHost(i), `esx-${i}`);
    byIp.set(mgmtIpOfHost(i), `esx-${i}`);
  }
  return (clientId, gate) => {
    if (clientId.startsWith('host:')) return clientId.slice(5);
    if (clientId.startsWith('ip:')) return byIp.get(clientId.slice(3)) ?? clientId;
    if (clientId.startsWith('local:')) return `esx-${gate.replace(/^gate-/, '')}`;
    return clientId;
  };
}

/** Service intervals of every gate, by host, with the NFS fences the lab recorded. */
export function labServices(lab: Lab): Admission[] {
  const events = readGateEvents(Array.from({ length: lab.opts.hosts }, (_, i) => lab.gateEventLog(i + 1)));
  const fences = lab.fences().map((f) => ({ gate: f.label, started: f.started, t: f.t, whole: f.whole }));
  return admissions(events, { hostOf: labHostOf(lab), fences });
}

/**
 * Where `nfsha status --json` and the gates' event logs disagree: every
 * host must be served (admitted, not dropped) by exactly the gate of the
 * server status names as its owner, and by no other; the servers in
 * maintenance must be exactly `expectedMaintenance`. Returns the
 * disagreements, empty when they agree.
 */
export function statusVersusGates(
  status: { clients: Array<{ clientId: string; serverId: string }>; maintenance: Array<{ serverId: string }> },
  services: Admission[], expectedMaintenance: string[], hostOf: (clientId: string, gate: string) => string,
): string[] {
  const byStatus = new Map<string, string>();
  for (const c of status.clients) byStatus.set(hostOf(c.clientId, ''), `gate-${c.serverId.replace(/^scvm-/, '')}`);
  const byGates = new Map<string, string[]>();
  // One gate may hold a host under two client ids (its address and its host id): one gate.
  for (const a of services) if (a.admittedUntil === Infinity) byGates.set(a.host, [...new Set([...(byGates.get(a.host) ?? []), a.gate])].sort());
  const out: string[] = [];
  for (const h of [...new Set([...byStatus.keys(), ...byGates.keys()])].sort()) {
    const gates = byGates.get(h) ?? [];
    const owner = byStatus.get(h);
    if (gates.join() !== (owner ?? '')) out.push(`${h}: status says ${owner ?? 'no server'}, gates serving: ${gates.join(' and ') || 'none'}`);
  }
  const inMaintenance = status.maintenance.map((m) => m.serverId).sort().join(', ');
  const expected = [...expectedMaintenance].sort().join(', ');
  if (inMaintenance !== expected) out.push(`maintenance: status lists [${inMaintenance}], expected [${expected}]`);
  return out;
}

/**
 * Waits (10 s) for `nfsha status --json` to agree with the gates' event
 * logs (statusVersusGates): a gate admits when the host's client
 * reconnects, a moment after the grant. Fails naming the disagreements.
 */
export async function statusAgreesWithGates(lab: Lab, maintenance: string[], when: string): Promise<void> {
  let last: string[] = [];
  try {
    await waitFor(`status and the gates' event logs agree ${when}`, async () => {
      last = statusVersusGates(await lab.status(), labServices(lab), maintenance, labHostOf(lab));
      return last.length === 0;
    }, 10_000, 200);
  } catch {
    throw new Error(`nfsha status --json disagrees with the gates' event logs ${when}: ${last.join('; ')}`);
  }
}

/** Log events `ev` of the lab's processes named `prefix…`, logged between two wall-clock times. */
export function loggedBetween(lab: Lab, prefix: string, evs: string[], fromWall: number, toWall: number): Array<{ ev: string; t: number }> {
  const out: Array<{ ev: string; t: number }> = [];
  // A restarted process appends to the same log: read each file once.
  const files = new Set(lab.procs.filter((p) => p.name.startsWith(prefix)).map((p) => p.logFile));
  for (const file of files) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    for (const line of completeLines(text)) {
      if (!evs.some((ev) => line.includes(`"${ev}"`))) continue;
      const e = JSON.parse(line) as { ev: string; time: string };
      const t = Date.parse(e.time);
      if (evs.includes(e.ev) && t >= fromWall && t < toWall) out.push({ ev: e.ev, t });
    }
  }
  return out;
}

/** Follower fences (`follower.fenced`) logged between two wall-clock times. */
export function followerFences(lab: Lab, fromWall: number, toWall: number): number {
  return loggedBetween(lab, 'follower-', ['follower.fenced'], fromWall, toWall).length;
}

export interface FaultOutcome extends Fault {
  pauseMs: number;
  followerFences: number;
  violations: string[];
  /** maintenance-*: the IO pause of each move (away, back). */
  movePausesMs?: number[];
  /** nfs-hang-fence-fails: the hold the master named while the fault was in place. */
  held?: string;
}

export interface SeedOutcome {
  seed: number;
  faults: FaultOutcome[];
  /** Violations found over the whole run (each is also attributed to a fault where possible). */
  violations: string[];
  /** Problems running the schedule (IO never resumed…), as distinct from invariant violations. */
  failures: string[];
}

/**
 * One seeded chaos run on a lab that is up with NFS: writers on every host,
 * storage sampled the whole time, the seed's faults one after another (each
 * until IO flows again with it in place, then healed and back to normal),
 * then every check: no stale write, final content, single service by host.
 */
export async function runSeed(lab: Lab, seed: number, faults: number, kinds: readonly FaultKind[] = FAULT_KINDS, log: (line: string) => void = () => undefined): Promise<SeedOutcome> {
  return runSchedule(lab, seed, schedule(seed, faults, lab.opts.hosts, kinds), log);
}

/** Runs a given list of faults (see runSeed); `seed` names the files and seeds the writers. */
export async function runSchedule(lab: Lab, seed: number, list: Fault[], log: (line: string) => void = () => undefined): Promise<SeedOutcome> {
  const hosts = lab.opts.hosts;
  const files = Array.from({ length: hosts }, (_, k) => `seed${seed}-host${k + 1}.dat`);
  const writers = files.map((file, k) => new WriterTail(lab.startWriter(k + 1, file, writerArgs(seed * 10 + k + 1)), file));
  const sampler = new BlockSampler(files.map((file) => ({ file, path: path.join(lab.exportDir, file), blockSize: BLOCK_SIZE })), 25);
  sampler.start();
  const outcome: SeedOutcome = { seed, faults: [], violations: [], failures: [] };
  const windows: Array<{ from: number; to: number; fault: FaultOutcome }> = [];
  try {
    await waitIoResumed(writers, 0, 10, 60_000).catch(() => { throw new Error('writers never started'); });
    for (const f of list) {
      const at = monotonicMs();
      const wallAt = Date.now();
      const marks: number[] = [];
      const heal = await inject(lab, f, marks);
      const injected = monotonicMs();
      const fault: FaultOutcome = { ...f, pauseMs: 0, followerFences: 0, violations: [] };
      outcome.faults.push(fault);
      try {
        if (f.kind === 'nfs-hang-fence-fails') fault.held = await ioResumedOrHeld(lab, writers, at + effectMs(f.kind));
        // A planned step returns once its hosts are back: IO must flow after that, closing the last move's gap.
        else await waitIoResumed(writers, (PLANNED_KINDS as readonly string[]).includes(f.kind) ? injected : at + effectMs(f.kind), 10, 60_000);
      } catch {
        outcome.failures.push(`IO did not resume after ${f.kind} on ${f.target}${f.kind === 'nfs-hang-fence-fails' ? ', and the master named no hold' : ''}`);
      }
      const end = monotonicMs();
      fault.pauseMs = Math.round(Math.max(...ioPauses(writers, at, end)));
      // A maintenance step is two moves (away, then back): each one's pause.
      if (marks.length) fault.movePausesMs = [at, ...marks].map((t0, k, all) => Math.round(Math.max(...ioPauses(writers, t0, all[k + 1] ?? end))));
      await heal();
      await backToNormal(lab).catch((err) => outcome.failures.push(`after ${f.kind} on ${f.target}: ${(err as Error).message}`));
      await waitIoResumed(writers, monotonicMs(), 5, 60_000).catch(() => outcome.failures.push(`IO did not resume after healing ${f.kind} on ${f.target}`));
      fault.followerFences = followerFences(lab, wallAt, Date.now());
      windows.push({ from: at, to: monotonicMs(), fault });
      log(`seed ${seed}: ${f.kind}@${f.target} pause ${fault.pauseMs} ms, follower fences ${fault.followerFences}${fault.held ? `, held: ${fault.held}` : ''}`);
      if (outcome.failures.length) break;
    }
  } catch (err) {
    outcome.failures.push((err as Error).message);
  } finally {
    for (const w of writers) w.proc.signal('SIGTERM');
    await Promise.all(writers.map((w) => (w.proc.child.exitCode === null ? new Promise((r) => w.proc.child.once('exit', r)) : undefined)));
    await sampler.stop();
  }
  // The checks, over the whole run.
  const attribute = (t: number, v: string) => {
    outcome.violations.push(v);
    windows.find((w) => t >= w.from && t < w.to)?.fault.violations.push(v);
  };
  const acksByFile: Record<string, Ack[]> = {};
  for (const w of writers) {
    const parsed = parseWriterLog(w.proc.log());
    acksByFile[w.file] = parsed.acks;
    if (!parsed.verify?.ok) attribute(Infinity, `${w.file}: the writer's read-back through NFS failed: ${JSON.stringify(parsed.verify ?? null)}`);
    if (parsed.final) for (const v of checkFinal(path.join(lab.exportDir, w.file), BLOCK_SIZE, parsed.final, w.file)) attribute(Infinity, v);
  }
  for (const v of checkNoStaleWrites(acksByFile, sampler.samples)) {
    const t = Number(/at ([\d.]+)/.exec(v)?.[1] ?? NaN);
    attribute(t, `stale write: ${v}`);
  }
  for (const pair of overlaps(labServices(lab))) attribute(Math.max(pair[0].from, pair[1].from), describeOverlap(pair));
  return outcome;
}

/** Every host on its own SCVM, every SCVM's processes running, in session, with NFS up. */
export async function backToNormal(lab: Lab): Promise<void> {
  for (let i = 1; i <= lab.opts.hosts; i++) await lab.reviveScvm(i);
  await waitFor('all hosts local, sessions live, NFS up', async () => {
    for (let i = 1; i <= lab.opts.hosts; i++) if ((await lab.route(i)) !== 'local') return false;
    const s = await lab.status();
    return s.sessions.filter((x) => x.state === 'live' && x.nfs !== 'down').length === lab.opts.hosts;
  }, 60_000, 200);
}

/** p-th percentile (0–100) of a list, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The chaos table: per fault kind, faults, IO pause p50/p99, follower fences, violations. */
export function chaosTable(outcomes: SeedOutcome[]): string {
  const rows: string[][] = [['fault kind', 'faults', 'IO pause p50 ms', 'IO pause p99 ms', 'follower fences', 'violations']];
  for (const kind of ALL_FAULT_KINDS) {
    const fs_ = outcomes.flatMap((o) => o.faults.filter((f) => f.kind === kind));
    if (!fs_.length) continue;
    const pauses = fs_.map((f) => f.pauseMs);
    rows.push([kind, String(fs_.length), String(percentile(pauses, 50)), String(percentile(pauses, 99)),
      String(fs_.reduce((n, f) => n + f.followerFences, 0)), String(fs_.reduce((n, f) => n + f.violations.length, 0))]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}
