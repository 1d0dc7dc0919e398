import * as fs from 'node:fs';
import { z } from 'zod';
import { isValidId, normalizeIp } from './address';

/** A configuration or flag error: the CLI prints it as one line and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const ipString = z.string().refine((s) => normalizeIp(s) !== undefined, { message: 'not an IP address' });
export const optionalIp = z.string().refine((s) => s === '' || normalizeIp(s) !== undefined, { message: 'not an IP address' });
export const idString = z.string().refine(isValidId, { message: 'not a valid id (letters, digits, . _ : -; at most 64)' });
export const optionalId = z.string().refine((s) => s === '' || isValidId(s), { message: 'not a valid id (letters, digits, . _ : -; at most 64)' });
/** `host:port`, `[v6]:port` or `unix:/absolute/path`. */
export const listenAddress = z.string().refine(
  (s) => /^unix:\/.+/.test(s) || /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s) && Number(s.slice(s.lastIndexOf(':') + 1)) <= 65535,
  { message: 'expected host:port or unix:/path' },
);
const ms = z.number().int().positive();
/** host:port, or empty for "off". */
export const optionalListen = z.string().refine((s) => s === '' || /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s), { message: 'expected host:port' });
/** One master address, or several candidates separated by commas. */
export const masterList = z.string().refine((s) => s.split(',').every((a) => listenAddress.safeParse(a.trim()).success), { message: 'expected host:port[,host:port…]' });

/** `{"dir": "/etc/nfsha/tls"}` (mTLS, the default) or `{"insecure": true}` (plain text, loopback only). */
export const tlsSchema = z.union([
  z.object({ insecure: z.literal(true) }).strict(),
  z.object({ dir: z.string().min(1), refreshMs: ms.min(100).optional(), insecure: z.literal(false).optional() }).strict(),
]);

const count = z.number().int().positive();
/** A command as argv (program first), no shell. */
export const argvSchema = z.array(z.string().min(1)).refine((a) => a.length === 0 || a[0].trim() !== '', { message: 'the program must not be empty' });
export const masterLimitsSchema = z.object({
  maxSessions: count,
  maxClientsPerSession: count,
  maxPendingLogins: count,
  maxPendingLoginsPerSession: count,
  introductionsPerSecond: z.number().positive(),
  introductionBurst: count,
}).strict();

export const hostSchema = z.object({ id: idString, storageIp: optionalIp.optional(), mgmtIp: optionalIp.optional() }).strict();

/** The most one client can take in an introduction (a 64-character id and its token). */
export const INTRODUCED_CLIENT_BYTES = 100;

export const masterConfigSchema = z.object({
  id: idString,
  listen: listenAddress,
  sessionTtlMs: ms.min(100),
  keepaliveIntervalMs: ms.min(10),
  clockDriftBound: z.number().min(0).max(1),
  graceMarginMs: z.number().int().min(0),
  revokeAckTimeoutMs: ms,
  revokeDrainLimitMs: ms,
  fenceAgent: argvSchema,
  fenceAgentTimeoutMs: ms,
  epoch: z.number().int().positive().optional(),
  stateDir: z.string(),
  hosts: z.array(hostSchema),
  localClientIp: ipString,
  maxMessageBytes: z.number().int().min(1024),
  etcdEndpoints: z.array(z.string().regex(/^(https?:\/\/)?[A-Za-z0-9.\-\[\]:]+:\d{1,5}$/, 'not an etcd endpoint (host:port)')),
  advertise: z.string().refine((s) => s === '' || listenAddress.safeParse(s).success, { message: 'expected host:port' }),
  electionTtlSeconds: z.number().int().min(2).max(60),
  bundleDir: z.string(),
  deployStateDir: z.string().min(1),
  metricsListen: optionalListen,
  httpListen: optionalListen,
  tls: tlsSchema,
  limits: masterLimitsSchema,
}).strict().refine((c) => c.keepaliveIntervalMs * 2 <= c.sessionTtlMs, {
  message: 'keepaliveIntervalMs must be at most half of sessionTtlMs, or one lost keepalive fences a follower',
  path: ['keepaliveIntervalMs'],
}).refine((c) => c.limits.maxClientsPerSession * INTRODUCED_CLIENT_BYTES + 1024 <= c.maxMessageBytes, {
  message: `limits.maxClientsPerSession × ${INTRODUCED_CLIENT_BYTES} bytes must fit maxMessageBytes: a follower lists every client it serves in one introduction`,
  path: ['limits', 'maxClientsPerSession'],
});

export const followerConfigSchema = z.object({
  serverId: idString,
  hostId: optionalId,
  storageIp: optionalIp,
  mgmtIp: optionalIp,
  master: masterList,
  gateListen: listenAddress,
  admitTimeoutMs: ms,
  logoutTimeoutMs: ms,
  maxMessageBytes: z.number().int().min(1024),
  metricsListen: optionalListen,
  httpListen: optionalListen,
  tls: tlsSchema,
  maxGateWatchers: count,
  maxPendingAdmits: count,
  nfsProbe: z.array(z.string().regex(/^(nfs|mount|\d+\.\d+)@(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected nfs@host:port, mount@host:port or PROGRAM.VERSION@host:port')),
  nfsProbeIntervalMs: ms.min(50),
  nfsMissesToFail: z.number().int().min(1).max(100),
  fenceCommand: argvSchema,
  fenceTimeoutMs: ms,
  fenceLeadMs: ms,
  gateReportIntervalMs: ms.min(10),
  gateSilentMs: ms,
}).strict().refine((c) => c.gateSilentMs >= 2 * c.gateReportIntervalMs, {
  message: 'gateSilentMs must be at least twice gateReportIntervalMs, or one late report marks the NFS service down',
  path: ['gateSilentMs'],
});

/** Reads a JSON config file; a missing or malformed file is a ConfigError. */
export function readConfigFile(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config ${file} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Validates merged settings (defaults < file < flags); the first problem becomes a one-line error. */
export function validate<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue.path.length ? issue.path.join('.') : what;
  throw new ConfigError(`invalid ${what} setting ${where}: ${issue.message}`);
}

export const memberSchema = z.object({ serverId: idString, hostId: optionalId, storageIp: optionalIp, mgmtIp: optionalIp }).strict();

export const agentConfigSchema = z.object({
  hostId: idString,
  localServerId: idString,
  storageIp: optionalIp,
  mgmtIp: optionalIp,
  master: masterList,
  backend: z.enum(['iproute2', 'esxcli', 'esxcli-ssh', 'dry-run']),
  esxcliPath: z.string().min(1),
  sshHost: z.string(),
  sshPort: z.number().int().min(1).max(65535),
  sshUser: z.string().min(1),
  sshKeyFile: z.string(),
  privateInterface: z.string().regex(/^[A-Za-z0-9._-]{0,15}$/, 'not an interface name'),
  nfsAddress: ipString,
  probeIntervalMs: ms.min(50),
  missesToFail: z.number().int().min(1).max(100),
  holdDownMs: z.number().int().min(0),
  tcpProbePort: z.number().int().min(0).max(65535),
  peers: z.array(memberSchema),
  metricsListen: optionalListen,
  tls: tlsSchema,
}).strict().refine((c) => c.backend !== 'esxcli-ssh' || (c.sshHost !== '' && c.sshKeyFile !== ''), {
  message: 'the esxcli-ssh backend needs sshHost and sshKeyFile',
  path: ['backend'],
});
