import { execFile } from 'node:child_process';
import type { Route } from '../decision';

/** The NFS address every host mounts from (DESIGN §1). */
export const NFS_ADDRESS = '192.168.33.2';

/**
 * Where the host route to the NFS address lives. `read` is called every tick
 * (the agent repairs drift), `apply` only on a change.
 */
export interface RouteBackend {
  readonly name: string;
  read(): Promise<Route>;
  apply(target: Route, previous: Route): Promise<void>;
}

/** Runs a command and returns its stdout; rejects with stderr on failure. */
export type CommandRunner = (cmd: string, args: string[]) => Promise<string>;

export const execRunner: CommandRunner = (cmd, args) =>
  new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 5000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
  });
