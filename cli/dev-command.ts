import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../common/settings';
import { formatStatus } from './status-command';
import { intArg, opt } from './options';
import { DevCluster, hostIp } from './dev/cluster';
import { Scenario, type ActResult } from './dev/scenario';
import { SimHost } from './dev/sim-host';
import { Timeline } from './dev/timeline';

/** The stand-in NFS servers answer each call after this: calls are in flight when a gate is cut off. */
const NFS_DELAY_MS = 20;
/** WRITE calls each simulated host keeps outstanding. */
const HOST_WINDOW = 4;
/** Longest the hosts may take to get their first replies (logins, admissions) after the cluster is up. */
const FLOWING_TIMEOUT_MS = 20_000;

function summary(r: ActResult): string {
  return r.pauseMs === undefined
    ? `FAILED ${r.title}: IO did not resume (${r.error}); ${r.how}`
    : `${r.title}: IO resumed after ${r.pauseMs} ms; ${r.how}`;
}

/**
 * Stops the cluster when this process is told to, or when the process that
 * started it is gone: npm forwards SIGTERM to the shell it ran us from,
 * which may die without passing it on, and then we are re-parented.
 */
function onStop(stop: (why: string) => void): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => stop(sig));
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) stop('the process that started nfsha dev is gone'); }, 250).unref();
}

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description('Run a cluster on loopback (master, followers, gates in front of stand-in NFS servers, hosts doing IO), '
      + 'move a host by killing its Access Server\'s follower and back, print the timeline and the status.')
    .addOption(opt('--followers <n>', 'how many Access Servers (follower + gate), and hosts; at least 2', 3).argParser(intArg))
    .addOption(opt('--port <port>', 'master port on 127.0.0.1', 7410).argParser(intArg))
    .addOption(opt('--dir <dir>', 'where logs, sockets and the throwaway PKI go', 'a new temp dir'))
    .addOption(opt('--once', 'run the scenario, print, stop the cluster; exit 0 only if IO resumed after each move'))
    .addOption(opt('--quiet', 'print one line per move instead of the timeline and the status'))
    .action(async (flags) => {
      const n: number = flags.followers ?? 3;
      if (n < 2) throw new ConfigError('--followers must be at least 2: a host needs another Access Server to move to');
      const dir: string = flags.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nfsha-dev-'));
      fs.mkdirSync(dir, { recursive: true });
      const out = (text: string) => process.stdout.write(text);
      const verbose = (text: string) => { if (!flags.quiet) out(text); };
      let stopping = false;
      const cluster = new DevCluster({
        followers: n, port: flags.port ?? 7410, dir, nfsDelayMs: NFS_DELAY_MS,
        onUnexpectedExit: (name, how) => process.stderr.write(`nfsha dev: ${name} exited (${how}); its log: ${path.join(dir, `${name}.log`)}\n`),
      });
      const hosts = Array.from({ length: n }, (_, k) => new SimHost({ id: `esx-${k + 1}`, sourceIp: hostIp(k + 1), window: HOST_WINDOW }));
      const timeline = new Timeline(verbose);
      const shutdown = async (code: number, why?: string) => {
        if (stopping) return;
        stopping = true;
        if (why) out(`\nnfsha dev: stopping (${why}); logs in ${dir}\n`);
        for (const h of hosts) h.stop();
        timeline.close();
        await cluster.stop();
        process.exit(code);
      };
      onStop((why) => void shutdown(flags.once ? 1 : 0, why));

      verbose(`nfsha dev: master ${cluster.master}, ${n} Access Servers (follower + gate + stand-in NFS server), logs in ${dir}\n`);
      try {
        await cluster.start();
      } catch (err) {
        process.stderr.write(`nfsha dev: the cluster did not come up: ${(err as Error).message}\n`);
        return shutdown(1);
      }
      const scenario = new Scenario(cluster, hosts, timeline);
      hosts.forEach((h, k) => h.connect(cluster.gates[k]));
      try {
        await scenario.flowing(FLOWING_TIMEOUT_MS);
      } catch (err) {
        process.stderr.write(`nfsha dev: IO did not start: ${(err as Error).message}; logs in ${dir}\n`);
        return shutdown(1);
      }
      hosts.forEach((h, k) => verbose(`  ${h.id} (${hostIp(k + 1)}) does IO via ${cluster.gates[k].gate} → ${cluster.gates[k].server}: ${HOST_WINDOW} WRITE calls outstanding, answered in ${NFS_DELAY_MS} ms\n`));

      const results = await scenario.run();
      out('\n' + results.map(summary).join('\n') + '\n');
      const ok = results.length === 2 && results.every((r) => r.pauseMs !== undefined);
      if (!flags.quiet) {
        const status = await cluster.status().then(formatStatus, (err: Error) => `(status: ${err.message})`);
        out(`\n${status}\n`);
      }
      if (flags.once) return shutdown(ok ? 0 : 1);
      verbose(`\nRunning: the hosts keep doing IO. Status: node dist/cli/nfsha.js status --master ${cluster.master} --tls ${cluster.operatorTls}\n`
        + `Logs: ${dir}/*.log; gate certificates for "nfsha gate --tls": ${cluster.pkiDir}/gate-scvm-<n>   (Ctrl-C stops the cluster)\n`);
      await new Promise(() => undefined);
    });
}
