import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const DIST_COMMON = path.resolve(__dirname, '..', '..', 'common');

/** The lines a logger module writes to stdout for the same calls, parsed, without their times. */
function linesOf(module: 'log' | 'light-log', level = 'info'): Array<Record<string, unknown>> {
  const script = `
    const { createLogger } = require(${JSON.stringify(path.join(DIST_COMMON, module))});
    const log = createLogger('agent', { host: 'esx-2' });
    log.info({ ev: 'route.changed', from: 'local', to: '10.10.0.13', ms: 12 }, 'route changed');
    log.debug({ ev: 'probe.detail' }, 'only at debug');
    const boom = new Error('boom');
    log.error({ ev: 'route.failed', err: boom }, 'route change failed');
    log.warn('a bare message');
    log.child({ target: 'scvm-3' }).warn({ ev: 'probe.down' }, 'target down');
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, NFSHA_LOG_LEVEL: level } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    assert.match(String(o.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'an ISO time');
    delete o.time;
    const err = o.err as Record<string, unknown> | undefined;
    if (err) assert.match(String(err.stack), /^Error: boom/);
    if (err) delete err.stack;
    return o;
  });
}

describe('the agent executable\'s light logger (common/light-log, instead of pino)', () => {
  it('writes the same JSON lines as the pino logger, field for field, for the calls the agent makes', () => {
    const light = linesOf('light-log');
    assert.deepEqual(light, linesOf('log'));
    assert.deepEqual(light[0], { level: 'info', c: 'agent', host: 'esx-2', ev: 'route.changed', from: 'local', to: '10.10.0.13', ms: 12, msg: 'route changed' });
    assert.deepEqual(light[1].err, { type: 'Error', message: 'boom' });
    assert.equal(light.length, 4, 'the debug line is left out at info');
  });

  it('honours NFSHA_LOG_LEVEL as the pino logger does', () => {
    assert.deepEqual(linesOf('light-log', 'debug'), linesOf('log', 'debug'));
    assert.equal(linesOf('light-log', 'debug').length, 5);
    assert.deepEqual(linesOf('light-log', 'error').map((l) => l.ev), ['route.failed']);
  });
});
