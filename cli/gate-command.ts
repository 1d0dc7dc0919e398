import { Option, type Command } from 'commander';
import { ConfigError } from '../common/settings';
import { fenceChoiceProblem } from '../common/fence-command';
import { TcpGate } from '../follower/tcp-gate';
import { addTlsOptions, argvFlag, collect, intArg, opt, optDefault, tlsFromFlags } from './options';
import { DEFAULT_FOLLOWER_OPTIONS } from '../follower/options';
import { DEFAULT_GATE_TIMING } from '../follower/gate-core';
import { runUntilSignal } from './lifecycle';

/** `0.0.0.0:2049=10.0.0.5:2049` → one listen→backend route. */
export function parseRoute(text: string) {
  const m = /^(.+):(\d{1,5})=(.+):(\d{1,5})$/.exec(text);
  if (!m) throw new ConfigError(`--route ${JSON.stringify(text)}: expected listenHost:port=backendHost:port`);
  const unbracket = (h: string) => h.replace(/^\[(.*)\]$/, '$1');
  return { listenHost: unbracket(m[1]), listenPort: Number(m[2]), backendHost: unbracket(m[3]), backendPort: Number(m[4]) };
}

/** The gate's own default: it runs beside the follower but holds a gate certificate. */
const GATE_TLS_DIR = '/etc/nfsha/gate-tls';

export function registerGate(program: Command): void {
  const command = program
    .command('gate')
    .description('Run the built-in NFS layer: a TCP gate in front of an unmodified NFS server that admits clients through the follower.')
    .addOption(optDefault('--name <name>', 'name for logs and the event log', 'gate'))
    .addOption(optDefault('--follower <addr>', 'the follower\'s gate API address', DEFAULT_FOLLOWER_OPTIONS.gateListen))
    .addOption(opt('--route <listen=backend>', 'listenHost:port=backendHost:port, e.g. 192.168.33.2:2049=10.9.0.1:2049 (repeatable, required)').argParser(collect))
    .addOption(opt('--event-log <file>', 'append timestamped admit/drop/drained/fence events (JSON lines) here'))
    .addOption(opt('--fence-command <argv>', 'fences the NFS server behind this gate, returning once its process is gone: a JSON array or words split on spaces (no shell)'))
    .addOption(new Option('--no-fence', 'run without a fence command, knowingly: a revoked client whose calls do not drain is held (never acked) until an operator confirms a fence; required off loopback when no --fence-command is given'))
    .addOption(optDefault('--fence-timeout-ms <ms>', 'longest a fence command may run', DEFAULT_FOLLOWER_OPTIONS.fenceTimeoutMs).argParser(intArg))
    .addOption(optDefault('--stop-lead-ms <ms>', 'stop forwarding this long before the lease deadline, so calls drain before the fence point', DEFAULT_GATE_TIMING.stopLeadMs).argParser(intArg))
    .addOption(optDefault('--fence-lead-ms <ms>', 'E: fence the NFS server at lease deadline − E unless nothing is in flight', DEFAULT_GATE_TIMING.fenceLeadMs).argParser(intArg))
    .addOption(optDefault('--revoke-drain-timeout-ms <ms>', 'fence the NFS server when a revoked client\'s calls are not answered within this', DEFAULT_GATE_TIMING.revokeDrainTimeoutMs).argParser(intArg))
    .addOption(optDefault('--stop-drain-timeout-ms <ms>', 'on SIGTERM, stop serving and wait this long at most for forwarded calls to get their replies before exiting', DEFAULT_GATE_TIMING.revokeDrainTimeoutMs).argParser(intArg));
  addTlsOptions(command, GATE_TLS_DIR)
    .action(async (flags) => {
      const routes = ((flags.route as string[] | undefined) ?? []).map(parseRoute);
      if (!routes.length) throw new ConfigError('at least one --route is required');
      const { stopLeadMs, fenceLeadMs } = flags;
      if (fenceLeadMs >= stopLeadMs) throw new ConfigError('--fence-lead-ms must be less than --stop-lead-ms: calls need time to drain between the stop and the fence point');
      const fenceCommand = flags.fenceCommand === undefined ? [] : argvFlag(flags.fenceCommand, '--fence-command');
      // commander's --no-fence sets fence=false; it defaults to true.
      const problem = fenceChoiceProblem(fenceCommand, flags.fence === false, [...routes.map((r) => `${r.listenHost}:${r.listenPort}`), flags.follower]);
      if (problem) throw new ConfigError(problem);
      const gate = new TcpGate({
        name: flags.name, follower: flags.follower, routes, eventLog: flags.eventLog,
        fenceCommand,
        fenceTimeoutMs: flags.fenceTimeoutMs, stopLeadMs, fenceLeadMs, revokeDrainTimeoutMs: flags.revokeDrainTimeoutMs, stopDrainTimeoutMs: flags.stopDrainTimeoutMs,
        tls: tlsFromFlags(flags) ?? { dir: GATE_TLS_DIR },
      });
      await gate.start();
      await runUntilSignal(async () => { await gate.stop(); });
    });
}
