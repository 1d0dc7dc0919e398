/** How long a command whose supervisor is gone may take to close before it exits anyway. */
const ORPHAN_CLOSE_MS = 5000;

/**
 * Keeps a long-running command alive until SIGINT/SIGTERM, then closes it once.
 * Started by a supervisor with an IPC channel (`nfsha dev` does that), it also
 * stops when the channel closes: the supervisor is gone, however it died
 * (SIGKILL included), and nothing else would stop this process.
 */
export function runUntilSignal(close: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let closing = false;
    const stop = () => {
      if (closing) return;
      closing = true;
      close().finally(() => {
        resolve();
        process.exit(0);
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    if (typeof process.send !== 'function') return;
    const orphaned = () => {
      setTimeout(() => process.exit(1), ORPHAN_CLOSE_MS).unref();
      stop();
    };
    // Gone already, while the command was starting: no 'disconnect' will come.
    if (!process.connected) return orphaned();
    // The channel must not keep us alive, only tell us when the supervisor is gone.
    process.channel?.unref();
    process.once('disconnect', orphaned);
  });
}
