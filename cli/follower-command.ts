import { Option, type Command } from 'commander';
import { followerOptionsSchema } from '../follower/options';
import { Follower } from '../follower/follower';
import { argvFlag, commaList, intArg } from './options';
import { MASTER_ADDRESS_FLAG, METRICS_LISTEN_FLAG, TLS_FLAGS, addFlags, settingsFrom, type FlagGroup, type FlagTable } from './flag-table';
import { runUntilSignal } from './lifecycle';

/** --no-fence: commander stores it as `fence: false` (negated flags default to true), so it is read by hand. */
const NO_FENCE_FLAG: FlagGroup = {
  key: 'noFence',
  options: () => [new Option('--no-fence', 'run without a fence command, knowingly: revoked clients whose calls do not drain are held, and a dead follower\'s clients wait for `nfsha fence-confirm`; required off loopback when no --fence-command is given')],
  read: (flags) => (flags.fence === false ? true : undefined),
};

/** Every follower setting and its flag; follower/options.ts documents each and holds its default. */
export const FOLLOWER_FLAGS: FlagTable<typeof followerOptionsSchema> = {
  what: 'follower',
  schema: followerOptionsSchema,
  fileOnly: {
    gateReportIntervalMs: 'gate protocol timing the follower hands the NFS layers in its welcome; tuned rarely, and only together with gateSilentMs',
    gateSilentMs: 'must stay at least twice gateReportIntervalMs, so the pair is set together in the file',
  },
  rows: [
    { flag: '--server-id <id>', key: 'serverId', help: 'this Access Server\'s id, unique in the cluster (required)' },
    { flag: '--host-id <id>', key: 'hostId', help: 'the ESXi host this SCVM runs on (its 192.168.33.1 clients are that host)' },
    { flag: '--storage-ip <ip>', key: 'storageIp', help: 'this SCVM\'s storage-network IP' },
    { flag: '--mgmt-ip <ip>', key: 'mgmtIp', help: 'this SCVM\'s management IP' },
    MASTER_ADDRESS_FLAG,
    { flag: '--gate-listen <addr>', key: 'gateListen', help: 'gate API for the NFS layer: unix:/path or 127.0.0.1:port' },
    { flag: '--admit-timeout-ms <ms>', key: 'admitTimeoutMs', parse: intArg, help: 'longest an admit may wait for the master\'s grant' },
    { flag: '--logout-timeout-ms <ms>', key: 'logoutTimeoutMs', parse: intArg, help: 'deadline of a logout call' },
    { flag: '--max-message-bytes <n>', key: 'maxMessageBytes', parse: intArg, help: 'largest inbound gRPC message on the gate API' },
    METRICS_LISTEN_FLAG,
    { flag: '--http-listen <addr>', key: 'httpListen', help: 'serve the HTTPS JSON API (GET /v1/status, /healthz) on host:port, mTLS like gRPC' },
    { flag: '--max-gate-watchers <n>', key: 'maxGateWatchers', parse: intArg, help: 'limit: NFS layers watching the gate stream at once' },
    { flag: '--max-pending-admits <n>', key: 'maxPendingAdmits', parse: intArg, help: 'limit: admits waiting for the master at once' },
    { flag: '--nfs-probe <targets>', key: 'nfsProbe', parse: commaList, help: 'probe the local NFS server with RPC NULL calls: nfs@host:port,mount@host:port (health reported to the master)' },
    { flag: '--nfs-probe-interval-ms <ms>', key: 'nfsProbeIntervalMs', parse: intArg, help: 'NFS probe period' },
    { flag: '--nfs-misses <n>', key: 'nfsMissesToFail', parse: intArg, help: 'unanswered NFS probes in a row that make the NFS service down' },
    { flag: '--stale-reset-interfaces <ifs>', key: 'staleResetInterfaces', parse: commaList, help: 'storage and management interfaces (comma-separated) on which an nftables ingress rule resets a rerouted host\'s stale TCP segments (needs nft, CAP_NET_ADMIN)' },
    { flag: '--local-client-ip <ip>', key: 'localClientIp', help: 'the private address hosts use towards their own SCVM' },
    { flag: '--service-ip <ip>', key: 'serviceIp', help: 'the NFS address every host mounts from' },
    { flag: '--fence-command <argv>', key: 'fenceCommand', parse: (t) => argvFlag(t, '--fence-command'), help: 'fences the local NFS server, returning once its process is gone: a JSON array or words split on spaces (no shell)' },
    NO_FENCE_FLAG,
    { flag: '--fence-timeout-ms <ms>', key: 'fenceTimeoutMs', parse: intArg, help: 'longest a fence command may run; must fit fence lead + the master\'s wait-out slack (1050 ms at defaults)' },
    { flag: '--fence-lead-ms <ms>', key: 'fenceLeadMs', parse: intArg, help: 'E: fence the NFS server at lease deadline − E unless its NFS layers confirmed they stopped' },
    { flag: '--graceful-stop-ms <ms>', key: 'gracefulStopMs', parse: intArg, help: 'on SIGTERM or SIGINT, list this server leaving and wait this long for its hosts to move away before exiting (0: exit at once)' },
    TLS_FLAGS,
  ],
};

export function registerFollower(program: Command): void {
  const command = program
    .command('follower')
    .description('Run the Session Follower of one Access Server: session with the master, gate API for the NFS layer.');
  addFlags(command, FOLLOWER_FLAGS)
    .action(async (flags) => {
      const follower = new Follower(settingsFrom(FOLLOWER_FLAGS, flags));
      await follower.start();
      await runUntilSignal(() => follower.stopGracefully());
    });
}
