import type { Command } from 'commander';
import { DEFAULT_MASTER_ADDRESS } from '../common/settings';
import { deadlineIn } from '../common/grpc-client';
import { leaderClient } from './leader-client';
import type { ConfirmFenceReply__Output } from '../gen/nfsha/v1/ConfirmFenceReply';
import type { TlsSettings } from '../common/tls';
import { addTlsOptions, intArg, opt, optDefault, operatorTls } from './options';

/** Asks the leader (found among the candidates) to record the confirmation. */
async function confirmFence(masters: string, serverId: string, reason: string, timeoutMs: number, tls: TlsSettings): Promise<ConfirmFenceReply__Output> {
  const client = await leaderClient(masters, timeoutMs, tls);
  return new Promise((resolve, reject) => {
    client.ConfirmFence({ serverId, reason }, { deadline: deadlineIn(timeoutMs) }, (err, reply) => {
      client.close();
      if (err) reject(new Error(`fence-confirm ${serverId}: ${err.details || err.message}`));
      else resolve(reply!);
    });
  });
}

export function registerFenceConfirm(program: Command): void {
  const command = program
    .command('fence-confirm')
    .argument('<server>', 'the Access Server (SCVM) id, e.g. scvm-1')
    .description('Confirm by hand that an Access Server\'s NFS server has stopped (Pacemaker\'s manual fence confirmation): '
      + 'ends the holds on its clients. Only after checking it: the SCVM is powered off or isolated, or its NFS server process is gone. '
      + 'A wrong confirmation lets two servers write the same file. Recorded in the master\'s log with your certificate\'s identity.')
    .addOption(optDefault('--master <addr>', 'the master\'s gRPC address, or candidates separated by commas (the leader is found)', DEFAULT_MASTER_ADDRESS))
    .addOption(opt('--reason <text>', 'what you checked, for the log (e.g. "SCVM powered off in vCenter")'))
    .addOption(optDefault('--timeout-ms <ms>', 'deadline of each call', 5000).argParser(intArg));
  addTlsOptions(command)
    .action(async (serverId: string, flags) => {
      const r = await confirmFence(flags.master, serverId, flags.reason ?? '', flags.timeoutMs, operatorTls(flags));
      process.stdout.write(`fence of ${serverId} confirmed (${r.sessions} session${r.sessions === 1 ? '' : 's'}); `
        + (r.released.length ? `clients released: ${r.released.join(', ')}\n` : 'no client was held\n'));
    });
}
