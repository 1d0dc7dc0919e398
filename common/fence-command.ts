import { spawn } from 'node:child_process';
import type { Clock } from './clock';
import type { Logger } from './log';

/**
 * Pause before a failed fence run is tried again at a lease's fence point:
 * short, because the master's wait-out (deadline + slack) does not wait for it.
 */
export const FENCE_RETRY_MS = 50;

/** What one run of a fence command did. */
export interface FenceResult {
  ok: boolean;
  /** Clock time the run started: it fences what existed before then. */
  startedAt: number;
  ms: number;
  detail: string;
}

export interface FenceCommandOptions {
  /** argv: program and arguments, no shell. Empty: not configured. */
  argv: string[];
  /** A run that takes longer is killed and counts as failed. */
  timeoutMs: number;
  /** Extra environment for the command (e.g. which server to fence). */
  env?: Record<string, string>;
  clock: Clock;
  log: Logger;
  /** For logs: "nfs" (the local NFS server) or "scvm" (a whole SCVM, from the master). */
  what: string;
}

/**
 * Runs a configured fence command (DESIGN §4): the local NFS server's
 * restart or SIGKILL on an Access Server, a fence agent against a whole SCVM
 * on the master. The command's contract is to return only once what it
 * fences can no longer act, so a successful run fences everything that was
 * there when it *started*. Runs never overlap: a request made while one runs
 * is served by the next run (coalesced), because the current run may have
 * started before what the caller needs fenced.
 */
export class FenceCommand {
  private running?: Promise<FenceResult>;
  private next?: Promise<FenceResult>;

  constructor(private readonly opts: FenceCommandOptions) {}

  get configured(): boolean {
    return this.opts.argv.length > 0;
  }

  get timeoutMs(): number {
    return this.opts.timeoutMs;
  }

  /** Resolves with a run that started at or after this call. */
  fence(why: string): Promise<FenceResult> {
    if (!this.configured) {
      return Promise.resolve({ ok: false, startedAt: this.opts.clock.now(), ms: 0, detail: 'no fence command configured' });
    }
    if (!this.running) return this.start(why);
    this.next ??= this.running.then(() => {
      this.next = undefined;
      return this.start(why);
    });
    return this.next;
  }

  private start(why: string): Promise<FenceResult> {
    const { argv, timeoutMs, clock, log, what, env } = this.opts;
    const startedAt = clock.now();
    log.warn({ ev: 'fence.started', what, why, argv }, `fencing ${what}`);
    const run = new Promise<FenceResult>((resolve) => {
      let output = '';
      let settled = false;
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      const keep = (b: Buffer) => { output = (output + b.toString()).slice(-500); };
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const done = (ok: boolean, detail: string) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        resolve({ ok, startedAt, ms: clock.now() - startedAt, detail });
      };
      const timer = clock.setTimeout(() => {
        child.kill('SIGKILL');
        done(false, `timed out after ${timeoutMs} ms`);
      }, timeoutMs);
      child.on('error', (err) => done(false, err.message));
      child.on('close', (code, signal) => done(code === 0, code === 0 ? 'ok' : `exit ${code ?? signal}: ${output.trim()}`));
    }).then((r) => {
      this.running = undefined;
      const line = { ev: r.ok ? 'fence.done' : 'fence.failed', what, why, ms: Math.round(r.ms), detail: r.detail };
      if (r.ok) log.warn(line, `${what} fenced`);
      else log.error(line, `fencing ${what} failed`);
      return r;
    });
    this.running = run;
    return run;
  }
}

/** A Fencing value as status shows it: "ready", "failed", or "none" (also for a follower that did not say). */
export function fencingWord(fencing: string | number): string {
  return fencing === 'FENCING_READY' ? 'ready' : fencing === 'FENCING_FAILED' ? 'failed' : 'none';
}

/** A unix socket, or host:port whose host is loopback (127.0.0.0/8, ::1, localhost). */
function isLocalOnly(address: string): boolean {
  if (!address || address.startsWith('unix:')) return true;
  const host = address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * Why a fence setting cannot start, or undefined (issue 18, safe by
 * default): off loopback a fence command is required unless --no-fence
 * says, knowingly, to run without one; both at once contradict.
 */
export function fenceChoiceProblem(fenceCommand: string[], noFence: boolean, addresses: string[]): string | undefined {
  if (fenceCommand.length && noFence) return '--fence-command and --no-fence contradict each other: give one';
  if (fenceCommand.length || noFence) return undefined;
  const remote = addresses.filter((a) => !isLocalOnly(a));
  if (!remote.length) return undefined;
  return `no --fence-command, and ${remote.join(', ')} is not loopback: without a fence nothing can prove this server's NFS server stopped, `
    + 'so revoked clients whose calls do not drain are held until an operator confirms a fence. Give --fence-command (a command that kills the NFS server and returns once it is gone), '
    + 'or --no-fence to run without one knowingly';
}

/**
 * A fence command from a flag: a JSON array (`["/usr/sbin/fence-nfs","--kill"]`)
 * or words separated by spaces (no shell, no quoting). Empty: none.
 */
export function parseArgv(text: string | string[] | undefined): string[] {
  if (text === undefined) return [];
  if (Array.isArray(text)) return text;
  const t = text.trim();
  if (!t) return [];
  if (t.startsWith('[')) {
    const parsed: unknown = JSON.parse(t);
    if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) throw new Error('expected a JSON array of strings');
    return parsed as string[];
  }
  return t.split(/\s+/);
}
