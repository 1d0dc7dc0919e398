import type { Command } from 'commander';
import { DEFAULT_MASTER_ADDRESS } from '../common/settings';
import { deadlineIn } from '../common/grpc-client';
import { fetchStatus } from '../common/status-client';
import { leaderClient } from './leader-client';
import type { ClusterStatusReply__Output } from '../gen/nfsha/v1/ClusterStatusReply';
import type { SetMaintenanceReply__Output } from '../gen/nfsha/v1/SetMaintenanceReply';
import type { TlsSettings } from '../common/tls';
import { addTlsOptions, intArg, opt, optDefault, operatorTls } from './options';

/** Asks the leader (found among the candidates) to put a server in maintenance or take it out. */
async function setMaintenance(masters: string, serverId: string, enter: boolean, reason: string, timeoutMs: number, tls: TlsSettings, force = false): Promise<SetMaintenanceReply__Output> {
  const client = await leaderClient(masters, timeoutMs, tls);
  return new Promise((resolve, reject) => {
    client.SetMaintenance({ serverId, enter, reason, force }, { deadline: deadlineIn(timeoutMs) }, (err, reply) => {
      client.close();
      if (err) reject(new Error(`maintenance ${enter ? 'enter' : 'exit'} ${serverId}: ${err.details || err.message}`));
      else resolve(reply!);
    });
  });
}

/** Hosts (client ids) the server still serves, and why each may be stuck there. */
export function stillServed(status: ClusterStatusReply__Output, serverId: string): Array<{ clientId: string; why: string }> {
  const inMaintenance = new Set(status.maintenance.map((m) => m.serverId));
  const targets = status.sessions.filter((s) => s.state === 'live' && s.serverId !== serverId && !inMaintenance.has(s.serverId));
  return status.clients.filter((c) => c.serverId === serverId).map((c) => {
    const hostId = c.clientId.startsWith('host:') ? c.clientId.slice('host:'.length) : '';
    const host = status.hosts.find((h) => h.hostId === hostId);
    const held = status.held.find((h) => h.clientId === c.clientId);
    const why = held ? `held: ${held.reason}`
      : c.loginPending ? 'its login elsewhere waits for the revoke to drain'
        : host && !host.agentConnected ? `the agent of ${hostId} is not connected to the master`
          : host && !host.agentKnowsLeaving ? `the agent of ${hostId} is too old to act on maintenance (upgrade agents first)`
            : targets.length === 0 ? 'no other Access Server is live and out of maintenance to move to'
              : host?.route === 'remote' && host.targetServerId === serverId ? `${hostId} is still routed to ${serverId}` : 'not moved yet';
    return { clientId: c.clientId, why };
  });
}

/** Follows the status until the server serves no host, printing each host as it moves; false at the timeout. */
async function waitUntilEmpty(masters: string, serverId: string, timeoutMs: number, callTimeoutMs: number, tls: TlsSettings): Promise<boolean> {
  const started = Date.now();
  let before = new Set<string>();
  let first = true;
  for (;;) {
    let status: ClusterStatusReply__Output | undefined;
    try {
      status = await fetchStatus(masters, callTimeoutMs, tls);
    } catch (err) {
      process.stderr.write(`status: ${(err as Error).message}; retrying\n`);
    }
    if (status?.leader) {
      const left = stillServed(status, serverId);
      const now = new Set(left.map((x) => x.clientId));
      if (first) process.stdout.write(`${serverId} serves ${now.size} host${now.size === 1 ? '' : 's'}${now.size ? `: ${[...now].join(', ')}` : ''}\n`);
      for (const id of before) {
        if (now.has(id)) continue;
        const moved = status.clients.find((c) => c.clientId === id);
        process.stdout.write(moved
          ? `${id} moved to ${moved.serverId} after ${((Date.now() - started) / 1000).toFixed(1)} s (its login waited ${moved.loginMs} ms)\n`
          : `${id} left ${serverId} (no server holds it now)\n`);
      }
      first = false;
      before = now;
      if (now.size === 0) return true;
      if (Date.now() - started >= timeoutMs) {
        process.stderr.write(`${serverId} still serves ${left.length} host${left.length === 1 ? '' : 's'} after ${Math.round(timeoutMs / 1000)} s:\n`);
        for (const x of left) process.stderr.write(`  ${x.clientId}: ${x.why}\n`);
        return false;
      }
    } else if (Date.now() - started >= timeoutMs) {
      process.stderr.write(`no leader answered within ${Math.round(timeoutMs / 1000)} s\n`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function registerMaintenance(program: Command): void {
  const group = program
    .command('maintenance')
    .description('Planned maintenance of an Access Server (SCVM): move its hosts away before it goes down, and keep them away until it is back.');
  const enter = group
    .command('enter')
    .argument('<server>', 'the Access Server (SCVM) id, e.g. scvm-1')
    .description('Put a server in maintenance: agents move each host it serves to its next healthy server at once (one revoke and drain per host) '
      + 'and route nothing to it; its session stays live. Survives master failover. Entering twice changes nothing.')
    .addOption(optDefault('--master <addr>', 'the master\'s gRPC address, or candidates separated by commas (the leader is found)', DEFAULT_MASTER_ADDRESS))
    .addOption(opt('--reason <text>', 'why, for the log and status (e.g. "upgrade to 0.9")'))
    .addOption(opt('--wait', 'return once the server serves no host, printing each host as it moves; exit 1 at the timeout naming the hosts still there and why'))
    .addOption(opt('--force', 'enter even when it is the last live server with working NFS out of maintenance (refused without it): prints the hosts left with no server'))
    .addOption(optDefault('--timeout <s>', 'how long --wait waits', 120).argParser(intArg))
    .addOption(optDefault('--timeout-ms <ms>', 'deadline of each call', 5000).argParser(intArg));
  addTlsOptions(enter)
    .action(async (serverId: string, flags) => {
      const tls = operatorTls(flags);
      const r = await setMaintenance(flags.master, serverId, true, flags.reason ?? '', flags.timeoutMs, tls, flags.force === true);
      process.stdout.write(`${serverId} ${r.changed ? 'is now' : 'was already'} in maintenance; ${r.clients} host${r.clients === 1 ? '' : 's'} still served there\n`);
      if (r.unservedClients.length) {
        // Forced past the last healthy server: its hosts have nowhere to go, so --wait would only time out.
        process.stderr.write(`warning (--force): no other live server with working NFS is out of maintenance; ${r.unservedClients.join(', ')} will have no server until ${serverId} leaves maintenance or another server comes up${flags.wait ? ' (not waiting: they cannot move)' : ''}\n`);
        return;
      }
      if (flags.wait && !(await waitUntilEmpty(flags.master, serverId, flags.timeout * 1000, flags.timeoutMs, tls))) process.exitCode = 1;
    });
  const exit = group
    .command('exit')
    .argument('<server>', 'the Access Server (SCVM) id, e.g. scvm-1')
    .description('Take a server out of maintenance: hosts whose local server it is fail back after their hold-down. Leaving twice changes nothing.')
    .addOption(optDefault('--master <addr>', 'the master\'s gRPC address, or candidates separated by commas (the leader is found)', DEFAULT_MASTER_ADDRESS))
    .addOption(opt('--reason <text>', 'why, for the log'))
    .addOption(optDefault('--timeout-ms <ms>', 'deadline of each call', 5000).argParser(intArg));
  addTlsOptions(exit)
    .action(async (serverId: string, flags) => {
      const r = await setMaintenance(flags.master, serverId, false, flags.reason ?? '', flags.timeoutMs, operatorTls(flags));
      process.stdout.write(`${serverId} ${r.changed ? 'left' : 'was not in'} maintenance\n`);
    });
}
