import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database, Queryable, Transaction } from './database.ts';

/**
 * What one request (or one CLI command) may have left in the database, so that a failure can be
 * told truthfully: "nothing was changed" only when no write of it was committed or sent to commit.
 *
 * It errs on the side of caution: a write counts from the moment it is sent (a statement outside a
 * transaction), or from the moment its transaction's COMMIT is sent, whether or not the database
 * then confirmed it. A transaction that rolled back, or failed before its COMMIT, counts for nothing.
 */
export class RequestWrites {
  /** Something this request wrote may be in the database. */
  mayHaveChanged = false;
  /** Connections in a transaction of this request (from BEGIN to COMMIT or ROLLBACK). */
  readonly open = new Set<string>();
  /** Connections whose open transaction has written. */
  readonly writing = new Set<string>();
  /** The token endpoint's single-use consumption and the writes after it, held for one transaction. */
  held: HeldWrites | undefined;
  /**
   * The last outage this request met, and when: database.ts does not let the request wait for the
   * database again (its later calls fail at once), so that it meets the timeout once, not per call.
   */
  failed: unknown = undefined;
  failedAt = 0;
  /**
   * Rows this request has read, by table and key (see rememberedRead): a login's request reads its
   * SeP, interaction or grant more than once, and each read is a round trip to the database. A
   * write this request sends to a table forgets what it remembered of that table.
   */
  readonly reads = new Map<string, Promise<unknown>>();
  /** Counts the writes this request has sent: rows read along with another are kept only if none was sent meanwhile. */
  writesSent = 0;
}

const storage = new AsyncLocalStorage<RequestWrites>();

/** Runs `fn` (and everything it starts) as one request whose writes are counted in `writes`. */
export function withRequestWrites<T>(writes: RequestWrites, fn: () => T): T {
  return storage.run(writes, fn);
}

export function currentRequestWrites(): RequestWrites | undefined {
  return storage.getStore();
}

/** Runs `fn` as no request at all: shared work (the readiness probe answering many requests). */
export function outsideRequests<T>(fn: () => T): T {
  return storage.exit(fn);
}

/**
 * Writes that the requests before this point of a command (migrations, opening the audit trail) made
 * are not the command's own: counting starts afresh.
 */
export function forgetWritesSoFar(): void {
  const writes = storage.getStore();
  if (!writes) return;
  writes.mayHaveChanged = false;
  writes.open.clear();
  writes.writing.clear();
}

interface QueryEvent {
  __knexUid?: string;
  __knexTxId?: string;
  sql?: string;
}

const WRITE = /^\s*(insert|update|delete|create|alter|drop|truncate|replace|merge)\b/i;
const WRITING_CTE = /^\s*with\b[\s\S]*\b(insert|update|delete)\b/i;

/** Whether a statement writes (reads, locks and transaction control do not). */
export function isWriteStatement(sql: string): boolean {
  return WRITE.test(sql) || WRITING_CTE.test(sql);
}

/**
 * Counts the writes made through `db` in the request they belong to. knex announces every statement
 * (transaction control included) before sending it, in the caller's async context.
 */
export function trackWrites(db: Database): void {
  db.on('query', (query: QueryEvent) => {
    const writes = storage.getStore();
    if (!writes || typeof query.sql !== 'string') return;
    const connection = query.__knexUid ?? '';
    const sql = query.sql.trimStart();
    if (/^BEGIN\b/i.test(sql)) {
      writes.open.add(connection);
      writes.writing.delete(connection);
    } else if (/^COMMIT\b/i.test(sql)) {
      writes.open.delete(connection);
      if (writes.writing.delete(connection)) writes.mayHaveChanged = true;
    } else if (/^ROLLBACK\b(?!\s+TO\b)/i.test(sql)) {
      writes.open.delete(connection);
      writes.writing.delete(connection);
    } else if (isWriteStatement(sql)) {
      if (query.__knexTxId || writes.open.has(connection)) writes.writing.add(connection);
      else writes.mayHaveChanged = true;
      writes.writesSent += 1;
      forgetReadsOf(writes, writtenTable(sql));
    }
  });
}

/**
 * A row read once per request: the first read of `key` in `table` goes to the database, later reads
 * in the same request get the same answer until the request writes to that table. Another request's
 * change shows in the next request (a SeP suspended now refuses the next request of its login), and
 * outside a request (CLI, background work) every read goes to the database.
 *
 * The remembered value is the row as the database returned it: each caller builds its own objects.
 */
export function rememberedRead<T>(table: string, key: string, read: () => Promise<T>): Promise<T> {
  const writes = storage.getStore();
  if (!writes) return read();
  const name = `${table}\u0000${key}`;
  const known = writes.reads.get(name) as Promise<T> | undefined;
  if (known) return known;
  // A knex query is a thenable that runs again at each `then`: it is settled into a promise once.
  const reading = Promise.resolve(read());
  writes.reads.set(name, reading);
  // A failed read is not remembered: the next caller asks the database again.
  reading.catch(() => {
    if (writes.reads.get(name) === reading) writes.reads.delete(name);
  });
  return reading;
}

/** A row read, and the rows read with it in the same statement: each by its table and key. */
export interface ReadWithRelated<T> {
  value: T;
  related: ReadonlyArray<readonly [table: string, key: string, value: unknown]>;
}

/** Where a statement that reads rows along with its own starts: the writes the request had sent by then. */
export function readAlongMark(): number | undefined {
  return storage.getStore()?.writesSent;
}

/**
 * Remembers, for the rest of the request, a row read along with another one by a statement started at
 * `mark` (readAlongMark): a SeP with the request it is for, a grant and a session with their code. Its
 * later reads in this request are answered from that statement, a single snapshot. A row the request
 * had already read keeps the first answer, and nothing is kept if the request sent a write since the
 * statement started (it may have changed the row).
 */
export function rememberAlong(table: string, key: string, value: unknown, mark: number | undefined): void {
  const writes = storage.getStore();
  if (!writes || mark === undefined || writes.writesSent !== mark) return;
  const name = `${table}\u0000${key}`;
  if (!writes.reads.has(name)) writes.reads.set(name, Promise.resolve(value));
}

/**
 * As rememberedRead, for a statement that reads a row together with rows it refers to (a code with
 * its grant and its session): the request remembers those too (rememberAlong).
 */
export function rememberedReadWithRelated<T>(table: string, key: string, read: () => Promise<ReadWithRelated<T>>): Promise<T> {
  const writes = storage.getStore();
  if (!writes) return read().then((answer) => answer.value);
  return rememberedRead(table, key, async () => {
    const mark = readAlongMark();
    const answer = await read();
    for (const [relatedTable, relatedKey, value] of answer.related) rememberAlong(relatedTable, relatedKey, value, mark);
    return answer.value;
  });
}

/**
 * What this request remembers of a row, or else `read` (not remembered: a read inside a transaction
 * may see the transaction's own uncommitted writes).
 */
export function rememberedOr<T>(table: string, key: string, read: () => Promise<T>): Promise<T> {
  const known = storage.getStore()?.reads.get(`${table}\u0000${key}`) as Promise<T> | undefined;
  return known ?? read();
}

/** The table a write statement writes to; undefined when it cannot be told (then every table counts). */
export function writtenTable(sql: string): string | undefined {
  return /^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|replace\s+into|truncate(?:\s+table)?)\s+[`"]?(\w+)[`"]?[\s(]/i.exec(sql + ' ')?.[1]?.toLowerCase();
}

function forgetReadsOf(writes: RequestWrites, table: string | undefined): void {
  if (writes.reads.size === 0) return;
  if (table === undefined) {
    writes.reads.clear();
    return;
  }
  const prefix = `${table}\u0000`;
  for (const name of writes.reads.keys()) if (name.startsWith(prefix)) writes.reads.delete(name);
}

/** A held consumption that found its artefact already consumed when it came to commit. */
export class ConsumedMeanwhile extends Error {
  readonly model: string;
  /** Revokes the grant of the artefact (what oidc-provider does for a reused code); the grant's id. */
  readonly revokeGrant: () => Promise<string | undefined>;

  constructor(model: string, revokeGrant: () => Promise<string | undefined>) {
    super(`${model} already consumed`);
    this.name = 'ConsumedMeanwhile';
    this.model = model;
    this.revokeGrant = revokeGrant;
  }
}

interface HeldConsumption {
  model: string;
  /** Marks it consumed in `trx`; false when it already was (another request won). */
  consume(trx: Transaction): Promise<boolean>;
  revokeGrant(): Promise<string | undefined>;
}

/** Writes rows of one table (an upsert of all of them): held upserts in a row are written by one call. */
export type RowsWriter = (db: Queryable, rows: ReadonlyArray<Record<string, unknown>>) => Promise<void>;

/** One held write, in the order the request made it. */
interface HeldWrite {
  /** The row's key (table and primary key) when the write upserts or deletes one row. */
  key?: string;
  /** An upsert: the row, written with the adjacent upserts of the same writer in one statement. */
  row?: Record<string, unknown>;
  writer?: RowsWriter;
  /** A write that is not one row's upsert (a delete): made alone, in order. */
  write?: (db: Queryable) => Promise<void>;
  /** What is written along with an upsert, after it (a token's log record). */
  after?: (trx: Transaction) => Promise<void>;
  /** The rows this write removes besides `key`, as a test on a held row (a grant's revocation). */
  removes?: (row: Record<string, unknown>) => boolean;
}

/**
 * The writes of a request, held while it runs and committed at its end, all or nothing.
 *
 * - At the token endpoint (`applies`): the consumption of the code (or other single-use artefact)
 *   and what is stored after it (the access token with its `token_issued` record, a refresh token).
 *   A request that fails before that commit leaves the code unused; of two requests racing with one
 *   code, the consumption in the commit lets exactly one through.
 * - At the resume of an authorization (`everyWrite`): every write of oidc-provider's models (the
 *   grant, the code, the session, the interaction's mark), so that the code is stored in one
 *   statement with the rest, or not at all, before the answer that carries it leaves.
 * - At the authorization request (`everyWrite`): the interaction (or what a login answered at once
 *   writes), in the transaction of the login's hand-off or with the request's records (writeIn,
 *   commit's `along`), before the answer that redirects to it leaves.
 *
 * Upserts made one after another are written by one multi-row statement; a commit that is that one
 * statement alone needs no transaction. A held row is what this request reads (heldRow).
 */
export class HeldWrites {
  private readonly applies: () => boolean;
  private readonly all: boolean;
  private db: Database | undefined;
  private readonly consumptions: HeldConsumption[] = [];
  private readonly writes: HeldWrite[] = [];

  /** `applies` tells, when an adapter asks, whether this request's consumptions are to be held. */
  constructor(applies: () => boolean, options: { everyWrite?: boolean } = {}) {
    this.applies = applies;
    this.all = options.everyWrite ?? false;
  }

  /** Holds every write of the request, from the first (no consumption). */
  static everyWrite(): HeldWrites {
    return new HeldWrites(() => false, { everyWrite: true });
  }

  /** Whether a consumption made now is to be held. */
  holdsConsumption(): boolean {
    return this.applies();
  }

  /** Whether a write made now is to be held: every write, or one that comes after a held consumption. */
  holdsWrite(): boolean {
    return this.all || this.consumptions.length > 0;
  }

  get empty(): boolean {
    return this.consumptions.length === 0 && this.writes.length === 0;
  }

  holdConsumption(db: Database, consumption: HeldConsumption): void {
    this.useDatabase(db);
    this.consumptions.push(consumption);
  }

  /** Holds the upsert of one row (`key`: its table and primary key), and what is written after it. */
  holdUpsert(db: Database, key: string, row: Record<string, unknown>, writer: RowsWriter, after?: (trx: Transaction) => Promise<void>): void {
    this.useDatabase(db);
    this.writes.push({ key, row, writer, ...(after ? { after } : {}) });
  }

  /** Holds a delete: of the row `key`, or of the held rows `removes` tells (and what the database has of them). */
  holdDelete(db: Database, write: (db: Queryable) => Promise<void>, what: { key?: string; removes?: (row: Record<string, unknown>) => boolean }): void {
    this.useDatabase(db);
    this.writes.push({ write, ...what });
  }

  /**
   * What this request holds for a row, the latest write first: the row as it will be written, null
   * when the request deletes it, undefined when it holds nothing for it (the database answers).
   * `matches` picks the row (by key, or by another column).
   */
  heldRow(key: string | undefined, matches: (row: Record<string, unknown>) => boolean): Record<string, unknown> | null | undefined {
    for (let i = this.writes.length - 1; i >= 0; i -= 1) {
      const write = this.writes[i]!;
      if (write.row) {
        if (matches(write.row)) return write.row;
      } else if ((key !== undefined && write.key === key) || (write.removes && this.isHeldBefore(i, matches, write.removes))) {
        return null;
      }
    }
    return undefined;
  }

  /** Whether a row `matches` picks was held before write `index`, and `removes` removes it. */
  private isHeldBefore(index: number, matches: (row: Record<string, unknown>) => boolean, removes: (row: Record<string, unknown>) => boolean): boolean {
    for (let i = index - 1; i >= 0; i -= 1) {
      const row = this.writes[i]!.row;
      if (row && matches(row)) return removes(row);
    }
    return false;
  }

  private useDatabase(db: Database): void {
    if (this.db && this.db !== db) throw new Error('held writes of one request must go to one database');
    this.db = db;
  }

  /**
   * Commits everything held, consumptions first; throws ConsumedMeanwhile (nothing written) if one was lost.
   * `along`: what the request writes besides (its log records), last, in the same transaction.
   */
  async commit(along?: (trx: Transaction) => Promise<void>): Promise<void> {
    const db = this.db;
    if (!db || this.empty) return;
    const steps = this.steps();
    const only = steps[0];
    if (!along && this.consumptions.length === 0 && steps.length === 1 && only && !only.some((write) => write.after)) {
      // One statement is atomic on its own: no transaction around it.
      await runStep(db, only);
      return;
    }
    await db.transaction(async (trx) => {
      for (const consumption of this.consumptions) {
        if (!(await consumption.consume(trx))) throw new ConsumedMeanwhile(consumption.model, consumption.revokeGrant);
      }
      await writeSteps(trx, steps);
      await along?.(trx);
    });
  }

  /**
   * Writes everything held in the caller's transaction, with what that transaction writes besides
   * (a login's hand-off or its answer): one commit for all of it. Only for writes held without a
   * consumption (commit() checks those).
   */
  async writeIn(trx: Transaction): Promise<void> {
    if (this.consumptions.length) throw new Error('held consumptions are committed by commit()');
    await writeSteps(trx, this.steps());
  }

  /** The held writes as statements: adjacent upserts by one writer together, each other write alone. */
  private steps(): HeldWrite[][] {
    const steps: HeldWrite[][] = [];
    for (const write of this.writes) {
      const last = steps.at(-1);
      if (write.writer && last?.[0]?.writer === write.writer) last.push(write);
      else steps.push([write]);
    }
    return steps;
  }
}

async function writeSteps(trx: Transaction, steps: HeldWrite[][]): Promise<void> {
  for (const step of steps) {
    await runStep(trx, step);
    for (const write of step) if (write.after) await write.after(trx);
  }
}

/** One statement: a write alone, or the upsert of adjacent rows (a row upserted twice: its last version). */
async function runStep(db: Queryable, step: HeldWrite[]): Promise<void> {
  const first = step[0]!;
  if (first.write) {
    await first.write(db);
    return;
  }
  const rows = new Map<string, Record<string, unknown>>();
  for (const write of step) {
    rows.delete(write.key!);
    rows.set(write.key!, write.row!);
  }
  await first.writer!(db, [...rows.values()]);
}
