import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, CommanderError, InvalidArgumentError } from 'commander';

// `nfsha fence-nfs` is the NFS fence command (DESIGN §4) a follower or gate
// runs as --fence-command: it returns 0 only once the NFS server's processes
// are gone. It runs inside a fence budget, so this module loads nothing but
// commander and Node's own modules, and its waits are synchronous: nfsha.ts
// runs it before the other commands' modules load (runFenceNfsAlone).

/** How often the processes are looked at while they die. */
export const FENCE_NFS_POLL_MS = 10;
/** Default --timeout-ms: ends before a follower's default --fence-timeout-ms (1,000 ms) kills the command. */
export const FENCE_NFS_TIMEOUT_MS = 900;
/** Where a unit's ControlGroup is found: cgroup v2, hybrid, v1 (systemd's own hierarchy). */
export const CGROUP_ROOTS = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified', '/sys/fs/cgroup/systemd'];

/**
 * Whether a /proc/PID/stat text shows a live process, as the lab's
 * test/lab/fence-nfs.sh decides: no text (the process is gone), a zombie (Z)
 * or dead (X) is not alive; anything else is, including a text whose state
 * cannot be found. The state is the first word after the last ") ", since
 * the command name before it may hold spaces and parentheses.
 */
export function statAlive(stat: string | undefined): boolean {
  if (stat === undefined) return false;
  const at = stat.lastIndexOf(') ');
  const rest = at < 0 ? stat.slice(stat.indexOf(' ') + 1) : stat.slice(at + 2);
  const state = rest.trimStart().split(/\s/, 1)[0];
  return state !== '' && state !== 'Z' && state !== 'X';
}

/** Pids in a text of whole numbers, one a line (cgroup.procs); 0 and anything else is skipped. */
export function parsePids(text: string): number[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => /^\d+$/.test(l)).map(Number).filter((n) => n > 0);
}

export interface WaitClock {
  now(): number;
  sleep(ms: number): void;
}

/**
 * Looks at every pid (one `alive` call each) until all are gone or `deadline`
 * passes, every `pollMs`; returns those still alive. A pid seen gone is not
 * looked at again (its number may be reused), and every pid is looked at at
 * least once, even past the deadline.
 */
export function waitUntilGone(pids: number[], alive: (pid: number) => boolean, clock: WaitClock, deadline: number, pollMs = FENCE_NFS_POLL_MS): number[] {
  let left = [...new Set(pids)];
  for (;;) {
    left = left.filter(alive);
    const remaining = deadline - clock.now();
    if (left.length === 0 || remaining <= 0) return left;
    clock.sleep(Math.min(pollMs, remaining));
  }
}

/** systemctl show's KEY=VALUE lines as a map. */
export function parseProperties(text: string): Map<string, string> {
  const props = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props.set(line.slice(0, eq), line.slice(eq + 1).trim());
  }
  return props;
}

/** Every pid in cgroup `cg` and the cgroups below it, under the first root that has it; none when no root has it. */
export function cgroupPids(cg: string, roots = CGROUP_ROOTS): number[] {
  if (!cg) return [];
  const walk = (dir: string): number[] => [
    ...parsePids(readText(path.join(dir, 'cgroup.procs')) ?? ''),
    ...fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => walk(path.join(dir, e.name))),
  ];
  for (const root of roots) {
    const dir = path.join(root, cg);
    if (fs.existsSync(path.join(dir, 'cgroup.procs'))) return walk(dir);
  }
  return [];
}

function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** One look at a process: one read of its /proc/PID/stat. */
export function processAlive(pid: number): boolean {
  return statAlive(readText(`/proc/${pid}/stat`));
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
/** The real clock: milliseconds since this process started, so --timeout-ms counts the start-up too. */
const PROCESS_CLOCK: WaitClock = {
  now: () => performance.now(),
  sleep: (ms) => { Atomics.wait(SLEEPER, 0, 0, ms); },
};

/** What to fence: exactly one of the three. */
export type FenceTarget = { unit: string } | { pidfile: string } | { pid: number };

export interface FenceOutcome {
  /** What was fenced, for messages: the unit, the pid file or the pid. */
  what: string;
  /** The pids noted before the kill. */
  pids: number[];
  /** Those still alive at the deadline: empty when fenced. */
  alive: number[];
  /** Why a kill may not have been sent, for the failure message. */
  problems: string[];
  ms: number;
}

function systemctl(args: string[], timeoutMs: number): string {
  try {
    return execFileSync('systemctl', args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`systemctl ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

function sigkill(pid: number, problems: string[]): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ESRCH') problems.push(`kill ${pid}: ${code ?? (err as Error).message}`);
  }
}

/** The pids to kill: a unit's main pid and its cgroup's, or the one in the pid file or given. */
function notePids(target: FenceTarget, budgetMs: number): number[] {
  if ('pid' in target) return [target.pid];
  if ('pidfile' in target) {
    const text = readText(target.pidfile);
    if (text === undefined) return []; // removed by a server that stopped: nothing to fence (as the lab's script)
    if (!/^\s*\d+\s*$/.test(text) || Number(text) < 2) throw new Error(`pid file ${target.pidfile} does not hold a pid: ${JSON.stringify(text.slice(0, 40))}`);
    return [Number(text)];
  }
  const props = parseProperties(systemctl(['show', '-p', 'LoadState', '-p', 'MainPID', '-p', 'ControlGroup', target.unit], budgetMs));
  // A misspelt unit must fail the fence, not fence nothing.
  if (props.get('LoadState') === 'not-found') throw new Error(`unit ${target.unit} not found`);
  return [...parsePids(props.get('MainPID') ?? ''), ...cgroupPids(props.get('ControlGroup') ?? '')];
}

/**
 * SIGKILLs the target (a unit: `systemctl kill`, and each noted pid itself if
 * that fails) and waits until every pid noted before the kill is gone, until
 * `timeoutMs` after this process started.
 */
export function fenceNfs(target: FenceTarget, timeoutMs: number, clock = PROCESS_CLOCK): FenceOutcome {
  const what = 'unit' in target ? target.unit : 'pidfile' in target ? `pid file ${target.pidfile}` : `pid ${target.pid}`;
  const budget = () => Math.max(50, Math.ceil(timeoutMs - clock.now()));
  const pids = [...new Set(notePids(target, budget()))];
  const problems: string[] = [];
  const live = pids.filter(processAlive);
  if ('unit' in target) {
    try {
      systemctl(['kill', '--signal=SIGKILL', target.unit], budget());
    } catch (err) {
      // No process left to kill is not a failure; anything else is reported, and the noted pids are killed directly.
      if (live.length) problems.push((err as Error).message);
      for (const pid of live) sigkill(pid, problems);
    }
  } else {
    for (const pid of live) sigkill(pid, problems);
  }
  const alive = waitUntilGone(live, processAlive, clock, timeoutMs);
  return { what, pids, alive, problems, ms: Math.round(clock.now()) };
}

function fenceMessage(o: FenceOutcome): string {
  if (o.alive.length) {
    return `fence-nfs: ${o.what}: pid${o.alive.length === 1 ? '' : 's'} ${o.alive.join(', ')} still alive ${o.ms} ms after start`
      + (o.problems.length ? ` (${o.problems.join('; ')})` : '');
  }
  if (!o.pids.length) return `fenced ${o.what}: no process was running`;
  const named = o.what === `pid ${o.pids[0]}` ? '' : ` pid${o.pids.length === 1 ? '' : 's'} ${o.pids.join(', ')}`;
  return `fenced ${o.what}:${named} gone ${o.ms} ms after start`;
}

/** A flag's whole number of at least `min`; anything else is a usage error (exit 2). */
function wholeNumber(min: number): (value: string) => number {
  return (value) => {
    if (/^\d+$/.test(value) && Number(value) >= min) return Number(value);
    const err = new InvalidArgumentError(`expected a whole number of at least ${min}`);
    err.exitCode = 2;
    throw err;
  };
}

export function registerFenceNfs(program: Command): void {
  const command = program
    .command('fence-nfs')
    .description('The NFS fence command for --fence-command: SIGKILL the NFS server and return only once its processes are gone '
      + '(a zombie counts as gone), as the fence contract demands (systemctl kill returns before that). Exit 0 when fenced, '
      + 'including when nothing was running; 1 naming the pids still alive at the timeout; 2 for a bad --pid or --timeout-ms, '
      + 'or not exactly one of --unit, --pidfile, --pid. '
      + 'E.g. --fence-command "nfsha fence-nfs --unit nfs-ganesha.service"')
    .option('--unit <unit>', 'a systemd unit: notes its MainPID and every process in its cgroup, runs systemctl kill --signal=SIGKILL, waits for them')
    .option('--pidfile <file>', 'the pid in FILE (a missing FILE counts as a stopped server)')
    .option('--pid <pid>', 'this pid', wholeNumber(2))
    .option('--timeout-ms <ms>', 'give up this long after the command started, start-up included', wholeNumber(1), FENCE_NFS_TIMEOUT_MS)
    .action((flags: { unit?: string; pidfile?: string; pid?: number; timeoutMs: number }) => {
      const given = (['unit', 'pidfile', 'pid'] as const).filter((k) => flags[k] !== undefined);
      if (given.length !== 1) command.error('error: give exactly one of --unit, --pidfile, --pid', { exitCode: 2 });
      const target: FenceTarget = flags.unit !== undefined ? { unit: flags.unit }
        : flags.pidfile !== undefined ? { pidfile: flags.pidfile } : { pid: flags.pid! };
      const outcome = fenceNfs(target, flags.timeoutMs);
      if (outcome.alive.length) throw new Error(fenceMessage(outcome));
      process.stdout.write(`${fenceMessage(outcome)}\n`);
    });
}

/**
 * Runs `nfsha fence-nfs …` when argv asks for it, and exits; returns
 * otherwise. Called from nfsha.ts before the other commands' modules load
 * (gRPC, etcd, TLS, zod: 0.3–0.9 s of start-up on a busy machine, most of
 * a follower's 1 s fence budget). Exit codes as runProgram's.
 */
export function runFenceNfsAlone(argv: string[]): void {
  if (argv[2] !== 'fence-nfs') return;
  const program = new Command('nfsha').exitOverride();
  registerFenceNfs(program);
  for (const c of program.commands) c.exitOverride();
  let code = 0;
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) code = err.exitCode;
    else {
      process.stderr.write(`nfsha: ${err instanceof Error ? err.message : String(err)}\n`);
      code = 1;
    }
  }
  process.exit(code);
}
