import * as fs from 'node:fs';
import * as os from 'node:os';
import { benchReroute, type BenchRow } from './reroute';
import { benchFailover } from './failover';
import { benchIo } from './io';
import { benchMaster } from './master-load';
import { benchFootprint } from './footprint';
import { benchFalseReroutes } from './false-reroutes';
import { renderTable } from '../../cli/table';

/**
 * `npm run bench [-- --json FILE] [--runs N] [--only master|reroute|false-reroutes|failover|footprint|io|maintenance] [--false-reroute-seconds S]`:
 * every benchmark figure (or one part's), as
 * one table on stdout and optionally JSON. Speed targets live here, never in
 * pass/fail tests.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const jsonAt = args.indexOf('--json');
  const runsAt = args.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 10;
  const log = (s: string) => process.stderr.write(s + '\n');
  const rows: BenchRow[] = [];
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  if (!only || only === 'master') {
    log('master: logins with revoke, etcd txn, 1000 followers / 100k clients...');
    rows.push(...(await benchMaster(log)));
  }
  if (!only || only === 'reroute') {
    log('reroute (namespace lab, needs root)...');
    rows.push(...(await benchReroute(runs, log)));
  }
  if (!only || only === 'false-reroutes') {
    const secondsAt = args.indexOf('--false-reroute-seconds');
    const seconds = secondsAt >= 0 ? Number(args[secondsAt + 1]) : 300;
    log(`false reroutes under load, ${seconds} s (lab with real NFS, needs root)...`);
    rows.push(...(await benchFalseReroutes(seconds, log)));
  }
  if (!only || only === 'failover') {
    log('master failover (real etcd)...');
    rows.push(...(await benchFailover(Math.min(runs, 5), log)));
  }
  if (!only || only === 'footprint') {
    log('agent footprint and executable size...');
    rows.push(...(await benchFootprint(log)));
  }
  if (!only || only === 'io') {
    log('real NFS IO pause per fault, planned maintenance, gate throughput (lab, needs root)...');
    rows.push(...(await benchIo(1, log)));
  }
  if (only === 'maintenance') {
    log('real NFS IO pause of planned maintenance only (lab, needs root)...');
    rows.push(...(await benchIo(1, log, true)));
  }
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`;
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2));
  process.stdout.write(`nfsha benchmarks — ${new Date().toISOString()} — ${machine}\n\n`);
  const verdict = (r: BenchRow) => (r.target === undefined ? '' : r.p99 <= r.target ? 'pass' : 'MISS');
  process.stdout.write(renderTable(['FIGURE', 'UNIT', 'N', 'MIN', 'MEDIAN', 'P99', 'MAX', 'TARGET (P99 ≤)', 'KIND', 'PASS', 'NOTE'],
    rows.map((r) => [r.figure, r.unit, r.n, fmt(r.min), fmt(r.median), fmt(r.p99), fmt(r.max), r.target === undefined ? '' : fmt(r.target), r.kind ?? '', verdict(r), r.note ?? ''])) + '\n');
  if (jsonAt >= 0) fs.writeFileSync(args[jsonAt + 1], JSON.stringify({ machine, at: new Date().toISOString(), rows }, null, 2));
}

main().catch((err) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
