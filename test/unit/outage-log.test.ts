import assert from 'node:assert/strict';
import { OutageLog } from '../../src/log/outage-log.ts';
import { databaseFailureKind } from '../../src/store/database-unavailable.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the outage log: one line per kind of failure and interval', () => {
  const lines: Array<{ level: string; message: string; meta: Record<string, unknown> }> = [];
  const sink = { log: (level: string, message: string, meta: Record<string, unknown>) => lines.push({ level, message, meta }) };
  beforeEach(() => (lines.length = 0));

  it('tells the first failure of a kind at once, counts the next ones, and says how many at the end of the interval', async () => {
    const log = new OutageLog(sink, 200);
    for (let i = 0; i < 500; i += 1) log.report('warn', 'request failed: database unavailable', 'database_timeout', { method: 'GET', attempt: i });
    log.report('warn', 'request failed: database unavailable', 'pool_exhausted', { method: 'POST' });
    log.report('warn', 'population register unavailable', 'timeout');
    assert.deepEqual(
      lines.map((line) => [line.message, line.meta.kind]),
      [
        ['request failed: database unavailable', 'database_timeout'],
        ['request failed: database unavailable', 'pool_exhausted'],
        ['population register unavailable', 'timeout'],
      ],
      'one line per kind, with the first occurrence’s details',
    );
    assert.equal(lines[0]!.meta.attempt, 0);
    await sleep(300);
    assert.equal(lines.length, 4, 'one summary, for the only kind that repeated');
    assert.equal(lines[3]!.message, 'request failed: database unavailable (499 more like this in the last 200 ms)');
    assert.deepEqual(lines[3]!.meta, { kind: 'database_timeout', repeated: 499 });
  });

  it('goes on with one summary per interval while the failures go on, and tells the next one in full after a quiet interval', async () => {
    const log = new OutageLog(sink, 100);
    log.report('error', 'database', 'database_unreachable', { detail: 'ECONNREFUSED' });
    log.report('error', 'database', 'database_unreachable');
    await sleep(150);
    log.report('error', 'database', 'database_unreachable');
    await sleep(100);
    assert.deepEqual(lines.map((line) => line.meta.repeated ?? 'full'), ['full', 1, 1]);
    await sleep(150);
    log.report('error', 'database', 'database_unreachable', { detail: 'again' });
    assert.equal(lines.length, 4);
    assert.equal(lines[3]!.meta.detail, 'again', 'after a quiet interval a failure is told in full');
    log.report('error', 'database', 'database_unreachable');
    log.flush();
    assert.equal(lines.at(-1)!.meta.repeated, 1, 'flush writes what was counted');
  });
});

describe('the kind of a database outage', () => {
  const kinds: Array<[string, unknown, string]> = [
    ['a pool with every connection busy', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError', poolExhausted: true }), 'pool_exhausted'],
    ['no new connection in time', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError', poolExhausted: false }), 'database_timeout'],
    ['a statement without an answer', new Error('select 1 - Query read timeout'), 'database_timeout'],
    ['pg’s connection timeout', new Error('timeout expired'), 'database_timeout'],
    ['a statement timeout', withCode('57014', 'canceling statement due to statement timeout'), 'database_timeout'],
    ['a refused connection', withCode('ECONNREFUSED'), 'database_unreachable'],
    ['a database not accepting connections', withCode('55000', 'database "brana" is not currently accepting connections'), 'database_unreachable'],
    ['an administrator’s shutdown', withCode('57P01', 'terminating connection due to administrator command'), 'database_shutdown'],
    ['a lock not granted in time', withCode('55P03', 'canceling statement due to lock timeout'), 'database_unwritable'],
    ['a read-only server', withCode('25006', 'cannot execute INSERT in a read-only transaction'), 'database_unwritable'],
    ['too many connections', withCode('53300', 'sorry, too many clients already'), 'database_overloaded'],
    ['an outage as the cause of another error', new Error('could not resolve the person', { cause: withCode('ECONNRESET') }), 'database_unreachable'],
  ];
  for (const [what, err, kind] of kinds) it(`names ${what} ${kind}`, () => assert.equal(databaseFailureKind(err), kind));
});
