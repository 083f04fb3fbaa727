import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifyWriteFailure, isUnreachable } from './write-failure.js';

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
/** PostgreSQL's errors as node-postgres gives them: a message and the SQLSTATE in `code`. */
const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code, severity: 'ERROR' });
const readOnly = pgError('25006', 'cannot execute INSERT in a read-only transaction');
const statementTimeout = pgError('57014', 'canceling statement due to statement timeout');

describe('classifyWriteFailure', () => {
  test('a store that cannot be reached is unreachable', () => {
    for (const err of [refused, pgError('57P01', 'terminating connection due to administrator command'), pgError('08006', 'connection failure'), new Error('Connection terminated unexpectedly')]) {
      assert.equal(classifyWriteFailure(err), 'unreachable', (err as Error).message);
    }
  });

  test('a store that answers but takes no writes is refusing: kept and retried until it does', () => {
    for (const err of [
      readOnly, statementTimeout,
      pgError('53100', 'could not extend file: No space left on device'),
      pgError('53200', 'out of memory'),
      pgError('55P03', 'canceling statement due to lock timeout'),
      pgError('40001', 'could not serialize access due to concurrent update'),
      pgError('40P01', 'deadlock detected'),
      pgError('42501', 'permission denied for table deployments'),
      pgError('58030', 'could not write to file: I/O error'),
      pgError('XX000', 'internal error'),
      new Error('something the client has not seen before'),
    ]) assert.equal(classifyWriteFailure(err), 'refusing', (err as Error).message);
  });

  test('a statement wrong in itself is rejected: it would fail the same way every time', () => {
    for (const err of [
      pgError('23505', 'duplicate key value violates unique constraint'),
      pgError('23503', 'insert or update on table "samples" violates foreign key constraint'),
      pgError('22P02', 'invalid input syntax for type integer'),
      pgError('42601', 'syntax error at or near "FROM"'),
      pgError('42P01', 'relation "samples" does not exist'),
      new TypeError("Cannot read properties of undefined (reading 'id')"),
    ]) assert.equal(classifyWriteFailure(err), 'rejected', (err as Error).message);
  });
});

describe('isUnreachable', () => {
  test('connection errors and server shutdowns are outages', () => {
    assert.ok(isUnreachable(refused));
    assert.ok(isUnreachable({ code: '57P01', message: 'terminating connection due to administrator command' }));
    assert.ok(isUnreachable({ code: '08006', message: 'connection failure' }));
    assert.ok(isUnreachable(new Error('Connection terminated unexpectedly')));
    assert.ok(isUnreachable(new Error('timeout exceeded when trying to connect')));
  });

  test('a refused statement is not an outage', () => {
    assert.ok(!isUnreachable({ code: '23505', message: 'duplicate key value violates unique constraint' }));
    assert.ok(!isUnreachable(new Error('syntax error at or near "FROM"')));
  });
});
