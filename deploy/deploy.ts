import * as fs from 'node:fs';
import * as path from 'node:path';
import { utils } from 'ssh2';
import type { Logger } from '../common/log';
import { authorizedKeysPath, type Inventory, type InventoryHost } from './inventory';
import { SshSession, type SshCredentials } from '../common/ssh';
import { PkiDirectory } from '../common/pki';

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

/** Where an agent's TLS directory goes on its host. */
export function agentTlsDir(h: InventoryHost): string {
  return `${h.installRoot}/opt/nfsha/etc/tls`;
}

/** The agent's config file for one host. */
export function agentConfig(inv: Inventory, h: InventoryHost): string {
  return JSON.stringify({
    hostId: h.hostId,
    localServerId: h.localServerId,
    storageIp: h.storageIp,
    mgmtIp: h.mgmtIp,
    master: inv.masters,
    tls: { dir: agentTlsDir(h) },
    ...inv.agent,
  }, null, 2) + '\n';
}

/**
 * Where the cluster credentials live unless told otherwise: the default of
 * `nfsha deploy --state-dir`, of the master's deployStateDir, and (its pki/)
 * of `nfsha init --dir`, so each finds what the others made.
 */
export const DEFAULT_DEPLOY_DIR = '/etc/nfsha/deploy';

/** <stateDir>/pki: the PKI directory deploy uses, the layout `nfsha init` makes. */
export function deployPkiDir(stateDir: string): string {
  return path.join(stateDir, 'pki');
}

/**
 * The cluster PKI deploy uses. Its CA is created on the first deploy when
 * `nfsha init` was not run.
 */
export function deployPki(stateDir: string): PkiDirectory {
  return new PkiDirectory(deployPkiDir(stateDir));
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
  const pki = deployPki(opts.stateDir);
  // Each agent's certificate is minted once, then reused: re-running deploy changes nothing.
  for (const h of opts.inventory.hosts) pki.issue({ role: 'agent', id: h.hostId });
  return Promise.all(opts.inventory.hosts.map((h) => deployHost(opts, h, key, version, pki.tlsDir({ role: 'agent', id: h.hostId }))));
}

async function deployHost(opts: DeployOptions, h: InventoryHost, key: { privateKey: Buffer; publicKey: string }, version: string, tlsDir: string): Promise<HostReport> {
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
    // The config: agent.json and the agent's TLS directory (its certificate and key).
    const wantedFiles: Array<[string, string]> = [
      [`${root}/opt/nfsha/etc/agent.json`, agentConfig(opts.inventory, h)],
      ...['ca.pem', 'cert.pem', 'key.pem'].map((f) => [`${agentTlsDir(h)}/${f}`, fs.readFileSync(path.join(tlsDir, f), 'utf8')] as [string, string]),
    ];
    report.config = 'unchanged';
    for (const [file, wanted] of wantedFiles) {
      if ((await ssh.exec(`cat ${sh(file)}`)).stdout === wanted) continue;
      step(`writing ${path.basename(file)}`);
      await ssh.run(`mkdir -p ${sh(path.dirname(file))}`);
      await ssh.writeFile(file, wanted);
      if (file.endsWith('key.pem')) await ssh.run(`chmod 600 ${sh(file)}`);
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
