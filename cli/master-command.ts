import type { Command } from 'commander';
import { readConfigFile, validate, masterConfigSchema, ConfigError } from '../common/config';
import { DEFAULT_MASTER_OPTIONS, type MasterOptions } from '../master/options';
import { startMaster } from '../master/master';
import type { HostRecord } from '../master/identity';
import { addTlsOptions, argvFlag, collect, commaList, defined, floatArg, intArg, opt, tlsFromFlags } from './options';
import { runUntilSignal } from './lifecycle';

/** `--host esx-1=10.0.0.11,10.1.0.11` → a host record (storage IP, then management IP). */
export function parseHostFlag(text: string): HostRecord {
  const m = /^([^=]+)=([^,]*)(?:,(.*))?$/.exec(text);
  if (!m) throw new ConfigError(`--host ${JSON.stringify(text)}: expected id=storageIp[,mgmtIp]`);
  return { id: m[1], storageIp: m[2] || undefined, mgmtIp: m[3] || undefined };
}

export function registerMaster(program: Command): void {
  const d = DEFAULT_MASTER_OPTIONS;
  const command = program
    .command('master')
    .description('Run the Session Master (embedded single master: no etcd needed).')
    .addOption(opt('-c, --config <file>', 'JSON config file; flags override it'))
    .addOption(opt('--id <id>', 'this master\'s id, shown in status', d.id))
    .addOption(opt('--listen <addr>', 'gRPC listen address, host:port or unix:/path', d.listen))
    .addOption(opt('--ttl-ms <ms>', 'session TTL: without a keepalive for this long a session expires', d.sessionTtlMs).argParser(intArg))
    .addOption(opt('--keepalive-ms <ms>', 'keepalive interval followers are told to use', d.keepaliveIntervalMs).argParser(intArg))
    .addOption(opt('--drift <ratio>', 'clock drift bound; a silent holder is waited out TTL×(1+drift)+margin', d.clockDriftBound).argParser(floatArg))
    .addOption(opt('--margin-ms <ms>', 'extra wait after TTL×(1+drift) before granting away', d.graceMarginMs).argParser(intArg))
    .addOption(opt('--revoke-ack-timeout-ms <ms>', 'how long a connected holder may be silent about a revoke before it is condemned', d.revokeAckTimeoutMs).argParser(intArg))
    .addOption(opt('--revoke-drain-limit-ms <ms>', 'longest a holder that reports drain progress is waited for', d.revokeDrainLimitMs).argParser(intArg))
    .addOption(opt('--fence-agent <argv>', 'run against a silent holder\'s SCVM before its client moves ({server}, {host}, {storage_ip}, {mgmt_ip} replaced); exit 0 once it cannot serve. JSON array or words split on spaces'))
    .addOption(opt('--fence-agent-timeout-ms <ms>', 'longest one fence agent run may take', d.fenceAgentTimeoutMs).argParser(intArg))
    .addOption(opt('--epoch <n>', 'leader epoch for fencing tokens', 'start time in ms').argParser(intArg))
    .addOption(opt('--state-dir <dir>', 'embedded master: keep the last epoch and the registry of servers and hosts here (a restart after a wall-clock step back still issues larger tokens, and knows whom to wait for and fence)'))
    .addOption(opt('--host <id=storageIp[,mgmtIp]>', 'a known ESXi host, for client identity (repeatable)').argParser(collect))
    .addOption(opt('--local-client-ip <ip>', 'the private address hosts use towards their own SCVM', d.localClientIp))
    .addOption(opt('--max-message-bytes <n>', 'largest inbound gRPC message', d.maxMessageBytes).argParser(intArg))
    .addOption(opt('--etcd <endpoints>', 'etcd endpoints (host:port,…): campaign for leadership among candidates instead of the embedded single master'))
    .addOption(opt('--advertise <addr>', 'the address other nodes reach this master at, named in "not leader" redirects', 'the listen address'))
    .addOption(opt('--metrics-listen <addr>', 'serve Prometheus metrics on http://<addr>/metrics'))
    .addOption(opt('--http-listen <addr>', 'serve the HTTPS JSON API (GET /v1/status, /v1/members, /healthz; POST /v1/deploy) on host:port, mTLS like gRPC'))
    .addOption(opt('--bundle-dir <dir>', 'the agent bundle the Deploy call installs when a request names none'))
    .addOption(opt('--deploy-state-dir <dir>', 'where the Deploy call keeps the cluster credentials', d.deployStateDir))
    .addOption(opt('--election-ttl-s <s>', 'etcd election lease in whole seconds; the leader steps down on its own timer before it runs out', d.electionTtlSeconds).argParser(intArg))
    .addOption(opt('--max-sessions <n>', 'limit: sessions held at once', d.limits.maxSessions).argParser(intArg))
    .addOption(opt('--max-clients-per-session <n>', 'limit: clients one session may own', d.limits.maxClientsPerSession).argParser(intArg))
    .addOption(opt('--max-pending-logins <n>', 'limit: logins in flight, in all', d.limits.maxPendingLogins).argParser(intArg))
    .addOption(opt('--max-pending-logins-per-session <n>', 'limit: logins in flight from one session', d.limits.maxPendingLoginsPerSession).argParser(intArg))
    .addOption(opt('--introductions-per-second <r>', 'limit: introductions per second per server id (burst: --introduction-burst)', d.limits.introductionsPerSecond).argParser(floatArg))
    .addOption(opt('--introduction-burst <n>', 'limit: introductions one server id may make at once', d.limits.introductionBurst).argParser(intArg));
  addTlsOptions(command)
    .action(async (flags) => {
      const file = readConfigFile(flags.config);
      const merged = {
        ...d,
        ...file,
        ...defined({
          id: flags.id,
          listen: flags.listen,
          sessionTtlMs: flags.ttlMs,
          keepaliveIntervalMs: flags.keepaliveMs,
          clockDriftBound: flags.drift,
          graceMarginMs: flags.marginMs,
          revokeAckTimeoutMs: flags.revokeAckTimeoutMs,
          revokeDrainLimitMs: flags.revokeDrainLimitMs,
          fenceAgent: flags.fenceAgent === undefined ? undefined : argvFlag(flags.fenceAgent, '--fence-agent'),
          fenceAgentTimeoutMs: flags.fenceAgentTimeoutMs,
          epoch: flags.epoch,
          stateDir: flags.stateDir,
          hosts: flags.host ? (flags.host as string[]).map(parseHostFlag) : undefined,
          localClientIp: flags.localClientIp,
          maxMessageBytes: flags.maxMessageBytes,
          etcdEndpoints: flags.etcd ? commaList(flags.etcd) : undefined,
          advertise: flags.advertise,
          electionTtlSeconds: flags.electionTtlS,
          bundleDir: flags.bundleDir,
          metricsListen: flags.metricsListen,
          httpListen: flags.httpListen,
          deployStateDir: flags.deployStateDir,
          tls: tlsFromFlags(flags),
        }),
        limits: {
          ...d.limits,
          ...(file.limits as object | undefined),
          ...defined({
            maxSessions: flags.maxSessions,
            maxClientsPerSession: flags.maxClientsPerSession,
            maxPendingLogins: flags.maxPendingLogins,
            maxPendingLoginsPerSession: flags.maxPendingLoginsPerSession,
            introductionsPerSecond: flags.introductionsPerSecond,
            introductionBurst: flags.introductionBurst,
          }),
        },
      };
      const options = validate(masterConfigSchema, merged, 'master') as MasterOptions;
      const master = await startMaster(options);
      await runUntilSignal(() => master.close());
    });
}
