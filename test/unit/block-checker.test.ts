import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  Ack, BlockSampler, Sample, blockContent, checkFinal, checkNoStaleWrites, compareFinal, monotonicMs, parseBlock, parseBlocks,
  parseWriterLog, readBlocks,
} from '../support/block-checker';
import { scratchDir } from '../support/scratch';

const BS = 512;

/** A sample as the sampler stores it: version `ver` seen in reads started from t to lastT. */
const sample = (blk: number, ver: number, t: number, lastT = t, file = 'f1'): Sample => ({ file, blk, ver, t, lastT, ok: true });
const ack = (blk: number, ver: number, t: number, how = 'sync'): Ack => ({ blk, ver, t, how });

function fileOf(versions: number[], name = 'f1'): Buffer {
  return Buffer.concat(versions.map((v, b) => blockContent(b, v, name, BS)));
}

describe('block checker', () => {
  describe('writer log', () => {
    it('parses every line type and skips lines that are not JSON or cut short', () => {
      const log = parseWriterLog([
        '{"ev":"start","t":10.0,"file":"f1","blocks":2,"blockSize":4096,"inflight":8,"seed":7}',
        '{"ev":"sent","blk":1,"ver":1,"t":11.0}',
        'libnfs says something on stdout',
        '{"ev":"ack","blk":1,"ver":1,"t":12.5,"how":"commit"}',
        '{"ev":"error","t":13.0,"what":"connection","err":"oldest call unanswered for 3001 ms"}',
        '{"ev":"reconnect","t":14.0,"ms":1000.5}',
        '{"ev":"final","t":15.0,"versions":[0,1]}',
        '{"ev":"verify","ok":true,"blocks":2,"bad":0}',
        '{"ev":"ack","blk":0,"ver":1,"t":1',
      ].join('\n'));
      assert.deepEqual(log.acks, [{ blk: 1, ver: 1, t: 12.5, how: 'commit' }]);
      assert.deepEqual(log.sent, [{ blk: 1, ver: 1, t: 11 }]);
      assert.deepEqual(log.errors, [{ t: 13, what: 'connection', err: 'oldest call unanswered for 3001 ms' }]);
      assert.deepEqual(log.reconnects, [{ t: 14, ms: 1000.5 }]);
      assert.deepEqual(log.start, { t: 10, file: 'f1', blocks: 2, blockSize: 4096, inflight: 8, seed: 7 });
      assert.deepEqual(log.final, [0, 1]);
      assert.deepEqual(log.verify, { ok: true, blocks: 2, bad: 0 });
    });

    it('has no final or verify while the writer runs', () => {
      const log = parseWriterLog('{"ev":"ack","blk":0,"ver":1,"t":1.0,"how":"sync"}\n');
      assert.equal(log.final, undefined);
      assert.equal(log.verify, undefined);
    });
  });

  describe('block layout', () => {
    it('matches the writer: text header, then the 8-byte little-endian version*1000003+block aligned to the block', () => {
      const b = blockContent(3, 7, 'f1', BS);
      const header = 'blk 0003 ver 0000000007 file f1\n';
      assert.equal(b.toString('latin1', 0, header.length), header);
      // 7*1000003+3 = 7000024 = 0x6acfd8; byte i of the block is byte i%8 of the value
      const word = [0xd8, 0xcf, 0x6a, 0, 0, 0, 0, 0];
      for (let i = header.length; i < BS; i++) assert.equal(b[i], word[i % 8], `byte ${i}`);
      assert.equal(b.length, BS);
    });

    it('reads a block never written (all zeros) as version 0, ok', () => {
      assert.deepEqual(parseBlock(Buffer.alloc(BS), 4), { blk: 4, ver: 0, ok: true });
    });

    it('reads the version of a whole block', () => {
      assert.deepEqual(parseBlock(blockContent(2, 41, 'f1', BS), 2, 'f1'), { blk: 2, ver: 41, ok: true });
    });

    it('flags a torn block: header of one version, fill of another', () => {
      const b = blockContent(1, 5, 'f1', BS);
      blockContent(1, 6, 'f1', BS).copy(b, 256, 256);
      const s = parseBlock(b, 1);
      assert.equal(s.ok, false);
      assert.equal(s.ver, 5);
      assert.match(s.why!, /torn: header says version 5, fill from byte 256 is version 6/);
    });

    it('flags a block whose header is newer than its fill', () => {
      const b = blockContent(1, 5, 'f1', BS);
      blockContent(1, 6, 'f1', BS).copy(b, 0, 0, 100);
      assert.equal(parseBlock(b, 1).ok, false);
    });

    it('flags garbage, a header of another block, and a header of another file', () => {
      const garbage = Buffer.alloc(BS, 0x41);
      assert.deepEqual({ ...parseBlock(garbage, 0), why: undefined }, { blk: 0, ver: -1, ok: false, why: undefined });
      assert.match(parseBlock(blockContent(2, 3, 'f1', BS), 1).why!, /header of block 2 version 3 in block 1/);
      assert.match(parseBlock(blockContent(1, 3, 'f2', BS), 1, 'f1').why!, /names file "f2"/);
    });

    it('flags a block whose header was zeroed but fill was not', () => {
      const b = blockContent(0, 9, 'f1', BS);
      b.fill(0, 0, 64);
      const s = parseBlock(b, 0);
      assert.equal(s.ok, false);
      assert.match(s.why!, /no header \(its end is fill of version 9\)/);
    });

    it('reads every block of a file and reports a trailing partial block', () => {
      const data = Buffer.concat([fileOf([1, 0, 2]), Buffer.alloc(10)]);
      const blocks = parseBlocks(data, BS, 'f1');
      assert.deepEqual(blocks.slice(0, 3), [{ blk: 0, ver: 1, ok: true }, { blk: 1, ver: 0, ok: true }, { blk: 2, ver: 2, ok: true }]);
      assert.equal(blocks[3].ok, false);
      assert.match(blocks[3].why!, /short block: 10 of 512 bytes/);
    });

    it('readBlocks parses a file on disk', () => {
      const dir = scratchDir('block-checker-');
      try {
        fs.writeFileSync(path.join(dir, 'f1'), fileOf([3, 4]));
        assert.deepEqual(readBlocks(path.join(dir, 'f1'), BS), [{ blk: 0, ver: 3, ok: true }, { blk: 1, ver: 4, ok: true }]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('stale writes', () => {
    it('flags a block that goes back to an older version after a newer one was acknowledged', () => {
      const problems = checkNoStaleWrites({ f1: [ack(2, 1, 100), ack(2, 2, 200, 'commit')] },
        [sample(2, 1, 110, 190), sample(2, 2, 210, 290), sample(2, 1, 300)]);
      assert.equal(problems.length, 1);
      assert.match(problems[0], /f1 block 2: stale write: storage showed version 1 in a read started at 300\.0 ms, after version 2 was acknowledged at 200\.0 ms \(commit\)/);
    });

    it('flags a block that still shows the old version in a read started after the newer one was acknowledged', () => {
      const problems = checkNoStaleWrites({ f1: [ack(0, 4, 200)] }, [sample(0, 3, 150, 230)]);
      assert.equal(problems.length, 1);
      assert.match(problems[0], /version 3 until at least a read started at 230\.0 ms \(first seen at 150\.0 ms\), after version 4 was acknowledged at 200\.0 ms/);
    });

    it('flags a block that shows zeros after a version was acknowledged', () => {
      assert.equal(checkNoStaleWrites({ f1: [ack(1, 1, 50)] }, [sample(1, 0, 60)]).length, 1);
    });

    it('accepts an old version read before the newer one was acknowledged', () => {
      // the read started at 199.9, the ack was known at 200: the server may not have written it yet
      assert.deepEqual(checkNoStaleWrites({ f1: [ack(0, 2, 200)] }, [sample(0, 1, 100, 199.9), sample(0, 2, 250)]), []);
    });

    it('accepts a version newer than the last ack (written, not yet acknowledged)', () => {
      assert.deepEqual(checkNoStaleWrites({ f1: [ack(0, 2, 200)] }, [sample(0, 3, 210)]), []);
    });

    it('names the newest acknowledged version too when several were skipped', () => {
      const [p] = checkNoStaleWrites({ f1: [ack(0, 2, 100), ack(0, 3, 150), ack(0, 4, 190)] }, [sample(0, 1, 200)]);
      assert.match(p, /after version 2 was acknowledged at 100\.0 ms \(sync\); version 4 was acknowledged by 190\.0 ms/);
    });

    it('keeps files apart, with acks keyed by file or naming their file', () => {
      const samples = [sample(0, 1, 300, 300, 'f1'), sample(0, 1, 300, 300, 'f2')];
      const byKey = checkNoStaleWrites({ f1: [], f2: [ack(0, 2, 200)] }, samples);
      assert.equal(byKey.length, 1);
      assert.match(byKey[0], /^f2 block 0:/);
      const byField = checkNoStaleWrites([{ ...ack(0, 2, 200), file: 'f1' }], samples);
      assert.equal(byField.length, 1);
      assert.match(byField[0], /^f1 block 0:/);
    });

    it('flags a torn sample', () => {
      const problems = checkNoStaleWrites({ f1: [] }, [{ file: 'f1', blk: 5, ver: 3, t: 10, lastT: 40, ok: false, why: 'torn: header says version 3, fill from byte 64 is version 4' }]);
      assert.equal(problems.length, 1);
      assert.match(problems[0], /f1 block 5: bad content in a read started at 10\.0 ms \(still at 40\.0 ms\): torn/);
    });

    it('flags a version the writer never sent, when given what it sent', () => {
      const problems = checkNoStaleWrites({ f1: [] }, [sample(0, 9, 10)], { f1: [{ blk: 0, ver: 1, t: 1, how: '' }] });
      assert.deepEqual(problems.length, 1);
      assert.match(problems[0], /version 9 at 10\.0 ms, which the writer never sent \(highest sent: 1\)/);
    });
  });

  describe('final content', () => {
    it('accepts storage holding the last acknowledged version of every block', () => {
      assert.deepEqual(compareFinal('f1', parseBlocks(fileOf([2, 0, 7]), BS), [2, 0, 7]), []);
    });

    it('flags a block holding an older version than the last acknowledged one', () => {
      const problems = compareFinal('f1', parseBlocks(fileOf([2, 6, 7]), BS), [2, 7, 7]);
      assert.equal(problems.length, 1);
      assert.match(problems[0], /f1 block 1: storage holds version 6, last acknowledged version is 7 \(an acknowledged write was lost/);
    });

    it('flags a torn block and a file shorter than the writer wrote', () => {
      const data = fileOf([1, 1]);
      data[BS + 100] ^= 0xff;
      const problems = compareFinal('f1', parseBlocks(data, BS), [1, 1, 1]);
      assert.equal(problems.length, 2);
      assert.match(problems[0], /f1: storage has 2 blocks, the writer wrote 3/);
      assert.match(problems[1], /f1 block 1: bad content \(torn: header says version 1, fill differs from byte 100\)/);
    });

    it('checkFinal reads the file and says when it cannot', () => {
      const dir = scratchDir('block-checker-');
      try {
        fs.writeFileSync(path.join(dir, 'f1'), fileOf([1, 2]));
        assert.deepEqual(checkFinal(path.join(dir, 'f1'), BS, [1, 2], 'f1'), []);
        assert.equal(checkFinal(path.join(dir, 'f1'), BS, [1, 3], 'f1').length, 1);
        assert.match(checkFinal(path.join(dir, 'nope'), BS, [1])[0], /cannot read/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('sampler', () => {
    let dir: string;
    beforeEach(() => { dir = scratchDir('block-checker-'); });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('keeps a sample only when a block changes, stamped with the start time of the read', async () => {
      const p = path.join(dir, 'f1');
      fs.writeFileSync(p, fileOf([1, 0]));
      const sampler = new BlockSampler([{ file: 'f1', path: p, blockSize: BS }]);
      const before = monotonicMs();
      await sampler.pass();
      await sampler.pass();
      const changedAt = monotonicMs();
      fs.writeFileSync(p, fileOf([1, 2]));
      await sampler.pass();
      const after = monotonicMs();
      assert.deepEqual(sampler.samples.map((s) => [s.blk, s.ver, s.ok]), [[0, 1, true], [1, 0, true], [1, 2, true]]);
      assert.equal(sampler.passes.length, 3);
      const [b0, b1, b1v2] = sampler.samples;
      assert.ok(b0.t >= before && b0.t === sampler.passes[0]);
      assert.equal(b0.lastT, sampler.passes[2], 'block 0 still showed version 1 in the last pass');
      assert.equal(b1.lastT, sampler.passes[1]);
      assert.ok(b1v2.t >= changedAt && b1v2.t <= after);
    });

    it('samples repeatedly while running, one pass at a time, and not after stop()', async () => {
      const p = path.join(dir, 'f1');
      fs.writeFileSync(p, fileOf([1]));
      const sampler = new BlockSampler([{ file: 'f1', path: p, blockSize: BS }], 5);
      sampler.start();
      while (sampler.passes.length < 3) await new Promise((r) => setImmediate(r));
      await sampler.stop();
      const n = sampler.passes.length;
      for (let i = 1; i < n; i++) assert.ok(sampler.passes[i] > sampler.passes[i - 1], 'passes follow one another');
      await new Promise((r) => setImmediate(r));
      assert.equal(sampler.passes.length, n, 'no pass after stop()');
      assert.equal(sampler.samples.length, 1, 'an unchanged block is one sample however often it is read');
    });

    it('catches a block going back to an older version on storage', async () => {
      const p = path.join(dir, 'f1');
      fs.writeFileSync(p, fileOf([1]));
      const sampler = new BlockSampler([{ file: 'f1', path: p, blockSize: BS }]);
      await sampler.pass();
      fs.writeFileSync(p, fileOf([2]));
      const acks = [ack(0, 2, monotonicMs())];
      await sampler.pass();
      fs.writeFileSync(p, fileOf([1])); // the stale write
      await sampler.pass();
      const problems = checkNoStaleWrites({ f1: acks }, sampler.samples);
      assert.equal(problems.length, 1);
      assert.match(problems[0], /f1 block 0: stale write: storage showed version 1/);
    });

    it('keeps a block that stays torn as a bad sample', async () => {
      const p = path.join(dir, 'f1');
      const data = fileOf([4, 4]);
      blockContent(1, 5, 'f1', BS).copy(data, BS + 256, 256);
      fs.writeFileSync(p, data);
      const sampler = new BlockSampler([{ file: 'f1', path: p, blockSize: BS }]);
      await sampler.pass();
      assert.deepEqual(sampler.samples.map((s) => [s.blk, s.ver, s.ok]), [[0, 4, true], [1, 4, false]]);
      assert.equal(sampler.transientTorn, 0);
      assert.equal(checkNoStaleWrites({ f1: [] }, sampler.samples).length, 1);
    });

    it('skips a file that does not exist yet', async () => {
      const sampler = new BlockSampler([{ file: 'f1', path: path.join(dir, 'f1'), blockSize: BS }]);
      await sampler.pass();
      assert.deepEqual(sampler.samples, []);
      assert.equal(sampler.readErrors, 0);
    });
  });
});
