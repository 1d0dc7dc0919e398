import { z } from 'zod';
import { idString, masterList, optionalIp } from '../common/config';
import { ConfigError, readConfigFile, validate } from '../common/settings';

/** One ESXi host to deploy the agent to. */
const hostSchema = z.object({
  hostId: idString,
  /** Where to reach the host's sshd (its management IP). */
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1).default('root'),
  localServerId: idString,
  storageIp: optionalIp.default(''),
  mgmtIp: optionalIp.default(''),
  /** Install under this directory instead of / (labs). */
  installRoot: z.string().default(''),
  /** The file sshd reads authorized keys from. ESXi: /etc/ssh/keys-<user>/authorized_keys. */
  authorizedKeys: z.string().default(''),
}).strict();

export const inventorySchema = z.object({
  /** Master candidates the agents follow (host:port, comma-separated). */
  masters: masterList,
  hosts: z.array(hostSchema).min(1),
  /** Agent settings for every host (backend, probe timings, private interface…). */
  agent: z.record(z.string(), z.unknown()).default({}),
}).strict();

export type Inventory = z.infer<typeof inventorySchema>;
export type InventoryHost = Inventory['hosts'][number];

export function readInventory(file: string): Inventory {
  const inv = validate(inventorySchema, readConfigFile(file), 'inventory');
  const ids = new Set<string>();
  for (const h of inv.hosts) {
    if (ids.has(h.hostId)) throw new ConfigError(`inventory lists host ${h.hostId} twice`);
    ids.add(h.hostId);
  }
  return inv;
}

export function authorizedKeysPath(h: InventoryHost): string {
  return h.authorizedKeys || `/etc/ssh/keys-${h.user}/authorized_keys`;
}
