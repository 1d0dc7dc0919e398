import type { Command } from 'commander';
import { ConfigError } from '../common/settings';
import { masterOptionsSchema } from '../master/options';
import { startMaster } from '../master/master';
import type { HostRecord } from '../master/identity';
import { argvFlag, commaList, floatArg, intArg } from './options';
import { METRICS_LISTEN_FLAG, TLS_FLAGS, addFlags, settingsFrom, type FlagTable } from './flag-table';
import { runUntilSignal } from './lifecycle';

/** `--host esx-1=10.0.0.11,10.1.0.11` → a host record (storage IP, then management IP). */
export function parseHostFlag(text: string): HostRecord {
  const m = /^([^=]+)=([^,]*)(?:,(.*))?$/.exec(text);
  if (!m) throw new ConfigError(`--host ${JSON.stringify(text)}: expected id=storageIp[,mgmtIp]`);
  return { id: m[1], storageIp: m[2] || undefined, mgmtIp: m[3] || undefined };
}

/** Every master setting and its flag; master/options.ts documents each and holds its default. */
export const MASTER_FLAGS: FlagTable<typeof masterOptionsSchema> = {
  what: 'master',
  schema: masterOptionsSchema,
  fileOnly: {},
  rows: [
    { flag: '--id <id>', key: 'id', help: 'this master\'s id, shown in status' },
    { flag: '--listen <addr>', key: 'listen', help: 'gRPC listen address, host:port or unix:/path' },
    { flag: '--ttl-ms <ms>', key: 'sessionTtlMs', parse: intArg, help: 'session TTL: without a keepalive for this long a session expires' },
    { flag: '--keepalive-ms <ms>', key: 'keepaliveIntervalMs', parse: intArg, help: 'keepalive interval followers are told to use' },
    { flag: '--drift <ratio>', key: 'clockDriftBound', parse: floatArg, help: 'clock drift bound; a silent holder is waited out TTL×(1+drift)+margin' },
    { flag: '--margin-ms <ms>', key: 'graceMarginMs', parse: intArg, help: 'extra wait after TTL×(1+drift) before granting away' },
    { flag: '--revoke-ack-timeout-ms <ms>', key: 'revokeAckTimeoutMs', parse: intArg, help: 'how long a connected holder may be silent about a revoke before it is condemned' },
    { flag: '--revoke-drain-limit-ms <ms>', key: 'revokeDrainLimitMs', parse: intArg, help: 'longest a holder that reports drain progress is waited for' },
    { flag: '--fence-agent <argv>', key: 'fenceAgent', parse: (t) => argvFlag(t, '--fence-agent'), help: 'run against a silent holder\'s SCVM before its client moves ({server}, {host}, {storage_ip}, {mgmt_ip} replaced); exit 0 once it cannot serve. JSON array or words split on spaces' },
    { flag: '--fence-agent-timeout-ms <ms>', key: 'fenceAgentTimeoutMs', parse: intArg, help: 'longest one fence agent run may take' },
    { flag: '--epoch <n>', key: 'epoch', parse: intArg, help: 'leader epoch for fencing tokens; unset: the start time in ms' },
    { flag: '--state-dir <dir>', key: 'stateDir', help: 'embedded master: keep the last epoch and the registry of servers and hosts here (a restart after a wall-clock step back still issues larger tokens, and knows whom to wait for and fence)' },
    { flag: '--host <id=storageIp[,mgmtIp]>', key: 'hosts', parse: (t, prev) => [...(prev as HostRecord[] | undefined ?? []), parseHostFlag(t)], help: 'a known ESXi host, for client identity (repeatable)' },
    { flag: '--local-client-ip <ip>', key: 'localClientIp', help: 'the private address hosts use towards their own SCVM' },
    { flag: '--max-message-bytes <n>', key: 'maxMessageBytes', parse: intArg, help: 'largest inbound gRPC message' },
    { flag: '--etcd <endpoints>', key: 'etcdEndpoints', parse: commaList, help: 'etcd endpoints (host:port,…): campaign for leadership among candidates instead of the embedded single master' },
    { flag: '--advertise <addr>', key: 'advertise', help: 'the address other nodes reach this master at, named in "not leader" redirects; empty: the listen address' },
    METRICS_LISTEN_FLAG,
    { flag: '--http-listen <addr>', key: 'httpListen', help: 'serve the HTTPS JSON API (GET /v1/status, /v1/members, /healthz; POST /v1/deploy) on host:port, mTLS like gRPC' },
    { flag: '--bundle-dir <dir>', key: 'bundleDir', help: 'the agent bundle the Deploy call installs when a request names none' },
    { flag: '--deploy-state-dir <dir>', key: 'deployStateDir', help: 'where the Deploy call keeps the cluster credentials; the CA is in its pki/, where "nfsha init" puts it' },
    { flag: '--election-ttl-s <s>', key: 'electionTtlSeconds', parse: intArg, help: 'etcd election lease in whole seconds; the leader steps down on its own timer before it runs out' },
    { flag: '--max-sessions <n>', key: 'limits.maxSessions', parse: intArg, help: 'limit: sessions held at once' },
    { flag: '--max-clients-per-session <n>', key: 'limits.maxClientsPerSession', parse: intArg, help: 'limit: clients one session may own' },
    { flag: '--max-pending-logins <n>', key: 'limits.maxPendingLogins', parse: intArg, help: 'limit: logins in flight, in all' },
    { flag: '--max-pending-logins-per-session <n>', key: 'limits.maxPendingLoginsPerSession', parse: intArg, help: 'limit: logins in flight from one session' },
    { flag: '--introductions-per-second <r>', key: 'limits.introductionsPerSecond', parse: floatArg, help: 'limit: introductions per second per server id (burst: --introduction-burst)' },
    { flag: '--introduction-burst <n>', key: 'limits.introductionBurst', parse: intArg, help: 'limit: introductions one server id may make at once' },
    TLS_FLAGS,
  ],
};

export function registerMaster(program: Command): void {
  const command = program
    .command('master')
    .description('Run the Session Master (embedded single master: no etcd needed).');
  addFlags(command, MASTER_FLAGS)
    .action(async (flags) => {
      const master = await startMaster(settingsFrom(MASTER_FLAGS, flags));
      await runUntilSignal(() => master.close());
    });
}
