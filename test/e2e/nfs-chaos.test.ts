import assert from 'node:assert/strict';
import { monotonicMs } from '../../common/clock';
import { waitFor, type Proc } from '../support/cluster';
import { checkSingleAdmission, checkWrites, inject, ioPauses, schedule, waitIoResumed } from '../support/chaos';
import { Lab } from '../support/lab';

/** Fixed seeds: each names one reproducible fault schedule. */
const SEEDS = [7, 1042, 31337];
const FAULTS_PER_SEED = 5;
const HOLD_DOWN_MS = 2000;
/**
 * Every fault has taken effect by then: a frozen or cut-off follower's lease
 * (3 s TTL) has run out and the master waited it out, or a killed leader's
 * etcd lease (3 s) expired and another was elected. IO must be flowing again
 * after this point while the fault is still in place.
 */
const EFFECT_MS = 6000;

describe('real NFS end to end: libnfs writers through the gates to NFS-Ganesha under seeded faults, etcd election on (needs root, nfs-ganesha, libnfs, etcd)', function () {
  this.timeout(900_000);
  const lab = new Lab({ hosts: 3, nfs: true, etcd: true, prefix: 'nfsha-io', holdDownMs: HOLD_DOWN_MS });

  before(async () => { await lab.up(); });
  after(async () => { await lab.down(); });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.error(lab.dump());
  });

  for (const seed of SEEDS) {
    it(`seed ${seed}: IO resumes after every fault, every acknowledged write reads back intact, no two gates admit one host at once`, async () => {
      const writers: Array<{ proc: Proc; file: string }> = [1, 2, 3].map((i) => {
        const file = `seed${seed}-host${i}.dat`;
        return { proc: lab.startWriter(i, file, 20), file };
      });
      const procs = writers.map((w) => w.proc);
      const pauses: Array<{ kind: string; target: number; pauseMs: number }> = [];
      const fail = (what: string) => assert.fail(`seed ${seed}: ${what}`);
      try {
        await waitIoResumed(procs, monotonicMs() - 60_000, 10, 30_000).catch(() => fail('writers never started'));
        for (const f of schedule(seed, FAULTS_PER_SEED, 3)) {
          const at = monotonicMs();
          const heal = await inject(lab, f);
          await waitIoResumed(procs, at + EFFECT_MS, 10, 60_000).catch(() => fail(`IO did not resume after ${f.kind} on ${f.target}`));
          pauses.push({ ...f, pauseMs: Math.round(Math.max(...ioPauses(procs, at))) });
          await heal();
          // Back to normal before the next fault: every host on its own SCVM, IO flowing.
          await waitFor(`seed ${seed}: all hosts local again after ${f.kind}`, async () => {
            for (let i = 1; i <= 3; i++) if ((await lab.route(i)) !== 'local') return false;
            return (await lab.status()).sessions.filter((s) => s.state === 'live').length === 3;
          }, 60_000, 200);
          await waitIoResumed(procs, monotonicMs(), 5, 60_000).catch(() => fail(`IO did not resume after healing ${f.kind} on ${f.target}`));
        }
      } finally {
        for (const p of procs) p.signal('SIGTERM');
        await Promise.all(procs.map((p) => (p.child.exitCode === null ? new Promise((r) => p.child.once('exit', r)) : undefined)));
      }
      process.stderr.write(`      seed ${seed} IO pauses: ${pauses.map((p) => `${p.kind}@${p.target} ${p.pauseMs} ms`).join(', ')}\n`);
      assert.deepEqual(checkWrites(lab, writers), [], `seed ${seed}: acknowledged writes lost or corrupted`);
      assert.deepEqual(checkSingleAdmission(lab), [], `seed ${seed}: two gates admitted one client at once`);
    });
  }
});
