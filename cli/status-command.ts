import type { Command } from 'commander';
import { fetchStatus, statusOf } from '../common/status-client';
import type { ClusterStatusReply__Output } from '../gen/nfsha/v1/ClusterStatusReply';
import { addTlsOptions, intArg, opt, optDefault, operatorTls } from './options';
import { DEFAULT_MASTER_ADDRESS } from '../common/settings';
import type { TlsSettings } from '../common/tls';
import { renderTable } from './table';

export function formatStatus(s: ClusterStatusReply__Output): string {
  if (!s.leader) {
    return `master ${s.masterId} is not the leader; ${s.leaderAddress ? `the leader is ${s.leaderId} at ${s.leaderAddress}` : 'no leader is elected right now'}`;
  }
  const live = s.sessions.filter((x) => x.state === 'live').length;
  const head = `master ${s.masterId}  epoch ${s.epoch}  leader${s.ready ? '' : ' (grace period: no logins yet)'}  ttl ${s.ttlMs} ms  sessions ${live} live / ${s.sessions.length}  clients ${s.clients.length}`;
  const sessions = renderTable(
    ['SERVER', 'SESSION', 'STATE', 'HOST', 'STORAGE IP', 'MGMT IP', 'LAST KEEPALIVE', 'CLIENTS', 'FENCING'],
    [...s.sessions].sort((a, b) => a.serverId.localeCompare(b.serverId)).map((x) => [
      x.serverId, x.sessionId, x.state + (x.connected ? '' : ' (detached)'), x.hostId || '-', x.storageIp || '-', x.mgmtIp || '-', `${x.sinceKeepaliveMs} ms ago`, x.clients,
      (x.fencing || 'none') + (x.fencingDetail ? `: ${x.fencingDetail.length > 50 ? x.fencingDetail.slice(0, 47) + '...' : x.fencingDetail}` : ''),
    ]),
  );
  const held = s.held.length
    ? ['HELD (waiting for a drain, a fence, or `nfsha fence-confirm <server>`):', renderTable(['CLIENT', 'HELD BY', 'FOR', 'WHY'],
        s.held.map((h) => [h.clientId, h.serverId, `${Math.round(h.sinceMs / 1000)} s`, h.reason])), ''].join('\n')
    : '';
  const maintenance = s.maintenance.length
    ? ['IN MAINTENANCE (`nfsha maintenance exit <server>` ends it):', renderTable(['SERVER', 'FOR', 'BY', 'HOSTS STILL THERE', 'WHY'],
        s.maintenance.map((m) => [m.serverId, `${Math.round(Number(m.sinceMs) / 1000)} s`, m.operator, m.clients, m.reason])), ''].join('\n')
    : '';
  const clients = s.clients.length
    ? renderTable(
        ['CLIENT', 'OWNER', 'SESSION', 'TOKEN', 'LOGIN PENDING'],
        [...s.clients].sort((a, b) => a.clientId.localeCompare(b.clientId)).map((c) => [
          c.clientId, c.serverId || '-', c.sessionId, c.token ? `${c.token.epoch}.${c.token.sequence}` : '-', c.loginPending ? 'yes' : '',
        ]),
      )
    : '(no clients admitted)';
  const hosts = s.hosts.length
    ? renderTable(['HOST', 'STORAGE IP', 'MGMT IP', 'AGENT', 'ROUTE', 'REASON'], s.hosts.map((h) => [
        h.hostId, h.storageIp || '-', h.mgmtIp || '-',
        h.agentConnected ? 'connected' : h.route ? 'gone' : '-',
        h.route === 'remote' ? `via ${h.gateway}${h.targetServerId ? ` (${h.targetServerId})` : ''}` : h.route || '-',
        h.reason ? (h.reason.length > 60 ? h.reason.slice(0, 57) + '...' : h.reason) : '',
      ]))
    : '(no hosts registered)';
  return [head, '', sessions, '', ...(maintenance ? [maintenance] : []), ...(held ? [held] : []), clients, '', hosts].join('\n');
}

export function registerStatus(program: Command): void {
  const command = program
    .command('status')
    .description('Show the master\'s sessions, clients and their owners, and known hosts.')
    .addOption(optDefault('--master <addr>', 'the master\'s gRPC address, or candidates separated by commas (the leader is found)', DEFAULT_MASTER_ADDRESS))
    .addOption(opt('--json', 'print the raw status as JSON'))
    .addOption(optDefault('--timeout-ms <ms>', 'deadline of the status call', 3000).argParser(intArg))
    .addOption(opt('--watch [ms]', 'refresh every ms (default 1000) until interrupted').argParser(intArg));
  addTlsOptions(command)
    .action(async (flags) => {
      const master: string = flags.master;
      const tls: TlsSettings = operatorTls(flags);
      const show = async () => {
        const status = await fetchStatus(master, flags.timeoutMs, tls);
        return flags.json ? JSON.stringify(status, null, 2) : formatStatus(status);
      };
      if (flags.watch === undefined) {
        process.stdout.write((await show()) + '\n');
        return;
      }
      const every = flags.watch === true ? 1000 : flags.watch;
      for (;;) {
        const text = await show().catch((err: Error) => `(${err.message})`);
        // Clear the screen and home the cursor, like watch(1).
        process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  every ${every} ms  (Ctrl-C stops)\n\n${text}\n`);
        await new Promise((r) => setTimeout(r, every));
      }
    });
}

export { fetchStatus, statusOf };
