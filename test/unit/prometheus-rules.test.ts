import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scratchDir } from '../support/scratch';

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

  it('the Grafana dashboard (ops/grafana) is JSON whose every panel query is valid PromQL (checked as recording rules)', () => {
    const dashboard = JSON.parse(fs.readFileSync(path.join(OPS_PROMETHEUS, '..', 'grafana', 'nfsha-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    assert.ok(exprs.length >= 10);
    const dir = scratchDir('nfsha-dash-');
    try {
      const file = path.join(dir, 'dashboard-queries.yml');
      fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${exprs.map((e, i) => `      - record: nfsha:dashboard_query_${i}\n        expr: ${JSON.stringify(e)}\n`).join('')}`);
      const r = promtool(['check', 'rules', file]);
      assert.equal(r.status, 0, r.out);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fire as their unit tests say (no leader, a held login, maintenance left on a day, an expiring certificate, a failed fence): promtool test rules', () => {
    const r = promtool(['test', 'rules', 'nfsha-alerts.test.yml']);
    assert.equal(r.status, 0, r.out);
  });
});
