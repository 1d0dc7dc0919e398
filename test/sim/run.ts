import * as os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import { configFor, runSchedule, type ScheduleResult } from './schedule';
import type { WorldConfig } from './world';

/**
 * `npm run sim -- --seeds N`: the deterministic simulation of the control
 * plane (master, follower, gate, NFS servers, hosts) on virtual time, one
 * seeded schedule after another on every core. A failing seed prints its
 * violation and trace, and replays exactly with `--seed S`.
 */

interface Job {
  seeds: number[];
  overrides: Partial<WorldConfig>;
}

type Report = Pick<ScheduleResult, 'seed' | 'violations' | 'steps' | 'trace' | 'faults'> & { cfg: WorldConfig };

async function work(job: Job, report: (r: Report) => void): Promise<void> {
  for (const seed of job.seeds) {
    const r = await runSchedule(configFor(seed, job.overrides));
    report({ seed, violations: r.violations, steps: r.steps, trace: r.trace, faults: r.violations.length ? r.faults : [], cfg: r.cfg });
  }
}

if (!isMainThread) {
  void work(workerData as Job, (r) => parentPort!.postMessage(r)).then(() => parentPort!.postMessage('done'));
} else {
  void main();
}

function describe(cfg: WorldConfig): string {
  return `${cfg.mode}, ${cfg.scvms} SCVMs, fence agent ${cfg.fenceAgent ? 'on' : 'off'}, clients/session ${cfg.maxClientsPerSession}${cfg.lateMgmtRegistration ? ', late mgmt registration' : ''}${cfg.relativeLease ? ', relative lease (old protocol)' : ''}`;
}

async function main(): Promise<void> {
  const count = (v: string) => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number');
    return Number(v);
  };
  const program = new Command('sim')
    .option('--seeds <n>', 'how many schedules', count, 200)
    .option('--first-seed <s>', 'first seed (then s+1, …)', count, 1)
    .option('--seed <s>', 'replay one seed and print its whole trace', count)
    .option('--workers <n>', 'worker threads', count, os.cpus().length)
    .option('--relative-lease', 'gates on the previous release\'s relative lease protocol (race 6)')
    .option('--mode <mode>', 'embedded or elected masters (default: per seed)')
    .option('--max-failures <n>', 'stop after this many failing seeds', count, 5)
    .option('--no-fence-agent', 'without the master\'s fence agent (and without whole-SCVM freezes)')
    .option('--faults <kinds>', 'only these fault kinds, comma-separated')
    .parse();
  const o = program.opts<{ seeds: number; firstSeed: number; seed?: number; workers: number; relativeLease?: boolean; mode?: 'embedded' | 'elected'; maxFailures: number; fenceAgent: boolean; faults?: string }>();
  const overrides: Partial<WorldConfig> = {};
  if (!o.fenceAgent) overrides.fenceAgent = false;
  if (o.faults) overrides.faultKinds = o.faults.split(',').map((x) => x.trim());
  if (o.relativeLease) overrides.relativeLease = true;
  if (o.mode) overrides.mode = o.mode;

  if (o.seed !== undefined) {
    const r = await runSchedule(configFor(o.seed, { ...overrides, keepTrace: true }));
    process.stdout.write(`seed ${o.seed} (${describe(r.cfg)}): ${r.steps} steps, ${r.admissions} admissions, ${r.executions} NFS calls\n`);
    process.stdout.write(`faults:\n  ${r.faults.join('\n  ')}\n`);
    if (r.violations.length) process.stdout.write(`VIOLATIONS:\n  ${r.violations.join('\n  ')}\n`);
    else process.stdout.write('no violation\n');
    process.stdout.write(`trace (virtual ms, who, what), last ${r.trace.length} lines:\n${r.trace.join('\n')}\n`);
    process.exit(r.violations.length ? 1 : 0);
  }

  const seeds = Array.from({ length: o.seeds }, (_, i) => o.firstSeed + i);
  const workers = Math.max(1, Math.min(o.workers, seeds.length));
  const started = Date.now();
  const failures: Report[] = [];
  let done = 0;
  let steps = 0;
  await Promise.all(Array.from({ length: workers }, (_, w) => new Promise<void>((resolve, reject) => {
    const job: Job = { seeds: seeds.filter((_, i) => i % workers === w), overrides };
    const worker = new Worker(__filename, { workerData: job });
    worker.on('message', (m: Report | 'done') => {
      if (m === 'done') {
        void worker.terminate().then(() => resolve());
        return;
      }
      done++;
      steps += m.steps;
      if (m.violations.length) {
        failures.push(m);
        process.stderr.write(`seed ${m.seed} (${describe(m.cfg)}): ${m.violations[0]}\n`);
        if (failures.length >= o.maxFailures) void worker.terminate().then(() => resolve());
      }
      if (done % 500 === 0) process.stderr.write(`  ${done}/${seeds.length} schedules, ${Math.round((Date.now() - started) / 1000)} s\n`);
    });
    worker.on('error', reject);
  })));
  const secs = (Date.now() - started) / 1000;
  process.stdout.write(`sim: ${done} schedules of 30 s virtual time (seeds ${seeds[0]}–${seeds.at(-1)}) in ${secs.toFixed(1)} s on ${workers} workers, ${(steps / secs / 1000).toFixed(0)}k steps/s; ${failures.length} failing\n`);
  for (const f of failures.sort((a, b) => a.seed - b.seed)) {
    process.stdout.write(`\nseed ${f.seed} (${describe(f.cfg)}): ${f.violations.join('; ')}\n  replay: npm run sim -- --seed ${f.seed}${o.relativeLease ? ' --relative-lease' : ''}\n`);
  }
  process.exit(failures.length ? 1 : 0);
}
