import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** How to run this same CLI in a child process. */
export function selfCommand(): { cmd: string; args: string[] } {
  return { cmd: process.execPath, args: process.argv[1] && !process.argv[1].startsWith('-') ? [process.argv[1]] : [] };
}

interface Child {
  args: string[];
  proc: ChildProcess;
  exited: Promise<void>;
  /** Killed or stopped on purpose: its exit is no news. */
  expected: boolean;
}

/**
 * The cluster's processes, each this CLI run with its own log file in `dir`.
 * Each gets an IPC channel it never uses for messages: when this process
 * ends, however (SIGKILL included), the channel closes and the child stops
 * itself (cli/lifecycle.ts), so no process outlives `nfsha dev`.
 */
export class DevProcesses {
  private readonly children = new Map<string, Child>();
  private stopping = false;

  constructor(
    private readonly dir: string,
    /** A child exited that nobody stopped: its name, and its exit code or signal. */
    private readonly onUnexpectedExit: (name: string, how: string) => void,
  ) {}

  logFile(name: string): string {
    return path.join(this.dir, `${name}.log`);
  }

  start(name: string, args: string[]): number {
    if (this.stopping) throw new Error(`not starting ${name}: the cluster is stopping`);
    const { cmd, args: base } = selfCommand();
    const out = fs.openSync(this.logFile(name), 'a');
    // The timeline is built from info-level events: a quieter level would hide them.
    const level = ['debug', 'trace'].includes(process.env.NFSHA_LOG_LEVEL ?? '') ? process.env.NFSHA_LOG_LEVEL : 'info';
    const proc = spawn(cmd, [...base, ...args], { stdio: ['ignore', out, out, 'ipc'], env: { ...process.env, NFSHA_LOG_LEVEL: level } });
    fs.closeSync(out);
    const child: Child = { args, proc, expected: false, exited: new Promise((r) => proc.once('exit', () => r())) };
    proc.once('exit', (code, sig) => {
      if (!child.expected && !this.stopping) this.onUnexpectedExit(name, sig ?? `exit code ${code}`);
    });
    proc.on('error', () => undefined);
    this.children.set(name, child);
    return proc.pid ?? 0;
  }

  /** Kills `name` with SIGKILL and waits until it is gone; returns its pid. */
  async kill9(name: string): Promise<number> {
    const c = this.require(name);
    c.expected = true;
    c.proc.kill('SIGKILL');
    await c.exited;
    return c.proc.pid ?? 0;
  }

  /** Starts `name` again with the arguments it had; returns the new pid. */
  restart(name: string): number {
    return this.start(name, this.require(name).args);
  }

  /** Pids of the children still running. */
  pids(): number[] {
    return [...this.children.values()].filter((c) => c.proc.exitCode === null && c.proc.signalCode === null).map((c) => c.proc.pid ?? 0);
  }

  /** SIGTERM to every child; SIGKILL to those still there after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const running = [...this.children.values()].filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
    for (const c of running) c.proc.kill('SIGTERM');
    const all = Promise.all(running.map((c) => c.exited));
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([all.then(() => false), new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); })]);
    clearTimeout(timer);
    if (!late) return;
    for (const c of running) c.proc.kill('SIGKILL');
    await all;
  }

  private require(name: string): Child {
    const c = this.children.get(name);
    if (!c) throw new Error(`no process ${name}`);
    return c;
  }
}
