import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MSG_CALL, MSG_REPLY, NFS_PROGRAM, RecordScanner, nullCallRecord, replyVerdict } from '../../common/oncrpc';

/** One record: `fragments` pieces of body, each behind its own mark. */
function record(xid: number, type: number, bodyBytes: number, fragments = 1): Buffer {
  const body = Buffer.alloc(Math.max(8, bodyBytes), 0xab);
  body.writeUInt32BE(xid, 0);
  body.writeUInt32BE(type, 4);
  const parts: Buffer[] = [];
  const size = Math.ceil(body.length / fragments);
  for (let i = 0; i < fragments; i++) {
    const piece = body.subarray(i * size, Math.min(body.length, (i + 1) * size));
    const mark = Buffer.alloc(4);
    mark.writeUInt32BE(((i === fragments - 1 ? 0x80000000 : 0) | piece.length) >>> 0, 0);
    parts.push(mark, piece);
  }
  return Buffer.concat(parts);
}

function scan(chunks: Buffer[]): Array<[number, number]> {
  const seen: Array<[number, number]> = [];
  const s = new RecordScanner((xid, type) => seen.push([xid, type]));
  for (const c of chunks) s.push(c);
  return seen;
}

describe('ONC RPC record marking', () => {
  it('reports each record once, when its last byte arrives, with its XID and message type', () => {
    const stream = Buffer.concat([record(1, MSG_CALL, 200), record(0xfffffffe, MSG_REPLY, 8), record(3, MSG_CALL, 5000, 3)]);
    assert.deepEqual(scan([stream]), [[1, MSG_CALL], [0xfffffffe, MSG_REPLY], [3, MSG_CALL]]);
    const s = new RecordScanner(() => undefined);
    const partial = record(9, MSG_CALL, 300);
    s.push(partial.subarray(0, 200));
    assert.equal(s.atBoundary, false, 'a record cut short is not at a boundary');
    s.push(partial.subarray(200));
    assert.equal(s.atBoundary, true);
  });

  it('finds the same records however the stream is split into chunks (property)', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ xid: fc.nat(), type: fc.constantFrom(MSG_CALL, MSG_REPLY), size: fc.integer({ min: 8, max: 3000 }), frags: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 40 }),
      (records, cuts) => {
        const stream = Buffer.concat(records.map((r) => record(r.xid, r.type, r.size, r.frags)));
        const chunks: Buffer[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const n = cuts[i % cuts.length];
          chunks.push(stream.subarray(at, at + n));
          at += n;
        }
        assert.deepEqual(scan(chunks), records.map((r) => [r.xid, r.type]));
      },
    ));
  });

  it('stops scanning a stream that is not record marking instead of misreading it', () => {
    const s = new RecordScanner(() => assert.fail('no record in plain text'));
    s.push(Buffer.from('hello from 127.0.0.9 via gate-1\n'));
    assert.equal(s.malformed, true);
  });

  it('builds a NULL call that a reply verdict reads back as accepted', () => {
    const call = nullCallRecord(42, NFS_PROGRAM, 3);
    assert.equal(call.readUInt32BE(0), (0x80000000 | 40) >>> 0);
    assert.deepEqual(scan([call]), [[42, MSG_CALL]]);
    const reply = Buffer.alloc(24);
    reply.writeUInt32BE(42, 0);
    reply.writeUInt32BE(MSG_REPLY, 4);
    // reply_stat accepted (0), verifier AUTH_NONE with no body, accept_stat SUCCESS (0)
    assert.deepEqual(replyVerdict(reply), { xid: 42, verdict: 'accepted' });
    reply.writeUInt32BE(1, 20); // PROG_UNAVAIL
    assert.deepEqual(replyVerdict(reply), { xid: 42, verdict: 'error' });
    reply.writeUInt32BE(1, 8); // denied
    assert.deepEqual(replyVerdict(reply), { xid: 42, verdict: 'denied' });
  });
});
