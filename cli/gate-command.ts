import type { Command } from 'commander';
import { ConfigError } from '../common/config';
import { TcpGate } from '../follower/tcp-gate';
import { addTlsOptions, collect, opt, tlsFromFlags } from './options';
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
    .addOption(opt('--name <name>', 'name for logs and the event log', 'gate'))
    .addOption(opt('--follower <addr>', 'the follower\'s gate API address', 'unix:/run/nfsha/gate.sock'))
    .addOption(opt('--route <listen=backend>', 'listenHost:port=backendHost:port, e.g. 192.168.33.2:2049=10.9.0.1:2049 (repeatable, required)').argParser(collect))
    .addOption(opt('--event-log <file>', 'append timestamped admit/drop events (JSON lines) here'));
  addTlsOptions(command, GATE_TLS_DIR)
    .action(async (flags) => {
      const routes = ((flags.route as string[] | undefined) ?? []).map(parseRoute);
      if (!routes.length) throw new ConfigError('at least one --route is required');
      const gate = new TcpGate({ name: flags.name ?? 'gate', follower: flags.follower ?? 'unix:/run/nfsha/gate.sock', routes, eventLog: flags.eventLog, tls: tlsFromFlags(flags) ?? { dir: GATE_TLS_DIR } });
      await gate.start();
      await runUntilSignal(() => gate.stop());
    });
}
