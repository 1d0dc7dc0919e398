/**
 * Checks for the block writer (test/nfs-writer/nfs-writer.c): parses its log,
 * reads its blocks straight from storage (the NFS server's export directory),
 * samples storage while it runs, and finds stale writes (a block going back to
 * an older version after a newer one was acknowledged), torn blocks, and final
 * content that differs from the last acknowledged versions.
 *
 * Block layout (block b, version v, blockSize bytes at offset b*blockSize):
 * a text header `blk %04u ver %010u file NAME\n`, then fill: byte i of the
 * block (counted from the start of the block) is byte i % 8 of the 64-bit
 * little-endian value v*1000003 + b. A block never written is all zeros
 * (version 0).
 *
 * Times are CLOCK_MONOTONIC milliseconds, the clock of the writer's `t` and of
 * process.hrtime.bigint(). The writer rounds `sent` times down and `ack` times
 * up, so an ack's t is never earlier than the moment the version was on storage.
 */
import fs from 'node:fs';

export interface Ack { blk: number; ver: number; t: number; how: string }
export interface Sent { blk: number; ver: number; t: number }
export interface WriterVerify { ok: boolean; blocks: number; bad: number }
export interface WriterLog {
  acks: Ack[];
  sent: Sent[];
  errors: Array<{ t: number; what: string; err: string }>;
  reconnects: Array<{ t: number; ms: number }>;
  start?: { t: number; file: string; blocks: number; blockSize: number; inflight: number; seed: number };
  final?: number[];
  verify?: WriterVerify;
}

/** What one block of storage holds. */
export interface BlockState { blk: number; ver: number; ok: boolean; why?: string }

/**
 * A block as the sampler saw it: version `ver` (ok or not) in every pass from
 * the one started at `t` to the one started at `lastT` (ms; every read of a
 * pass starts after the pass does). A new Sample is kept only when what a
 * block shows changes, so a version seen in many passes costs one Sample.
 */
export interface Sample { file: string; blk: number; ver: number; t: number; lastT: number; ok: boolean; why?: string }

/** Acks of several writers: keyed by file, or each naming its file. */
export type AcksByFile = Readonly<Record<string, readonly Ack[]>> | ReadonlyArray<Ack & { file: string }>;

const MULT = 1000003n;
const HEADER = /^blk (\d{4,}) ver (\d{10}) file ([^\n]*)\n/;

/** CLOCK_MONOTONIC in ms (the writer's clock). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

/* ------------------------------------------------------------------ writer log */

/** Parses the writer's stdout; lines that are not JSON (or cut short) are skipped. */
export function parseWriterLog(text: string): WriterLog {
  const log: WriterLog = { acks: [], sent: [], errors: [], reconnects: [] };
  for (const line of text.split('\n')) {
    if (!line.startsWith('{"ev":')) continue;
    let o: Record<string, unknown>;
    try { o = JSON.parse(line) as Record<string, unknown>; } catch { continue; }
    const n = (k: string) => Number(o[k]);
    switch (o.ev) {
      case 'ack': log.acks.push({ blk: n('blk'), ver: n('ver'), t: n('t'), how: String(o.how) }); break;
      case 'sent': log.sent.push({ blk: n('blk'), ver: n('ver'), t: n('t') }); break;
      case 'error': log.errors.push({ t: n('t'), what: String(o.what), err: String(o.err) }); break;
      case 'reconnect': log.reconnects.push({ t: n('t'), ms: n('ms') }); break;
      case 'start': log.start = { t: n('t'), file: String(o.file), blocks: n('blocks'), blockSize: n('blockSize'), inflight: n('inflight'), seed: n('seed') }; break;
      case 'final': log.final = (o.versions as number[]).map(Number); break;
      case 'verify': log.verify = { ok: o.ok === true, blocks: n('blocks'), bad: n('bad') }; break;
    }
  }
  return log;
}

/* ---------------------------------------------------------------- block layout */

function pattern(blk: number, ver: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeBigUInt64LE((BigInt(ver) * MULT + BigInt(blk)) & 0xffffffffffffffffn);
  return p;
}

/** The exact bytes the writer writes for version `ver` of block `blk` (zeros for version 0). */
export function blockContent(blk: number, ver: number, name: string, blockSize: number): Buffer {
  const buf = Buffer.alloc(blockSize);
  if (ver === 0) return buf;
  const p = pattern(blk, ver);
  for (let i = 0; i < blockSize; i++) buf[i] = p[i & 7];
  buf.write(`blk ${String(blk).padStart(4, '0')} ver ${String(ver).padStart(10, '0')} file ${name}\n`, 0, 'latin1');
  return buf;
}

/** The version whose fill word this is, if it is one. */
function fillVersion(word: bigint, blk: number): number | undefined {
  const rest = word - BigInt(blk);
  return rest > 0n && rest % MULT === 0n && rest / MULT <= 0xffffffffn ? Number(rest / MULT) : undefined;
}

/**
 * Parses block `blk` (blockSize bytes). `name`, when given, is the file name
 * the header must carry.
 */
export function parseBlock(buf: Buffer, blk: number, name?: string): BlockState {
  const size = buf.length;
  if (buf.every((b) => b === 0)) return { blk, ver: 0, ok: true };
  const m = HEADER.exec(buf.toString('latin1', 0, Math.min(size, 512)));
  if (!m) {
    const guess = size >= 16 ? fillVersion(buf.readBigUInt64LE(size - 8 - (size % 8)), blk) : undefined;
    return { blk, ver: -1, ok: false, why: `no header${guess !== undefined ? ` (its end is fill of version ${guess})` : ''}: ${JSON.stringify(buf.toString('latin1', 0, 24))}` };
  }
  const hb = Number(m[1]);
  const ver = Number(m[2]);
  if (hb !== blk) return { blk, ver, ok: false, why: `header of block ${hb} version ${ver} in block ${blk}` };
  if (ver === 0) return { blk, ver, ok: false, why: 'header with version 0' };
  if (name !== undefined && m[3] !== name) return { blk, ver, ok: false, why: `header names file ${JSON.stringify(m[3])}, not ${JSON.stringify(name)}` };
  const p = pattern(blk, ver);
  for (let i = m[0].length; i < size; i++) {
    if (buf[i] === p[i & 7]) continue;
    const at = (i & ~7) + 8 <= size && (i & ~7) >= m[0].length ? i & ~7 : -1;
    const other = at >= 0 ? fillVersion(buf.readBigUInt64LE(at), blk) : undefined;
    return {
      blk, ver, ok: false,
      why: other !== undefined
        ? `torn: header says version ${ver}, fill from byte ${i} is version ${other}`
        : `torn: header says version ${ver}, fill differs from byte ${i}`,
    };
  }
  return { blk, ver, ok: true };
}

/** Parses every block of a file's content; a trailing partial block is reported as not ok. */
export function parseBlocks(data: Buffer, blockSize: number, name?: string): BlockState[] {
  const out: BlockState[] = [];
  for (let b = 0; b * blockSize < data.length; b++) {
    const piece = data.subarray(b * blockSize, (b + 1) * blockSize);
    out.push(piece.length < blockSize
      ? { blk: b, ver: -1, ok: false, why: `short block: ${piece.length} of ${blockSize} bytes` }
      : parseBlock(piece, b, name));
  }
  return out;
}

/** Reads a file straight from storage and parses each block. */
export function readBlocks(file: string, blockSize: number, name?: string): BlockState[] {
  return parseBlocks(fs.readFileSync(file), blockSize, name);
}

/* ------------------------------------------------------------------- checks */

function acksOf(acks: AcksByFile): Map<string, Ack[]> {
  const byFile = new Map<string, Ack[]>();
  const entries: Array<[string, Ack]> = Array.isArray(acks)
    ? (acks as ReadonlyArray<Ack & { file: string }>).map((a) => [a.file, a])
    : Object.entries(acks as Record<string, readonly Ack[]>).flatMap(([f, list]) => list.map((a): [string, Ack] => [f, a]));
  for (const [f, a] of entries) {
    const k = `${f}\0${a.blk}`;
    (byFile.get(k) ?? byFile.set(k, []).get(k)!).push(a);
  }
  for (const list of byFile.values()) list.sort((x, y) => x.t - y.t);
  return byFile;
}

const ms = (t: number) => `${t.toFixed(1)} ms`;

/**
 * Stale writes and torn blocks. A sample of block b showing version v in a
 * read that started at time T is a stale write when some ack of b with a
 * version above v has a time before T: storage held that version by then, so
 * it went back. A sample that is not ok (torn, mixed, garbage) is reported too.
 * With `sent`, a version that was never sent is reported as well.
 */
export function checkNoStaleWrites(acks: AcksByFile, samples: readonly Sample[], sent?: AcksByFile): string[] {
  const byBlock = acksOf(acks);
  const sentMax = new Map<string, number>();
  if (sent) for (const [k, list] of acksOf(sent)) sentMax.set(k, Math.max(...list.map((s) => s.ver)));
  const problems: string[] = [];
  for (const s of samples) {
    const where = `${s.file} block ${s.blk}`;
    if (!s.ok) {
      problems.push(`${where}: bad content in a read started at ${ms(s.t)}${s.lastT > s.t ? ` (still at ${ms(s.lastT)})` : ''}: ${s.why ?? 'not ok'}`);
      continue;
    }
    const k = `${s.file}\0${s.blk}`;
    const list = byBlock.get(k) ?? [];
    // The first acknowledgement of a newer version made before the last read that showed this one.
    const newer = list.find((a) => a.ver > s.ver && a.t < s.lastT);
    if (newer) {
      const when = s.t > newer.t
        ? `in a read started at ${ms(s.t)}`
        : `until at least a read started at ${ms(s.lastT)} (first seen at ${ms(s.t)})`;
      const latest = list.filter((a) => a.t < s.lastT).at(-1)!;
      problems.push(`${where}: stale write: storage showed version ${s.ver} ${when}, after version ${newer.ver} was acknowledged at ${ms(newer.t)} (${newer.how})`
        + (latest.ver !== newer.ver ? `; version ${latest.ver} was acknowledged by ${ms(latest.t)}` : ''));
    }
    const maxSent = sentMax.get(k);
    if (sent && s.ver > (maxSent ?? 0)) problems.push(`${where}: storage showed version ${s.ver} at ${ms(s.t)}, which the writer never sent (highest sent: ${maxSent ?? 'none'})`);
  }
  return problems;
}

/** Final content against the last acknowledged versions, from parsed blocks (pure). */
export function compareFinal(file: string, blocks: readonly BlockState[], final: readonly number[]): string[] {
  const problems: string[] = [];
  if (blocks.length < final.length) problems.push(`${file}: storage has ${blocks.length} blocks, the writer wrote ${final.length}`);
  final.forEach((want, b) => {
    const got = blocks[b];
    if (!got) return;
    if (!got.ok) problems.push(`${file} block ${b}: bad content (${got.why}); last acknowledged version ${want}`);
    else if (got.ver !== want) problems.push(`${file} block ${b}: storage holds version ${got.ver}, last acknowledged version is ${want}${got.ver < want ? ' (an acknowledged write was lost or overwritten by an older one)' : ' (newer than any acknowledged version)'}`);
  });
  return problems;
}

/** Storage content of `path` equals the last acknowledged version of every block. */
export function checkFinal(path: string, blockSize: number, final: readonly number[], name?: string): string[] {
  let blocks: BlockState[];
  try { blocks = readBlocks(path, blockSize, name); } catch (err) { return [`${path}: cannot read: ${(err as Error).message}`]; }
  return compareFinal(name ?? path, blocks, final);
}

/* ------------------------------------------------------------------ sampler */

export interface SampledFile { file: string; path: string; blockSize: number }

/** Re-reads of a torn block before it counts as torn on storage (a read racing a write can tear). */
const TORN_REREADS = 3;

/**
 * Re-reads files straight from storage every periodMs while running and keeps
 * what each block showed when it changed (see Sample), plus the start time of
 * every pass. A block read torn is read again at once: a read racing the
 * server's write can see half of each, so only a tear that persists over
 * TORN_REREADS re-reads is kept (as a sample that is not ok); the others are
 * counted in transientTorn.
 */
export class BlockSampler {
  readonly samples: Sample[] = [];
  /** Start time (ms, CLOCK_MONOTONIC) of every pass over the files. */
  readonly passes: number[] = [];
  transientTorn = 0;
  readErrors = 0;
  lastError?: string;
  private readonly current = new Map<string, Sample>();
  private running = false;
  private timer?: NodeJS.Timeout;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(private readonly files: ReadonlyArray<SampledFile>, private readonly periodMs = 25) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the pass under way; resolves when it has. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
    await this.loop;
  }

  /** One pass over every file, now (also usable without start()). */
  async pass(): Promise<void> {
    const t = monotonicMs(); // every read of the pass starts after this
    this.passes.push(t);
    await Promise.all(this.files.map((f) => this.readFile(f, t)));
  }

  private async run(): Promise<void> {
    while (this.running) {
      const began = monotonicMs();
      await this.pass();
      const wait = Math.max(0, began + this.periodMs - monotonicMs());
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, wait);
        this.timer.unref();
      });
    }
  }

  private async readFile(f: SampledFile, t: number): Promise<void> {
    let data: Buffer;
    try {
      data = await fs.promises.readFile(f.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') { this.readErrors++; this.lastError = `${f.path}: ${(err as Error).message}`; }
      return;
    }
    for (let b = 0; (b + 1) * f.blockSize <= data.length; b++) {
      let state = parseBlock(data.subarray(b * f.blockSize, (b + 1) * f.blockSize), b, f.file);
      let at = t;
      for (let i = 0; !state.ok && i < TORN_REREADS; i++) {
        const again = await this.readBlock(f, b);
        if (!again) break;
        if (again.state.ok) {
          this.transientTorn++;
          ({ state, t: at } = again);
        }
      }
      this.record(f.file, state, at);
    }
  }

  private async readBlock(f: SampledFile, b: number): Promise<{ state: BlockState; t: number } | undefined> {
    const t = monotonicMs();
    try {
      const fh = await fs.promises.open(f.path, 'r');
      try {
        const buf = Buffer.alloc(f.blockSize);
        const { bytesRead } = await fh.read(buf, 0, f.blockSize, b * f.blockSize);
        return bytesRead === f.blockSize ? { state: parseBlock(buf, b, f.file), t } : undefined;
      } finally {
        await fh.close();
      }
    } catch {
      return undefined;
    }
  }

  private record(file: string, s: BlockState, t: number): void {
    const k = `${file}\0${s.blk}`;
    const cur = this.current.get(k);
    if (cur && cur.ver === s.ver && cur.ok === s.ok && cur.why === s.why) {
      if (t > cur.lastT) cur.lastT = t;
      return;
    }
    const sample: Sample = { file, blk: s.blk, ver: s.ver, t, lastT: t, ok: s.ok, ...(s.why ? { why: s.why } : {}) };
    this.samples.push(sample);
    this.current.set(k, sample);
  }
}
