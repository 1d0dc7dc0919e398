import * as fs from 'node:fs';
import * as path from 'node:path';
import { utils } from 'ssh2';
import type { Logger } from '../../common/log';
import { authorizedKeysPath, type Inventory, type InventoryHost } from './inventory';
import { SshSession, type SshCredentials } from '../../common/ssh';

/** Per step: whether this run changed something on the host. */
export type StepResult = 'changed' | 'unchanged' | 'failed' | 'skipped';

export interface HostReport {
  hostId: string;
  key: StepResult;
  bundle: StepResult;
  config: StepResult;
  agent: StepResult;
  registered: boolean;
  error?: string;
}

export interface DeployOptions {
  inventory: Inventory;
  /** The unpacked bundle directory (descriptor.xml, payload.tgz, install.sh). */
  bundleDir: string;
  /** Where the cluster's credentials live (created on the first run). */
  stateDir: string;
  /** The operator's one-time credentials, used where the cluster key is not installed yet. */
  operator: SshCredentials;
  /** Whether the host's agent is registered with the master. */
  isRegistered: (hostId: string) => Promise<boolean>;
  registerTimeoutMs: number;
  log: Logger;
  progress: (hostId: string, step: string) => void;
}

/** The cluster SSH key pair, created once and reused by every later run. */
export function clusterKey(stateDir: string): { privateKey: Buffer; publicKey: string } {
  const priv = path.join(stateDir, 'cluster_ed25519');
  const pub = `${priv}.pub`;
  if (!fs.existsSync(priv)) {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'nfsha-cluster' });
    fs.writeFileSync(priv, pair.private, { mode: 0o600 });
    fs.writeFileSync(pub, pair.public + '\n');
  }
  return { privateKey: fs.readFileSync(priv), publicKey: fs.readFileSync(pub, 'utf8').trim() };
}

function sh(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The agent's config file for one host. */
export function agentConfig(inv: Inventory, h: InventoryHost): string {
  return JSON.stringify({
    hostId: h.hostId,
    localServerId: h.localServerId,
    storageIp: h.storageIp,
    mgmtIp: h.mgmtIp,
    master: inv.masters,
    ...inv.agent,
  }, null, 2) + '\n';
}

/**
 * Deploys the agent to every host: cluster key, bundle, config, agent, then
 * waits for its registration. Idempotent (a second run changes nothing) and
 * resumable (a host that already has the cluster key is reached with it);
 * one host's failure is reported without stopping the others.
 */
export async function deploy(opts: DeployOptions): Promise<HostReport[]> {
  const key = clusterKey(opts.stateDir);
  const version = (fs.readFileSync(path.join(opts.bundleDir, 'descriptor.xml'), 'utf8').match(/<version>([^<]+)<\/version>/) ?? [])[1];
  if (!version) throw new Error(`${opts.bundleDir}/descriptor.xml names no version`);
  return Promise.all(opts.inventory.hosts.map((h) => deployHost(opts, h, key, version)));
}

async function deployHost(opts: DeployOptions, h: InventoryHost, key: { privateKey: Buffer; publicKey: string }, version: string): Promise<HostReport> {
  const report: HostReport = { hostId: h.hostId, key: 'skipped', bundle: 'skipped', config: 'skipped', agent: 'skipped', registered: false };
  const step = (s: string) => opts.progress(h.hostId, s);
  const target = { host: h.address, port: h.port, user: h.user };
  let ssh: SshSession | undefined;
  try {
    step('connecting');
    ssh = await SshSession.connect(target, { privateKey: key.privateKey }).catch(() => undefined);
    if (ssh) {
      report.key = 'unchanged';
    } else {
      ssh = await SshSession.connect(target, opts.operator);
      const keys = authorizedKeysPath(h);
      step('installing the cluster key');
      await ssh.run(`mkdir -p ${sh(path.dirname(keys))} && touch ${sh(keys)} && (grep -qxF ${sh(key.publicKey)} ${sh(keys)} || echo ${sh(key.publicKey)} >> ${sh(keys)})`);
      report.key = 'changed';
    }
    const root = h.installRoot;
    const rootArg = root ? ` --root ${sh(root)}` : '';
    const installed = (await ssh.exec(`cat ${sh(`${root}/opt/nfsha/VERSION`)}`)).stdout.trim();
    if (installed === version) {
      report.bundle = 'unchanged';
    } else {
      step(`uploading bundle ${version}`);
      const remoteDir = `/tmp/nfsha-bundle-${version}-${h.hostId}`;
      await ssh.run(`rm -rf ${sh(remoteDir)} && mkdir -p ${sh(remoteDir)}`);
      for (const f of ['descriptor.xml', 'payload.tgz', 'install.sh']) await ssh.upload(path.join(opts.bundleDir, f), `${remoteDir}/${f}`);
      step('installing');
      await ssh.run(`sh ${sh(`${remoteDir}/install.sh`)} install${rootArg} --no-start && rm -rf ${sh(remoteDir)}`, 120_000);
      report.bundle = 'changed';
    }
    const confPath = `${root}/opt/nfsha/etc/agent.json`;
    const wanted = agentConfig(opts.inventory, h);
    const current = (await ssh.exec(`cat ${sh(confPath)}`)).stdout;
    if (current === wanted) {
      report.config = 'unchanged';
    } else {
      step('writing config');
      await ssh.writeFile(confPath, wanted);
      report.config = 'changed';
    }
    const env = root ? `NFSHA_ROOT=${sh(root)} ` : '';
    const init = `${env}${sh(`${root}/etc/init.d/nfsha-agent`)}`;
    const running = (await ssh.exec(`${init} status`)).code === 0;
    if (running && report.bundle === 'unchanged' && report.config === 'unchanged') {
      report.agent = 'unchanged';
    } else {
      step(running ? 'restarting the agent' : 'starting the agent');
      await ssh.run(`${init} ${running ? 'restart' : 'start'}`);
      report.agent = 'changed';
    }
    step('waiting for registration');
    const deadline = Date.now() + opts.registerTimeoutMs;
    while (!(report.registered = await opts.isRegistered(h.hostId).catch(() => false)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!report.registered) throw new Error(`agent did not register with the master within ${opts.registerTimeoutMs} ms`);
    step('done');
  } catch (err) {
    report.error = (err as Error).message;
    opts.log.warn({ ev: 'deploy.host.failed', host: h.hostId, err: report.error }, 'deploy failed on host');
    step(`failed: ${report.error}`);
  } finally {
    ssh?.close();
  }
  return report;
}
