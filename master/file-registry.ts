import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostRecord } from './identity';
import type { RegistryStore, ServerRecord } from './leadership';
import type { MaintenanceRecord } from './maintenance';

interface RegistryFile {
  servers: ServerRecord[];
  hosts: HostRecord[];
  maintenance: MaintenanceRecord[];
}

/** Writes `data` to `file` whole: a temporary file, fsync, rename. */
export function writeFileDurably(file: string, data: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/**
 * The embedded master's registry of Access Servers and hosts, in one JSON
 * file of its state directory, so a restarted master knows whom to expect
 * (and whom to fence if they never come back) and which addresses are whose.
 */
export class FileRegistry implements RegistryStore {
  private readonly data: RegistryFile;

  constructor(private readonly file: string) {
    this.data = FileRegistry.read(file);
  }

  private static read(file: string): RegistryFile {
    try {
      const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<RegistryFile>;
      return { servers: parsed.servers ?? [], hosts: parsed.hosts ?? [], maintenance: parsed.maintenance ?? [] };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { servers: [], hosts: [], maintenance: [] };
      throw new Error(`registry ${file}: ${(err as Error).message}`);
    }
  }

  async load(): Promise<RegistryFile> {
    return { servers: [...this.data.servers], hosts: [...this.data.hosts], maintenance: [...this.data.maintenance] };
  }

  private upsert<T>(list: T[], item: T, key: (x: T) => string): boolean {
    const i = list.findIndex((x) => key(x) === key(item));
    if (i >= 0 && JSON.stringify(list[i]) === JSON.stringify(item)) return false;
    if (i >= 0) list[i] = item;
    else list.push(item);
    return true;
  }

  async saveServer(s: ServerRecord): Promise<void> {
    if (this.upsert(this.data.servers, s, (x) => x.serverId)) writeFileDurably(this.file, JSON.stringify(this.data, null, 1));
  }

  saveHost(h: HostRecord): void {
    if (this.upsert(this.data.hosts, h, (x) => x.id)) writeFileDurably(this.file, JSON.stringify(this.data, null, 1));
  }

  async saveMaintenance(r: MaintenanceRecord): Promise<void> {
    if (this.upsert(this.data.maintenance, r, (x) => x.serverId)) writeFileDurably(this.file, JSON.stringify(this.data, null, 1));
  }
}
