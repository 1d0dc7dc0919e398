import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const OPS_PROMETHEUS = path.resolve(__dirname, '..', '..', '..', 'ops', 'prometheus');

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: OPS_PROMETHEUS, encoding: 'utf8' });
  if (r.error) throw new Error(`promtool is missing (${r.error.message}): run test/setup.sh as root (it installs Debian's prometheus package)`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Prometheus alert rules shipped in ops/prometheus (promtool)', function () {
  this.timeout(60_000);
  it('are valid rules: promtool check rules', () => {
    const r = promtool(['check', 'rules', 'nfsha-alerts.yml']);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /SUCCESS: 9 rules found/);
  });

  it('fire as their unit tests say (no leader, a held login, maintenance left on a day, an expiring certificate, a failed fence): promtool test rules', () => {
    const r = promtool(['test', 'rules', 'nfsha-alerts.test.yml']);
    assert.equal(r.status, 0, r.out);
  });
});
