import assert from 'node:assert/strict';
import { IcmpProber } from '../../agent/icmp-prober';

/** Keeps this process busy for `ms`: a GC pause or a loaded ESXi host, as the agent sees it. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* busy */ }
}

describe('agent ICMP prober: its own stall is not a miss (needs root: a raw socket, loopback echo)', () => {
  let prober: IcmpProber;
  before(function () {
    if (process.getuid?.() !== 0) throw new Error('this test needs root (an ICMP raw socket): run the tests as root');
  });
  beforeEach(() => { prober = new IcmpProber(); });
  afterEach(() => prober.close());

  it('answers true for loopback', async () => {
    assert.equal(await prober.probe('127.0.0.1', 500), true);
  });

  it('a reply that came while the process stalled past the timeout counts as an answer', async () => {
    for (let i = 0; i < 5; i++) {
      const answered = prober.probe('127.0.0.1', 20);
      // On loopback the raw socket also sees our own echo request, the
      // moment it is out: stall there, so the reply arrives during the stall
      // and is still unread when the timeout is due.
      const socket = prober['socket']!;
      const onOwnRequest = (buf: Buffer) => {
        if (buf[(buf[0] & 0x0f) * 4] !== 8) return;
        socket.off('message', onOwnRequest);
        stall(120);
      };
      socket.on('message', onOwnRequest);
      assert.equal(await answered, true, `probe ${i + 1}: the reply was in the socket when the timeout fired`);
    }
  });
});
