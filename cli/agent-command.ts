import type { Command } from 'commander';
import { agentConfigSchema, readConfigFile, validate } from '../common/config';
import { Agent } from '../agent/agent';
import { DEFAULT_AGENT_OPTIONS, type AgentOptions } from '../agent/options';
import { execRunner, type RouteBackend } from '../agent/routes/backend';
import { DryRunBackend } from '../agent/routes/dry-run';
import { EsxcliBackend } from '../agent/routes/esxcli';
import { Iproute2Backend } from '../agent/routes/iproute2';
import { sshRunner } from '../agent/routes/ssh-runner';
import { SshSession } from '../common/ssh';
import * as fs from 'node:fs';
import { addTlsOptions, defined, intArg, opt, tlsFromFlags } from './options';
import { runUntilSignal } from './lifecycle';

export function routeBackend(opts: AgentOptions): RouteBackend {
  switch (opts.backend) {
    case 'iproute2': return new Iproute2Backend(execRunner, opts.nfsAddress);
    case 'esxcli': return new EsxcliBackend(execRunner, opts.esxcliPath, opts.nfsAddress);
    case 'esxcli-ssh': {
      const key = fs.readFileSync(opts.sshKeyFile);
      const runner = sshRunner(() => SshSession.connect({ host: opts.sshHost, port: opts.sshPort, user: opts.sshUser }, { privateKey: key }));
      return new EsxcliBackend(runner, opts.esxcliPath, opts.nfsAddress);
    }
    case 'dry-run': return new DryRunBackend();
  }
}

export function registerAgent(program: Command): void {
  const d = DEFAULT_AGENT_OPTIONS;
  const command = program
    .command('agent')
    .description('Run the IO Reroute agent on an ESXi host: probe the SCVMs, follow the master\'s membership, own the route to the NFS address.')
    .addOption(opt('-c, --config <file>', 'JSON config file; flags override it'))
    .addOption(opt('--host-id <id>', 'this ESXi host\'s id (required)'))
    .addOption(opt('--local-server-id <id>', 'the Access Server on this host (required)'))
    .addOption(opt('--storage-ip <ip>', 'this host\'s storage-network IP, registered with the master'))
    .addOption(opt('--mgmt-ip <ip>', 'this host\'s management IP, registered with the master'))
    .addOption(opt('--master <addr>', 'the master\'s gRPC address, or master candidates separated by commas', d.master))
    .addOption(opt('--backend <name>', 'route backend: iproute2 | esxcli | esxcli-ssh | dry-run', d.backend))
    .addOption(opt('--esxcli <path>', 'the esxcli command on the host', d.esxcliPath))
    .addOption(opt('--ssh-host <addr>', 'esxcli-ssh: the ESXi host to run esxcli on over SSH'))
    .addOption(opt('--ssh-port <port>', 'esxcli-ssh: SSH port', d.sshPort).argParser(intArg))
    .addOption(opt('--ssh-user <user>', 'esxcli-ssh: SSH user', d.sshUser))
    .addOption(opt('--ssh-key <file>', 'esxcli-ssh: private key file (the cluster key nfsha deploy installs)'))
    .addOption(opt('--private-interface <if>', 'interface of the private link to the local SCVM; local probes are bound to it'))
    .addOption(opt('--nfs-address <ip>', 'the NFS address hosts mount from', d.nfsAddress))
    .addOption(opt('--probe-interval-ms <ms>', 'probe every this many ms', d.probeIntervalMs).argParser(intArg))
    .addOption(opt('--misses <n>', 'consecutive missed probes before a target is down', d.missesToFail).argParser(intArg))
    .addOption(opt('--hold-down-ms <ms>', 'local server healthy this long before failing back', d.holdDownMs).argParser(intArg))
    .addOption(opt('--tcp-probe-port <port>', 'also require a TCP connect to this port (0: ICMP only)', d.tcpProbePort).argParser(intArg))
    .addOption(opt('--metrics-listen <addr>', 'serve Prometheus metrics on http://<addr>/metrics'));
  addTlsOptions(command)
    .action(async (flags) => {
      const merged = {
        ...d,
        ...readConfigFile(flags.config),
        ...defined({
          metricsListen: flags.metricsListen,
          hostId: flags.hostId,
          localServerId: flags.localServerId,
          storageIp: flags.storageIp,
          mgmtIp: flags.mgmtIp,
          master: flags.master,
          backend: flags.backend,
          esxcliPath: flags.esxcli,
          sshHost: flags.sshHost,
          sshPort: flags.sshPort,
          sshUser: flags.sshUser,
          sshKeyFile: flags.sshKey,
          privateInterface: flags.privateInterface,
          nfsAddress: flags.nfsAddress,
          probeIntervalMs: flags.probeIntervalMs,
          missesToFail: flags.misses,
          holdDownMs: flags.holdDownMs,
          tcpProbePort: flags.tcpProbePort,
          tls: tlsFromFlags(flags),
        }),
      };
      const options = validate(agentConfigSchema, merged, 'agent') as AgentOptions;
      const agent = new Agent(options, routeBackend(options));
      agent.start();
      await runUntilSignal(async () => agent.stop());
    });
}
