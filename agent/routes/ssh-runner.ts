import type { CommandRunner } from './backend';

/** What the esxcli-ssh backend needs of an SSH connection. */
export interface RemoteShell {
  exec(command: string, timeoutMs?: number): Promise<{ code: number; stdout: string; stderr: string }>;
  close(): void;
}

/** Quotes one argument for a POSIX (or ESXi busybox) shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs commands on the ESXi host over SSH, for hosts where the agent binary
 * cannot run (DESIGN §7): the esxcli backend then works from an SCVM.
 */
export function sshRunner(connect: () => Promise<RemoteShell>): CommandRunner & { close(): void } {
  let shell: Promise<RemoteShell> | undefined;
  const runner = async (cmd: string, args: string[]) => {
    shell ??= connect();
    const s = await shell.catch((err) => { shell = undefined; throw err; });
    const line = [cmd, ...args].map(shellQuote).join(' ');
    const r = await s.exec(line, 5000).catch((err) => { shell = undefined; throw err; });
    if (r.code !== 0) throw new Error(`${line} failed over ssh (${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  };
  return Object.assign(runner, {
    close: () => {
      void shell?.then((s) => s.close(), () => undefined);
      shell = undefined;
    },
  });
}
