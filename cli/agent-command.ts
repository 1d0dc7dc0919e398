import type { Command } from 'commander';
import { Agent } from '../agent/agent';
import { agentOptionsSchema, type AgentOptions } from '../agent/options';
import { execRunner, type RouteBackend } from '../agent/routes/backend';
import { DryRunBackend } from '../agent/routes/dry-run';
import { EsxcliBackend } from '../agent/routes/esxcli';
import { Iproute2Backend } from '../agent/routes/iproute2';
import { sshRunner } from '../agent/routes/ssh-runner';
import * as fs from 'node:fs';
import { intArg } from './options';
import { MASTER_ADDRESS_FLAG, METRICS_LISTEN_FLAG, TLS_FLAGS, addFlags, settingsFrom, type FlagTable } from './flag-table';
import { runUntilSignal } from './lifecycle';

export function routeBackend(opts: AgentOptions): RouteBackend {
  switch (opts.backend) {
    case 'iproute2': return new Iproute2Backend(execRunner, opts.nfsAddress, opts.socketReset === 'kill');
    case 'esxcli': return new EsxcliBackend(execRunner, opts.esxcliPath, opts.nfsAddress);
    case 'esxcli-ssh': {
      const key = fs.readFileSync(opts.sshKeyFile);
      // Loaded here, not at the top: only this backend needs SSH, and the ESXi
      // agent executable leaves it out (build/build-agent.mjs puts a stub here).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { SshSession } = require('../common/ssh') as typeof import('../common/ssh');
      const runner = sshRunner(() => SshSession.connect({ host: opts.sshHost, port: opts.sshPort, user: opts.sshUser }, { privateKey: key }));
      return new EsxcliBackend(runner, opts.esxcliPath, opts.nfsAddress);
    }
    case 'dry-run': return new DryRunBackend();
  }
}

/** Every agent setting and its flag; agent/options.ts documents each and holds its default. */
export const AGENT_FLAGS: FlagTable<typeof agentOptionsSchema> = {
  what: 'agent',
  schema: agentOptionsSchema,
  fileOnly: {
    peers: 'a list of member records, written by nfsha deploy into the agent\'s config file; too structured for a flag',
  },
  rows: [
    { flag: '--host-id <id>', key: 'hostId', help: 'this ESXi host\'s id (required)' },
    { flag: '--local-server-id <id>', key: 'localServerId', help: 'the Access Server on this host (required)' },
    { flag: '--storage-ip <ip>', key: 'storageIp', help: 'this host\'s storage-network IP, registered with the master' },
    { flag: '--mgmt-ip <ip>', key: 'mgmtIp', help: 'this host\'s management IP, registered with the master' },
    MASTER_ADDRESS_FLAG,
    { flag: '--backend <name>', key: 'backend', help: 'route backend: iproute2 | esxcli | esxcli-ssh | dry-run' },
    { flag: '--esxcli <path>', key: 'esxcliPath', help: 'the esxcli command on the host' },
    { flag: '--ssh-host <addr>', key: 'sshHost', help: 'esxcli-ssh: the ESXi host to run esxcli on over SSH' },
    { flag: '--ssh-port <port>', key: 'sshPort', parse: intArg, help: 'esxcli-ssh: SSH port' },
    { flag: '--ssh-user <user>', key: 'sshUser', help: 'esxcli-ssh: SSH user' },
    { flag: '--ssh-key <file>', key: 'sshKeyFile', help: 'esxcli-ssh: private key file (the cluster key nfsha deploy installs)' },
    { flag: '--socket-reset <mode>', key: 'socketReset', help: 'iproute2: after a switch, kill the host\'s sockets to the NFS address (ss -K), or none (as on ESXi: the SCVM side resets them)' },
    { flag: '--private-interface <if>', key: 'privateInterface', help: 'interface of the private link to the local SCVM; local probes are bound to it' },
    { flag: '--nfs-address <ip>', key: 'nfsAddress', help: 'the NFS address hosts mount from' },
    { flag: '--probe-interval-ms <ms>', key: 'probeIntervalMs', parse: intArg, help: 'probe the remote servers and decide every this many ms' },
    { flag: '--local-probe-interval-ms <ms>', key: 'localProbeIntervalMs', parse: intArg, help: 'probe the local SCVM every this many ms (its own loop; a local failure is acted on at once)' },
    { flag: '--misses <n>', key: 'missesToFail', parse: intArg, help: 'consecutive missed probes before a target is down' },
    { flag: '--hold-down-ms <ms>', key: 'holdDownMs', parse: intArg, help: 'local server healthy this long before failing back' },
    { flag: '--tcp-probe-port <port>', key: 'tcpProbePort', parse: intArg, help: 'also require a TCP connect to this port (0: ICMP only)' },
    METRICS_LISTEN_FLAG,
    TLS_FLAGS,
  ],
};

export function registerAgent(program: Command): void {
  const command = program
    .command('agent')
    .description('Run the IO Reroute agent on an ESXi host: probe the SCVMs, follow the master\'s membership, own the route to the NFS address.');
  addFlags(command, AGENT_FLAGS)
    .action(async (flags) => {
      const options = settingsFrom(AGENT_FLAGS, flags);
      const agent = new Agent(options, routeBackend(options));
      agent.start();
      await runUntilSignal(async () => agent.stop());
    });
}
