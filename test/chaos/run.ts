import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { ALL_FAULT_KINDS, chaosTable, runSeed, type FaultKind, type SeedOutcome } from '../support/chaos';
import { Lab } from '../support/lab';

/**
 * `npm run chaos -- --seeds N --faults K`: a long seeded chaos campaign on
 * the real-NFS lab (3 hosts, 3 SCVMs each with its own NFS-Ganesha, etcd
 * election, the master's fence agent), then one table per fault kind: faults,
 * IO pause p50/p99, follower fences, violations. Exit 1 on any violation.
 */
/** A spinner that exits once its parent (this runner) is gone, however that ended. */
const HOG = 'const p = process.ppid; for (;;) { const t = Date.now(); while (Date.now() - t < 200); if (process.ppid !== p) process.exit(0); }';

async function main(): Promise<void> {
  const count = (v: string) => {
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('expected a positive whole number');
    return Number(v);
  };
  const program = new Command('chaos')
    .option('--seeds <n>', 'how many seeds', count, 3)
    .option('--faults <k>', 'faults per seed', count, 5)
    .option('--first-seed <s>', 'first seed (then s+1, s+2, …)', count, 1)
    .option('--kinds <list>', `fault kinds, comma-separated (default: all: ${ALL_FAULT_KINDS.join(', ')})`)
    .option('--no-fence-agent', 'run without the master\'s fence agent (the frozen-SCVM fault is then a documented limit)')
    .option('--prefix <p>', 'lab namespace prefix', 'nfsha-chaos')
    .option('--cpu-hog', 'keep every core busy with a spinning process for the whole run (a loaded hypervisor)')
    .parse();
  const o = program.opts<{ seeds: number; faults: number; firstSeed: number; kinds?: string; fenceAgent: boolean; prefix: string; cpuHog?: boolean }>();
  const kinds = (o.kinds ? o.kinds.split(',').map((k) => k.trim()) : [...ALL_FAULT_KINDS]) as FaultKind[];
  for (const k of kinds) if (!(ALL_FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault kind ${k} (known: ${ALL_FAULT_KINDS.join(', ')})`);
  const lab = new Lab({ hosts: 3, nfs: true, etcd: true, prefix: o.prefix, holdDownMs: 2000, fenceAgent: o.fenceAgent });
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const outcomes: SeedOutcome[] = [];
  const started = Date.now();
  log(`chaos: ${o.seeds} seeds × ${o.faults} faults from seed ${o.firstSeed}; kinds ${kinds.join(',')}; lab in ${lab.dir}`);
  // Spinners at normal priority, one per core: the lab's processes compete
  // with them as an SCVM's do on a busy host.
  const hogs = o.cpuHog ? os.cpus().map(() => spawn(process.execPath, ['-e', HOG], { stdio: 'ignore' })) : [];
  if (hogs.length) log(`chaos: ${hogs.length} CPU hogs running (pids ${hogs.map((h) => h.pid).join(', ')})`);
  let crashed = true;
  try {
    await lab.up();
    for (let seed = o.firstSeed; seed < o.firstSeed + o.seeds; seed++) {
      const r = await runSeed(lab, seed, o.faults, kinds, log);
      outcomes.push(r);
      for (const v of [...r.failures, ...r.violations]) log(`seed ${seed}: ${v}`);
    }
    crashed = false;
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
    // The logs are kept to read when anything went wrong; a clean run's go.
    const keep = crashed || outcomes.some((r) => r.violations.length || r.failures.length);
    await lab.down(keep);
    if (keep) log(`chaos: the lab's logs and gate event logs are kept in ${lab.dir}`);
  }
  const violations = outcomes.reduce((n, r) => n + r.violations.length, 0);
  const failures = outcomes.reduce((n, r) => n + r.failures.length, 0);
  process.stdout.write(`\nchaos: ${outcomes.length} seeds, ${outcomes.reduce((n, r) => n + r.faults.length, 0)} faults in ${Math.round((Date.now() - started) / 1000)} s; violations ${violations}, runs that did not complete ${failures}\n\n${chaosTable(outcomes)}\n`);
  const bad = outcomes.filter((r) => r.violations.length || r.failures.length).map((r) => r.seed);
  if (bad.length) process.stdout.write(`\nseeds with problems: ${bad.join(', ')}\n`);
  process.exit(violations || failures ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`chaos: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
