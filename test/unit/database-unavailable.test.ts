import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import winston from 'winston';
import { logger } from '../../src/log/logger.ts';
import { describeDatabaseError, isDatabaseUnavailable } from '../../src/store/database-unavailable.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('telling a database outage from a bug', () => {
  const outages: Array<[string, unknown]> = [
    ['a pool that found no connection in time', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' })],
    ['a refused connection', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')],
    ['a connection terminated by the server (failover, pg_terminate_backend)', withCode('57P01', 'terminating connection due to administrator command')],
    ['a server starting up', withCode('57P03', 'the database system is starting up')],
    ['a statement timeout', withCode('57014', 'canceling statement due to statement timeout')],
    ['a connection exception', withCode('08006')],
    ['too many connections', withCode('53300')],
    ['a database that refuses connections', withCode('55000', 'database "brana" is not currently accepting connections')],
    ['a client that got no answer', new Error('select 1 - Query read timeout')],
    ['an outage wrapped by another module, message only', new Error('the assertion log refused a record (consent_given): terminating connection due to administrator command')],
    ['an outage as the cause of another error', new Error('could not resolve the person', { cause: withCode('ECONNRESET') })],
    ['a busy SQLite file', withCode('SQLITE_BUSY', 'SQLITE_BUSY: database is locked')],
    ['a connection attempt that got no answer (pg’s connectionTimeoutMillis)', new Error('timeout expired')],
    ['a server that became read-only (a failover)', withCode('25006', 'cannot execute INSERT in a read-only transaction')],
    ['a lock not granted in time', withCode('55P03', 'canceling statement due to lock timeout')],
  ];
  for (const [what, err] of outages) it(`counts ${what} as an outage (503)`, () => assert.equal(isDatabaseUnavailable(err), true));

  const bugs: Array<[string, unknown]> = [
    ['a unique-key violation', withCode('23505', 'duplicate key value violates unique constraint')],
    ['an SQL syntax error', withCode('42601', 'syntax error at or near "FORM"')],
    ['a missing table', withCode('42P01', 'relation "sep" does not exist')],
    ['a SQLite constraint', withCode('SQLITE_CONSTRAINT', 'UNIQUE constraint failed: person.register_id')],
    ['a programming error', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['nothing at all', undefined],
  ];
  for (const [what, err] of bugs) it(`does not count ${what} as an outage`, () => assert.equal(isDatabaseUnavailable(err), false));
});

describe('what an operator reads of a database error in the log', () => {
  it('keeps the database code readable and the SQL out, while an authorization code stays redacted', () => {
    const lines: string[] = [];
    const sink = new winston.transports.Stream({ stream: new Writable({ write: (chunk: Buffer, _encoding, done) => (lines.push(chunk.toString('utf8')), done()) }) });
    logger.add(sink);
    try {
      const err = withCode('57P01', 'select * from "oidc_model" where "id" = $1 - terminating connection due to administrator command');
      logger.error('request failed: database unavailable', { ...describeDatabaseError(err), code: 'an-authorization-code' });
    } finally {
      logger.remove(sink);
    }
    const logged = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
    assert.equal(logged.databaseCode, '57P01');
    assert.equal(logged.error, 'terminating connection due to administrator command');
    assert.equal(logged.code, '[redacted]');
    assert.ok(!lines.at(-1)!.includes('oidc_model'), 'no SQL in the log');
  });
});
