import assert from 'node:assert/strict';
import { chaosTable, runSchedule, runSeed, type SeedOutcome } from '../support/chaos';
import { Lab } from '../support/lab';

/** Brings the lab up for the suite, prints its chaos table and takes it down; dumps it when a test fails. */
function useLab(lab: Lab, outcomes: SeedOutcome[]): void {
  before(async () => { await lab.up(); });
  after(async function () {
    if (outcomes.length) process.stderr.write(`${chaosTable(outcomes).replace(/^/gm, '      ')}\n`);
    // A failed test's lab stays on disk to read (its path is in the dump).
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') === true;
    await lab.down(failed);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(`${lab.dump()}\n(the lab's logs are kept in ${lab.dir})`);
  });
}

/** Fixed seeds: each names one reproducible fault schedule (npm run chaos runs long campaigns). */
const SEEDS = [7, 1042, 31337];
const FAULTS_PER_SEED = 5;

describe('real NFS end to end: libnfs block writers through the gates to each SCVM\'s NFS-Ganesha under seeded faults, etcd election and the fence agent on (needs root, nfs-ganesha, libnfs, etcd)', function () {
  this.timeout(900_000);
  const lab = new Lab({ hosts: 3, nfs: true, etcd: true, prefix: 'nfsha-io', holdDownMs: 2000 });
  const outcomes: SeedOutcome[] = [];

  useLab(lab, outcomes);

  for (const seed of SEEDS) {
    it(`seed ${seed}: IO resumes after every fault; no block goes back to an older acknowledged version, no acknowledged write is lost, no two gates serve one host at once`, async () => {
      const o = await runSeed(lab, seed, FAULTS_PER_SEED, undefined, (line) => process.stderr.write(`      ${line}\n`));
      outcomes.push(o);
      assert.deepEqual(o.failures, [], `seed ${seed}: the schedule did not run through`);
      assert.deepEqual(o.violations, [], `seed ${seed}: invariants broken`);
    });
  }
});

/** The faults that reroute a host away from its own SCVM: the ones whose old connections need a reset. */
const REROUTE_KINDS = ['scvm-links', 'follower-kill9', 'follower-sigstop'] as const;

describe('real NFS end to end with hosts that cannot reset their own sockets (as on ESXi): the SCVM side resets them (needs root, nfs-ganesha, libnfs, nftables)', function () {
  this.timeout(600_000);
  const lab = new Lab({ hosts: 3, nfs: true, prefix: 'nfsha-nr', holdDownMs: 2000, hostSocketReset: false });
  const outcomes: SeedOutcome[] = [];

  useLab(lab, outcomes);

  it('seed 7: after SCVM links down, follower SIGSTOP and follower kill -9, IO resumes through the new route without ss -K on the host, and the invariants hold', async () => {
    const o = await runSeed(lab, 7, 3, REROUTE_KINDS, (line) => process.stderr.write(`      ${line}\n`));
    outcomes.push(o);
    assert.deepEqual(o.failures, [], 'the schedule did not run through');
    assert.deepEqual(o.violations, [], 'invariants broken');
  });
});

describe('rolling restart of every SCVM through maintenance: real agents move the hosts, libnfs writers keep writing (needs root, nfs-ganesha, libnfs)', function () {
  this.timeout(600_000);
  const lab = new Lab({ hosts: 3, nfs: true, prefix: 'nfsha-ru', holdDownMs: 2000 });
  const outcomes: SeedOutcome[] = [];

  useLab(lab, outcomes);

  it('each SCVM in turn: maintenance enter --wait, follower/gate/NFS server restarted, exit, hosts back; no stale write, no lost acknowledged write, no two gates serving one host', async () => {
    const steps = [1, 2, 3].map((target) => ({ kind: 'maintenance-restart' as const, target }));
    const o = await runSchedule(lab, 11, steps, (line) => process.stderr.write(`      ${line}\n`));
    outcomes.push(o);
    assert.deepEqual(o.failures, [], 'the rolling restart did not run through');
    assert.deepEqual(o.violations, [], 'invariants broken');
    assert.equal(o.faults.length, 3);
    process.stderr.write(`      rolling restart: longest IO pause of any host ${Math.max(...o.faults.map((f) => f.pauseMs))} ms (each step: ${o.faults.map((f) => `scvm-${f.target} ${f.pauseMs} ms`).join(', ')})\n`);
  });
});
