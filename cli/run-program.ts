import { CommanderError, type Command } from 'commander';
import { ConfigError } from '../common/settings';

/**
 * Runs a CLI program and exits as the commands promise: commander's own code
 * for usage errors and --help, 2 for a bad configuration, 1 for anything else,
 * with one line naming the program on stderr.
 */
export async function runProgram(program: Command, name: string): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode);
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}
