import * as fs from 'node:fs';
import type { Command } from 'commander';
import { ConfigError } from '../common/settings';
import { createLogger } from '../common/log';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_DEPLOY_DIR, deploy, type HostReport, type StepResult } from '../deploy/deploy';
import { nfshaGrpc, type DeployerClient } from '../common/proto';
import type { DeployRequest } from '../gen/nfsha/v1/DeployRequest';
import type { DeployEvent__Output } from '../gen/nfsha/v1/DeployEvent';
import { readInventory } from '../deploy/inventory';
import { fetchStatus } from '../common/status-client';
import { addTlsOptions, intArg, opt, optDefault, operatorTls } from './options';
import type { TlsSettings } from '../common/tls';
import { masterClient } from '../common/master-endpoints';
import { renderTable } from './table';

export function formatDeploy(reports: HostReport[]): string {
  const ok = reports.filter((r) => !r.error).length;
  return renderTable(['HOST', 'KEY', 'BUNDLE', 'CONFIG', 'AGENT', 'REGISTERED', 'ERROR'],
    reports.map((r) => [r.hostId, r.key, r.bundle, r.config, r.agent, r.registered ? 'yes' : 'no', r.error ?? '']))
    + `\n\n${ok} of ${reports.length} hosts deployed${reports.every((r) => !r.error && r.key === 'unchanged' && r.bundle === 'unchanged' && r.config === 'unchanged' && r.agent === 'unchanged') ? '; nothing changed' : ''}`;
}

/** Runs a deployment through a master's nfsha.v1.Deployer API, relaying its progress to stderr. */
function deployViaMaster(master: string, request: DeployRequest, tls: TlsSettings): Promise<HostReport[]> {
  const client = masterClient<DeployerClient>(nfshaGrpc().Deployer, master, tls);
  return new Promise((resolve, reject) => {
    const reports: HostReport[] = [];
    const call = client.Deploy(request);
    call.on('data', (e: DeployEvent__Output) => {
      if (e.progress) process.stderr.write(`${e.progress.hostId}: ${e.progress.step}\n`);
      if (e.report) {
        const r = e.report;
        reports.push({ hostId: r.hostId, key: r.key as StepResult, bundle: r.bundle as StepResult, config: r.config as StepResult, agent: r.agent as StepResult, registered: r.registered, error: r.error || undefined });
      }
    });
    call.on('error', (err: grpc.ServiceError) => { client.close(); reject(new Error(`deploy via ${master}: ${err.details || err.message}`)); });
    call.on('end', () => { client.close(); resolve(reports); });
  });
}

export function registerDeploy(program: Command): void {
  const command = program
    .command('deploy')
    .description('Install the agent bundle on every ESXi host of an inventory over SSH, configure and start it, and wait until each agent registered. Idempotent and resumable.')
    .requiredOption('--inventory <file>', 'JSON inventory: {"masters": "…", "hosts": [{"hostId", "address", "localServerId", …}], "agent": {…}}')
    .requiredOption('--bundle <dir>', 'the unpacked bundle directory (npm run build:bundle makes out/nfsha-agent-<version>/)')
    .addOption(optDefault('--state-dir <dir>', 'where the cluster credentials are kept, created once; the CA is in its pki/, where "nfsha init" puts it', DEFAULT_DEPLOY_DIR))
    .addOption(opt('--identity <file>', 'the operator\'s private key for hosts that do not have the cluster key yet'))
    .addOption(opt('--password-env <var>', 'environment variable holding the operator\'s password (instead of --identity)'))
    .addOption(optDefault('--register-timeout-ms <ms>', 'how long to wait for each agent to register', 30_000).argParser(intArg))
    .addOption(opt('--via-master <addr>', 'ask this master to deploy (its Deployer API) instead of deploying from here; --bundle is then a path on the master\'s machine'))
    .addOption(opt('--json', 'print the per-host report as JSON'));
  addTlsOptions(command)
    .action(async (flags) => {
      const inventory = readInventory(flags.inventory);
      // The operator's own identity, for the masters (status, --via-master).
      const tls: TlsSettings = operatorTls(flags);
      if (flags.viaMaster) {
        const reports = await deployViaMaster(flags.viaMaster, {
          inventoryJson: JSON.stringify(inventory),
          bundleDir: flags.bundle,
          operatorPrivateKey: flags.identity ? fs.readFileSync(flags.identity, 'utf8') : '',
          operatorPassword: flags.passwordEnv ? process.env[flags.passwordEnv] ?? '' : '',
          registerTimeoutMs: flags.registerTimeoutMs,
        }, tls);
        process.stdout.write(flags.json ? JSON.stringify(reports, null, 2) + '\n' : formatDeploy(reports) + '\n');
        if (reports.some((r) => r.error)) process.exitCode = 1;
        return;
      }
      if (!fs.existsSync(`${flags.bundle}/descriptor.xml`)) throw new ConfigError(`--bundle ${flags.bundle}: no descriptor.xml there`);
      const password = flags.passwordEnv ? process.env[flags.passwordEnv] : undefined;
      if (flags.passwordEnv && !password) throw new ConfigError(`--password-env ${flags.passwordEnv}: the variable is not set`);
      const reports = await deploy({
        inventory,
        bundleDir: flags.bundle,
        stateDir: flags.stateDir,
        operator: { privateKey: flags.identity ? fs.readFileSync(flags.identity) : undefined, password },
        isRegistered: async (hostId) => (await fetchStatus(inventory.masters, 2000, tls)).hosts.some((h) => h.hostId === hostId && h.agentConnected),
        registerTimeoutMs: flags.registerTimeoutMs,
        log: createLogger('deploy', {}, 2), // stdout carries the report
        progress: (hostId, step) => process.stderr.write(`${hostId}: ${step}\n`),
      });
      process.stdout.write(flags.json ? JSON.stringify(reports, null, 2) + '\n' : formatDeploy(reports) + '\n');
      if (reports.some((r) => r.error)) process.exitCode = 1;
    });
}
