import type { Command } from 'commander';
import { readConfigFile, validate, followerConfigSchema } from '../common/config';
import { DEFAULT_FOLLOWER_OPTIONS, type FollowerOptions } from '../follower/options';
import { Follower } from '../follower/follower';
import { addTlsOptions, argvFlag, commaList, defined, intArg, opt, tlsFromFlags } from './options';
import { runUntilSignal } from './lifecycle';

export function registerFollower(program: Command): void {
  const d = DEFAULT_FOLLOWER_OPTIONS;
  const command = program
    .command('follower')
    .description('Run the Session Follower of one Access Server: session with the master, gate API for the NFS layer.')
    .addOption(opt('-c, --config <file>', 'JSON config file; flags override it'))
    .addOption(opt('--server-id <id>', 'this Access Server\'s id, unique in the cluster (required)'))
    .addOption(opt('--host-id <id>', 'the ESXi host this SCVM runs on (its 192.168.33.1 clients are that host)'))
    .addOption(opt('--storage-ip <ip>', 'this SCVM\'s storage-network IP'))
    .addOption(opt('--mgmt-ip <ip>', 'this SCVM\'s management IP'))
    .addOption(opt('--master <addr>', 'the master\'s gRPC address, or master candidates separated by commas', d.master))
    .addOption(opt('--gate-listen <addr>', 'gate API for the NFS layer: unix:/path or 127.0.0.1:port', d.gateListen))
    .addOption(opt('--admit-timeout-ms <ms>', 'longest an admit may wait for the master\'s grant', d.admitTimeoutMs).argParser(intArg))
    .addOption(opt('--logout-timeout-ms <ms>', 'deadline of a logout call', d.logoutTimeoutMs).argParser(intArg))
    .addOption(opt('--max-message-bytes <n>', 'largest inbound gRPC message on the gate API', d.maxMessageBytes).argParser(intArg))
    .addOption(opt('--metrics-listen <addr>', 'serve Prometheus metrics on http://<addr>/metrics'))
    .addOption(opt('--http-listen <addr>', 'serve the HTTPS JSON API (GET /v1/status, /healthz) on host:port, mTLS like gRPC'))
    .addOption(opt('--max-gate-watchers <n>', 'limit: NFS layers watching the gate stream at once', d.maxGateWatchers).argParser(intArg))
    .addOption(opt('--max-pending-admits <n>', 'limit: admits waiting for the master at once', d.maxPendingAdmits).argParser(intArg))
    .addOption(opt('--nfs-probe <targets>', 'probe the local NFS server with RPC NULL calls: nfs@host:port,mount@host:port (health reported to the master)'))
    .addOption(opt('--nfs-probe-interval-ms <ms>', 'NFS probe period', d.nfsProbeIntervalMs).argParser(intArg))
    .addOption(opt('--nfs-misses <n>', 'unanswered NFS probes in a row that make the NFS service down', d.nfsMissesToFail).argParser(intArg))
    .addOption(opt('--fence-command <argv>', 'fences the local NFS server, returning once its process is gone: a JSON array or words split on spaces (no shell)'))
    .addOption(opt('--fence-timeout-ms <ms>', 'longest a fence command may run', d.fenceTimeoutMs).argParser(intArg))
    .addOption(opt('--fence-lead-ms <ms>', 'E: fence the NFS server at lease deadline − E unless its NFS layers confirmed they stopped', d.fenceLeadMs).argParser(intArg));
  addTlsOptions(command)
    .action(async (flags) => {
      const merged = {
        ...d,
        ...readConfigFile(flags.config),
        ...defined({
          metricsListen: flags.metricsListen,
          httpListen: flags.httpListen,
          serverId: flags.serverId,
          hostId: flags.hostId,
          storageIp: flags.storageIp,
          mgmtIp: flags.mgmtIp,
          master: flags.master,
          gateListen: flags.gateListen,
          admitTimeoutMs: flags.admitTimeoutMs,
          logoutTimeoutMs: flags.logoutTimeoutMs,
          maxMessageBytes: flags.maxMessageBytes,
          maxGateWatchers: flags.maxGateWatchers,
          maxPendingAdmits: flags.maxPendingAdmits,
          nfsProbe: flags.nfsProbe === undefined ? undefined : commaList(flags.nfsProbe),
          nfsProbeIntervalMs: flags.nfsProbeIntervalMs,
          nfsMissesToFail: flags.nfsMisses,
          fenceCommand: flags.fenceCommand === undefined ? undefined : argvFlag(flags.fenceCommand, '--fence-command'),
          fenceTimeoutMs: flags.fenceTimeoutMs,
          fenceLeadMs: flags.fenceLeadMs,
          tls: tlsFromFlags(flags),
        }),
      };
      const options = validate(followerConfigSchema, merged, 'follower') as FollowerOptions;
      const follower = new Follower(options);
      await follower.start();
      await runUntilSignal(() => follower.stop());
    });
}
