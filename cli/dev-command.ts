import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { fetchStatus, formatStatus } from './status-command';
import { intArg, opt } from './options';
import { PkiDirectory } from '../common/pki';

/** How to run this same CLI in a child process. */
export function selfCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: process.argv[1] && !process.argv[1].startsWith('-') ? [process.argv[1]] : [] };
}

function child(args: string[], logFile: string): ChildProcess {
  const { cmd, args: base } = selfCommand();
  const out = fs.openSync(logFile, 'a');
  return spawn(cmd, [...base, ...args], { stdio: ['ignore', out, out] });
}

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description('Run a local cluster on loopback: one master and N followers, then print its status.')
    .addOption(opt('--followers <n>', 'how many followers (Access Servers)', 3).argParser(intArg))
    .addOption(opt('--port <port>', 'master port on 127.0.0.1', 7410).argParser(intArg))
    .addOption(opt('--dir <dir>', 'where sockets and logs go', 'a new temp dir'))
    .addOption(opt('--once', 'print status once all sessions are live, then stop the cluster'))
    .action(async (flags) => {
      const n: number = flags.followers ?? 3;
      const port: number = flags.port ?? 7410;
      const dir = flags.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nfsha-dev-'));
      fs.mkdirSync(dir, { recursive: true });
      const master = `127.0.0.1:${port}`;
      const hosts = Array.from({ length: n }, (_, i) => `--host=esx-${i + 1}=127.0.1.${i + 1}`);
      // The dev cluster uses mTLS like a real one, with its own throwaway CA.
      const pki = new PkiDirectory(path.join(dir, 'pki'));
      const tlsFor = (role: 'master' | 'follower' | 'gate' | 'operator', id: string) => {
        pki.issue({ role, id });
        return pki.tlsDir({ role, id });
      };
      const operatorTls = tlsFor('operator', 'dev');
      const procs = [child(['master', '--listen', master, '--tls', tlsFor('master', 'master'), ...hosts], path.join(dir, 'master.log'))];
      for (let i = 1; i <= n; i++) {
        tlsFor('gate', `scvm-${i}`);
        procs.push(child(['follower', '--server-id', `scvm-${i}`, '--host-id', `esx-${i}`, '--storage-ip', `127.0.2.${i}`,
          '--master', master, '--gate-listen', `unix:${path.join(dir, `gate-${i}.sock`)}`, '--tls', tlsFor('follower', `scvm-${i}`)], path.join(dir, `follower-${i}.log`)));
      }
      const stopAll = () => { for (const p of procs) p.kill('SIGTERM'); };
      process.on('SIGINT', () => { stopAll(); process.exit(0); });
      process.on('SIGTERM', () => { stopAll(); process.exit(0); });
      for (const p of procs) p.on('exit', (code, sig) => { if (code) process.stderr.write(`nfsha dev: a child exited with ${code ?? sig}; logs in ${dir}\n`); });
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          const s = await fetchStatus(master, 1000, { dir: operatorTls });
          if (s.sessions.filter((x) => x.state === 'live').length >= n) {
            process.stdout.write(`nfsha dev cluster: master ${master}, ${n} followers, logs and gate sockets in ${dir}\n\n${formatStatus(s)}\n`);
            break;
          }
        } catch { /* master not up yet */ }
        if (Date.now() > deadline) {
          stopAll();
          throw new Error(`cluster did not come up within 20 s; logs in ${dir}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      if (flags.once) { stopAll(); return; }
      process.stdout.write(`\nRunning. Try: node dist/cli/nfsha.js status --master ${master} --tls ${operatorTls}\n`
        + `Gate certificates for "nfsha gate --tls": ${pki.dir}/gate-scvm-<n>   (Ctrl-C stops the cluster)\n`);
      await new Promise(() => undefined);
    });
}
