import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import * as core from 'zod/v4/core';
import { addFlags, isGroup, rowOptions, schemaDefault, settingsFrom, type FlagTable, type OptionsSchema } from '../../cli/flag-table';
import { MASTER_FLAGS } from '../../cli/master-command';
import { FOLLOWER_FLAGS } from '../../cli/follower-command';
import { AGENT_FLAGS } from '../../cli/agent-command';
import { buildProgram } from '../../cli/nfsha';
import { DEFAULT_MASTER_OPTIONS, masterOptionsSchema } from '../../master/options';
import { DEFAULT_FOLLOWER_OPTIONS, followerOptionsSchema } from '../../follower/options';
import { DEFAULT_AGENT_OPTIONS, agentOptionsSchema } from '../../agent/options';
import { deployPkiDir } from '../../deploy/deploy';
import { scratchDir } from '../support/scratch';

const TABLES: Array<FlagTable<OptionsSchema>> = [MASTER_FLAGS, FOLLOWER_FLAGS, AGENT_FLAGS];

/** Every setting of a schema (zod or zod/mini), nested objects (the master's limits) as dotted keys; tls is one setting. */
function settingKeys(schema: core.$ZodObject, prefix = ''): string[] {
  return Object.entries(schema._zod.def.shape).flatMap(([key, field]) => {
    let t: core.$ZodType = field;
    while (t instanceof core.$ZodDefault || t instanceof core.$ZodPrefault || t instanceof core.$ZodOptional) t = t._zod.def.innerType;
    return t instanceof core.$ZodObject ? settingKeys(t, `${prefix}${key}.`) : [`${prefix}${key}`];
  });
}

/** Runs a command's flag parsing (without its action) and merges as the command does. */
function settingsFor(table: FlagTable<OptionsSchema>, args: string[]): Record<string, unknown> {
  const command = addFlags(new Command(table.what).exitOverride(), table);
  command.parse(args, { from: 'user' });
  return settingsFrom(table, command.opts()) as Record<string, unknown>;
}

function configFile(settings: object): string {
  const file = path.join(scratchDir('nfsha-settings-'), 'config.json');
  fs.writeFileSync(file, JSON.stringify(settings));
  return file;
}

function at(o: Record<string, unknown>, key: string): unknown {
  return key.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], o);
}

describe('settings: one schema per component, one flag table per command', () => {
  let savedTls: string | undefined;
  before(() => { savedTls = process.env.NFSHA_TLS; delete process.env.NFSHA_TLS; });
  after(() => { if (savedTls !== undefined) process.env.NFSHA_TLS = savedTls; });

  for (const table of TABLES) {
    describe(`nfsha ${table.what}`, () => {
      it('gives every setting exactly one flag, or a reason it is config-file only', () => {
        const keys = settingKeys(table.schema);
        const flagged = table.rows.map((r) => r.key);
        for (const key of flagged) assert.ok(keys.includes(key), `flag row for ${key}, which is not a setting`);
        for (const key of Object.keys(table.fileOnly)) assert.ok(keys.includes(key), `file-only ${key} is not a setting`);
        for (const key of keys) {
          const rows = flagged.filter((k) => k === key).length;
          const fileOnly = key in table.fileOnly;
          assert.ok(rows + (fileOnly ? 1 : 0) === 1, `${key}: ${rows} flag rows${fileOnly ? ' and listed as file-only' : ''}`);
          if (fileOnly) assert.ok(table.fileOnly[key].length > 10, `${key}: file-only without a reason`);
        }
      });

      it('shows in --help the schema\'s default for every flag, and nothing for an empty one', () => {
        for (const row of table.rows) {
          const [o] = rowOptions(table.schema, row);
          let want = schemaDefault(table.schema, row.key);
          if (isGroup(row)) want = (want as { dir: string }).dir; // --tls shows the directory
          const empty = want === undefined || want === '' || (Array.isArray(want) && want.length === 0);
          const shown = o.defaultValueDescription === undefined ? undefined : JSON.parse(o.defaultValueDescription);
          assert.deepEqual(shown, empty ? undefined : want, `${o.flags}`);
          if (!empty) assert.ok(o.description.endsWith(`(default: ${JSON.stringify(want)})`), o.description);
        }
      });
    });
  }

  it('derives the default objects from the schemas, and the defaults pass their own refinements', () => {
    assert.deepEqual(masterOptionsSchema.parse({}), DEFAULT_MASTER_OPTIONS);
    assert.deepEqual(followerOptionsSchema.parse({ serverId: 's' }), { ...DEFAULT_FOLLOWER_OPTIONS, serverId: 's' });
    assert.deepEqual(agentOptionsSchema.parse({ hostId: 'h', localServerId: 's' }), { ...DEFAULT_AGENT_OPTIONS, hostId: 'h', localServerId: 's' });
    assert.equal(DEFAULT_MASTER_OPTIONS.limits.maxSessions, 1024);
    assert.equal(DEFAULT_MASTER_OPTIONS.deployStateDir, '/etc/nfsha/deploy');
  });

  for (const c of [
    { table: MASTER_FLAGS, required: [], key: 'sessionTtlMs', flag: ['--ttl-ms', '5000'], file: 4000, want: 5000 },
    { table: MASTER_FLAGS, required: [], key: 'limits.maxSessions', flag: ['--max-sessions', '200'], file: 100, want: 200 },
    { table: MASTER_FLAGS, required: [], key: 'hosts', flag: ['--host', 'esx-1=10.0.0.1', '--host', 'esx-2=10.0.0.2,10.1.0.2'], file: [{ id: 'esx-9' }],
      want: [{ id: 'esx-1', storageIp: '10.0.0.1', mgmtIp: undefined }, { id: 'esx-2', storageIp: '10.0.0.2', mgmtIp: '10.1.0.2' }] },
    { table: MASTER_FLAGS, required: [], key: 'tls', flag: ['--tls', '/x/tls', '--tls-refresh-ms', '500'], file: { insecure: true }, want: { dir: '/x/tls', refreshMs: 500 } },
    { table: FOLLOWER_FLAGS, required: ['--server-id', 'scvm-1'], key: 'fenceCommand', flag: ['--fence-command', '["b","c"]'], file: ['a'], want: ['b', 'c'] },
    { table: FOLLOWER_FLAGS, required: ['--server-id', 'scvm-1'], key: 'nfsProbe', flag: ['--nfs-probe', 'nfs@127.0.0.1:2049, mount@127.0.0.1:20048'], file: ['nfs@10.0.0.1:2049'], want: ['nfs@127.0.0.1:2049', 'mount@127.0.0.1:20048'] },
    { table: FOLLOWER_FLAGS, required: ['--server-id', 'scvm-1'], key: 'httpListen', flag: ['--http-listen', '127.0.0.1:8443'], file: '127.0.0.1:9443', want: '127.0.0.1:8443' },
    { table: AGENT_FLAGS, required: ['--host-id', 'esx-1', '--local-server-id', 'scvm-1'], key: 'probeIntervalMs', flag: ['--probe-interval-ms', '700'], file: 600, want: 700 },
    { table: AGENT_FLAGS, required: ['--host-id', 'esx-1', '--local-server-id', 'scvm-1'], key: 'tls', flag: ['--insecure'], file: { dir: '/y' }, want: { insecure: true } },
  ] as const) {
    it(`nfsha ${c.table.what}: ${c.flag[0]} overrides the config file, which overrides the default of ${c.key}`, () => {
      const table: FlagTable<OptionsSchema> = c.table;
      const fileSettings: Record<string, unknown> = {};
      const [head, tail] = c.key.split('.');
      fileSettings[head] = tail ? { [tail]: c.file } : c.file;
      const file = configFile(fileSettings);
      assert.deepEqual(at(settingsFor(table, [...c.required]), c.key), schemaDefault(table.schema, c.key));
      assert.deepEqual(at(settingsFor(table, [...c.required, '-c', file]), c.key), c.file);
      assert.deepEqual(at(settingsFor(table, [...c.required, '-c', file, ...c.flag]), c.key), c.want);
    });
  }

  it('lays a nested flag over the file\'s nested settings without dropping its neighbours', () => {
    const file = configFile({ limits: { maxSessions: 100 } });
    const s = settingsFor(MASTER_FLAGS, ['-c', file, '--max-pending-logins', '50']);
    assert.deepEqual(s.limits, { ...DEFAULT_MASTER_OPTIONS.limits, maxSessions: 100, maxPendingLogins: 50 });
  });

  it('reports a bad setting in one line naming the command and the key', () => {
    const file = configFile({ limits: { maxClientsPerSession: 5000 } });
    assert.throws(() => settingsFor(MASTER_FLAGS, ['-c', file]),
      { name: 'ConfigError', message: /^invalid master setting limits\.maxClientsPerSession: .* must fit maxMessageBytes/ });
    assert.throws(() => settingsFor(FOLLOWER_FLAGS, ['--server-id', 'a', '--storage-ip', '10.0.0.256']),
      { name: 'ConfigError', message: 'invalid follower setting storageIp: not an IP address' });
  });

  it('keeps the deploy directory in one place: a master on defaults finds the CA where nfsha init put it', () => {
    const program = buildProgram();
    const shown = (command: string, flag: string) => program.commands.find((c) => c.name() === command)!.options.find((o) => o.long === flag)!.defaultValue;
    assert.equal(shown('deploy', '--state-dir'), DEFAULT_MASTER_OPTIONS.deployStateDir);
    assert.equal(shown('init', '--dir'), deployPkiDir(DEFAULT_MASTER_OPTIONS.deployStateDir));
  });
});
