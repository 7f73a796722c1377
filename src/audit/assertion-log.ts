import { createHash, randomBytes } from 'node:crypto';
import { logger } from '../log/logger.ts';
import { isPostgres, type Database, type Queryable, type Transaction } from '../store/database.ts';
import { applyAuditFilter, type AuditFilter } from './audit-filter.ts';
import { canonicalJson, chainHash, contentDigest, type RecordContent } from './chain.ts';
import { chainHead, LogSequencer, type SequencerSettings } from './log-sequencer.ts';
import type { RecordSeal } from './seal.ts';

/** The fixed list of things that happen to a login or a registration, after Sweden Connect's audit design. */
export const AUDIT_EVENTS = [
  'request_received',
  'request_sent_upstream',
  'response_received',
  'identity_resolved',
  'consent_given',
  'consent_refused',
  'consent_revoked',
  'token_issued',
  'token_revoked',
  'grant_revoked',
  'logout',
  'error',
  'sep_registered',
  'sep_status_changed',
  'sep_changed',
  'metadata_refreshed',
  'metadata_refresh_failed',
  'keys_rotated',
  'operator_added',
  'operator_revoked',
  'audit_queried',
  'audit_exported',
  'audit_purged',
  // SeP onboarding: every change to a registration or a tile is an administrative event.
  'sep_updated',
  'sep_approved',
  'sep_rejected',
  'sep_secret_rotated',
  'sep_initial_token_issued',
  'tile_requested',
  'tile_approved',
  'tile_rejected',
  // The citizen opening My account (Brána's own SeP).
  'account_login',
  // Staff: their roles (granted and revoked through the CLI) and their sign-ins to the consoles.
  'staff_granted',
  'staff_revoked',
  'console_login',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export function isAuditEvent(value: unknown): value is AuditEvent {
  return typeof value === 'string' && (AUDIT_EVENTS as readonly string[]).includes(value);
}

export interface AuditRecord {
  event: AuditEvent;
  outcome: 'success' | 'failure';
  sepId?: string | null;
  requestId?: string | null;
  means?: string | null;
  /** The per-SeP pseudonym, never Brána's internal person id. */
  pseudonym?: string | null;
  loa?: string | null;
  reason?: string | null;
  /** Names, hashes and ids; attribute values only where the operator turned value logging on for the SeP. */
  detail?: Record<string, unknown>;
}

export interface StoredAuditRecord extends Required<Omit<AuditRecord, 'detail'>> {
  seq: number;
  /** The record's name from staging (part of its hashed content); absent for records written inline. */
  rid?: string;
  at: number;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** A row of `assertion_log` as the database holds it. */
export interface AssertionLogRow extends RecordContent {
  seq: number;
  prev_hash: string;
  hash: string;
  seal: string | null;
}

/** Records appended by one statement at most (appendMany). */
const RECORDS_PER_STATEMENT = 100;

// Any constant: serialises inline appenders across PostgreSQL connections so the chain stays linear.
const CHAIN_LOCK_KEY = 4_242_001;

/** The widths of the keyed columns (migration 001). */
const COLUMN_WIDTHS = { sep_id: 64, request_id: 200, means: 40, pseudonym: 100, loa: 16, reason: 80 } as const;
type KeyedColumn = keyof typeof COLUMN_WIDTHS;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Bounds on what one record may hold, so that one request cannot write more than a few kB to the
 * tamper-evident log (which is kept for years and cannot be pruned of one record): a string longer
 * than `AUDIT_STRING_MAX` keeps its beginning, a marker and the SHA-256 of the whole value (enough to
 * recognise it later, not to flood with it); a detail still longer than `DETAIL_MAX` as JSON is
 * replaced by its beginning and digest.
 */
export const AUDIT_STRING_MAX = 512;
/** Bytes of the detail as stored (UTF-8 JSON), whatever the characters. */
const DETAIL_MAX = 4096;
const ARRAY_MAX = 100;
const KEY_MAX = 200;

function bounded(value: string, max = AUDIT_STRING_MAX): string {
  if (value.length <= max) return value;
  let head = value.slice(0, max);
  if (/[\uD800-\uDBFF]$/.test(head)) head = head.slice(0, -1);
  return `${head}…[truncated: ${value.length} characters, sha256 ${createHash('sha256').update(value).digest('hex')}]`;
}

function boundedDetail(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return bounded(value);
  if (Array.isArray(value)) {
    const kept = value.slice(0, ARRAY_MAX).map((item) => boundedDetail(item, depth + 1));
    return value.length > ARRAY_MAX ? [...kept, `…[truncated: ${value.length} items]`] : kept;
  }
  if (value && typeof value === 'object') {
    if (depth > 8) return '…[truncated: nested too deep]';
    const entries = Object.entries(value as Record<string, unknown>);
    // fromEntries defines own properties, so a key named __proto__ stays a key.
    return Object.fromEntries(entries.slice(0, ARRAY_MAX).map(([key, item]) => [bounded(key, KEY_MAX), boundedDetail(item, depth + 1)]));
  }
  return value;
}

/** The detail's canonical JSON text, bounded: computed once, for the size check and for the record. */
function boundDetail(detail: Record<string, unknown>): string {
  const json = canonicalJson(boundedDetail(detail));
  if (Buffer.byteLength(json) <= DETAIL_MAX) return json;
  return canonicalJson({ truncated: { characters: json.length, sha256: createHash('sha256').update(json).digest('hex'), head: bounded(json, 512) } });
}

/**
 * A keyed column holds what fits: a value too long for its column, or one PostgreSQL cannot store
 * as text (NUL, a lone surrogate), is kept in `detail.intact` — whole up to `AUDIT_STRING_MAX`
 * characters, bounded beyond — and only a marked, safe prefix goes into the column. The record is
 * written either way: a hostile value must not cost a record.
 */
function fitColumns(record: AuditRecord): { columns: Record<KeyedColumn, string | null>; intact: Record<string, string> } {
  const given: Record<KeyedColumn, string | null> = {
    sep_id: record.sepId ?? null,
    request_id: record.requestId ?? null,
    means: record.means ?? null,
    pseudonym: record.pseudonym ?? null,
    loa: record.loa ?? null,
    reason: record.reason ?? null,
  };
  const intact: Record<string, string> = {};
  for (const column of Object.keys(COLUMN_WIDTHS) as KeyedColumn[]) {
    const value = given[column];
    if (value === null) continue;
    const width = COLUMN_WIDTHS[column];
    if (value.length <= width && !LONE_SURROGATE.test(value) && !value.includes('\0')) continue;
    intact[column] = bounded(value);
    const safe = value.replace(LONE_SURROGATES, '\uFFFD').replaceAll('\0', '\uFFFD');
    let cut = safe.slice(0, width - 1);
    if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
    given[column] = safe.length <= width ? safe : `${cut}…`;
  }
  return { columns: given, intact };
}

export function storedRecordOf(row: AssertionLogRow): StoredAuditRecord {
  return { seq: Number(row.seq), ...committedOf(row), prevHash: row.prev_hash, hash: row.hash, ...(row.rid ? { rid: row.rid } : {}) };
}

/**
 * A record could not be written (the step it belongs to fails with it). The message leaves out the
 * SQL and its values, which the database driver puts into its own: they may hold attribute values.
 */
export class AssertionLogWriteFailed extends Error {
  constructor(event: string, cause: unknown) {
    const native = String((cause as Error)?.message ?? cause);
    super(`the assertion log refused a record (${event}): ${native.slice(native.lastIndexOf(' - ') + 1).replace(/^- /, '').trim()}`);
    this.name = 'AssertionLogWriteFailed';
  }
}

/**
 * How records reach the chain. `inline`: each append takes its position inside the step's own
 * transaction (SQLite, where the database has one writer anyway, and one process writes). `staged`:
 * each append is a sealed row in `assertion_log_staged`, written in the step's transaction without
 * any lock, and the `LogSequencer` chains it right after, in short transactions of its own — so that
 * no step of any node waits on another node's transaction (PostgreSQL; docs/AUDIT-LOG.md).
 */
/**
 * The name of a staged record (`rid`, 36 characters): a counter of this process followed by 64 random
 * bits of this process. Unique (the counter never repeats within a process, the random part tells
 * processes apart), and increasing in the order this process stages records: the sequencer chains
 * by time, then by name, so the records of one step (the ACS's response_received and
 * identity_resolved, stamped in the same millisecond) keep their order on the chain. A random name
 * would order them by chance.
 */
const RECORD_NAME_SUFFIX = randomBytes(8).toString('hex');
let recordNameCounter = BigInt(Date.now()) << 16n;

export function nextRecordName(): string {
  recordNameCounter += 1n;
  const hex = recordNameCounter.toString(16).padStart(16, '0').slice(-16) + RECORD_NAME_SUFFIX;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export type Sequencing = 'inline' | 'staged';

export interface AssertionLogOptions {
  /** Seals every record; records without a valid seal are forgeries to the verifier. */
  seal: RecordSeal;
  /** The clock records are stamped with (tests seed weeks of history through it). */
  clock?: () => number;
  /** Defaults to `staged` on PostgreSQL and `inline` on SQLite. */
  sequencing?: Sequencing;
  sequencer?: Partial<SequencerSettings>;
}

export interface QueryOptions {
  /** Only records after this sequence number (paging). */
  afterSeq?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

/** A record whose step has committed: what happened, not yet necessarily where it sits in the chain. */
export type CommittedRecord = Omit<StoredAuditRecord, 'seq' | 'prevHash' | 'hash'>;
type CommittedListener = (record: CommittedRecord) => void;
type ChainedListener = (lastSeq: number) => void;

/** The record's content as stored and hashed: columns fitted, detail bounded and canonical. */
function contentOfRecord(record: AuditRecord, at: number): RecordContent {
  if (!(AUDIT_EVENTS as readonly string[]).includes(record.event)) throw new Error(`unknown audit event ${String(record.event)}`);
  const { columns, intact } = fitColumns(record);
  const detail = boundDetail(Object.keys(intact).length ? { ...(record.detail ?? {}), intact } : (record.detail ?? {}));
  return { at, event: record.event, ...columns, outcome: record.outcome, detail };
}

function committedOf(content: RecordContent): CommittedRecord {
  return {
    at: Number(content.at),
    event: content.event as AuditEvent,
    sepId: content.sep_id,
    requestId: content.request_id,
    means: content.means,
    pseudonym: content.pseudonym,
    loa: content.loa,
    outcome: content.outcome as 'success' | 'failure',
    reason: content.reason,
    detail: JSON.parse(content.detail) as Record<string, unknown>,
  };
}

/**
 * The assertion log: an append-only, hash-chained, sealed table. Appends take part in the caller's
 * transaction, so a step and its record are written together or not at all. Records are numbered
 * 1, 2, 3… without gaps (a gap is a deleted record). Reads through this class see every record
 * committed before them (staged ones are chained first).
 */
export class AssertionLog {
  private readonly db: Database;
  private readonly seal: RecordSeal;
  private readonly clock: () => number;
  readonly sequencing: Sequencing;
  private readonly sequencer: LogSequencer | null;
  private readonly committedListeners: CommittedListener[] = [];
  private readonly chainedListeners: ChainedListener[] = [];
  /** Inline: the head of the chain as seen inside each open transaction, so a second append there needs no query. */
  private readonly heads = new WeakMap<Transaction, { seq: number; prevHash: string }>();
  /**
   * Inline on SQLite: where the chain stood after the last transaction of this process committed,
   * so that a transaction need not read the head first. SQLite runs this process's transactions one
   * at a time (one connection); another process's append makes the remembered position clash on
   * the primary key, and the head is then read.
   */
  private committedHead: { seq: number; prevHash: string } | null = null;
  /** Transactions already told to chain their staged records after they commit. */
  private readonly staging = new WeakSet<Transaction>();

  constructor(db: Database, options: AssertionLogOptions) {
    this.db = db;
    this.seal = options.seal;
    this.clock = options.clock ?? Date.now;
    this.sequencing = options.sequencing ?? (isPostgres(db) ? 'staged' : 'inline');
    this.sequencer = this.sequencing === 'staged' ? new LogSequencer(db, this.seal, (seq) => this.chained(seq), options.sequencer) : null;
  }

  /** Called with each record once its step's transaction has committed (metrics). */
  onCommitted(listener: CommittedListener): void {
    this.committedListeners.push(listener);
  }

  /** Called with the position of the newest record once records are committed in the chain (checkpoints). */
  onChained(listener: ChainedListener): void {
    this.chainedListeners.push(listener);
  }

  private chained(lastSeq: number): void {
    for (const listener of this.chainedListeners) {
      try {
        listener(lastSeq);
      } catch (err) {
        logger.error('assertion log listener failed', { error: (err as Error).message });
      }
    }
  }

  private afterCommit(trx: Transaction, content: RecordContent, seq?: number): void {
    if (!this.committedListeners.length && seq === undefined) return;
    trx.executionPromise.then(
      () => {
        if (this.committedListeners.length) {
          const record = committedOf(content);
          for (const listener of this.committedListeners) {
            try {
              listener(record);
            } catch (err) {
              logger.error('assertion log listener failed', { error: (err as Error).message });
            }
          }
        }
        if (seq !== undefined) this.chained(seq);
      },
      () => undefined,
    );
  }

  async append(record: AuditRecord, trx?: Transaction): Promise<void> {
    if (!trx) {
      await this.db.transaction((own) => this.append(record, own));
      // A record of its own is in the chain when append returns — unless another node is chaining
      // at this moment (then that node, or the next sweep, takes it): never a wait on another node.
      // The record is committed either way: a failure here only leaves it to the background.
      await this.sequencer?.chainNow().catch(() => this.sequencer!.soon());
      return;
    }
    await this.appendMany([record], trx);
  }

  /**
   * Appends records in the caller's transaction, in this order, in one statement: the chain is
   * computed here (inline), or each record is sealed for staging, before anything is sent.
   */
  async appendMany(records: AuditRecord[], trx: Transaction): Promise<void> {
    if (records.length === 0) return;
    const contents = records.map((record) => contentOfRecord(record, this.clock()));
    // SQLite writes a multi-row insert as a compound SELECT, of at most 500 terms.
    for (let i = 0; i < contents.length; i += RECORDS_PER_STATEMENT) {
      const some = contents.slice(i, i + RECORDS_PER_STATEMENT);
      const events = [...new Set(some.map((content) => content.event))].join(', ');
      if (this.sequencer) await this.stage(some, events, trx);
      else await this.appendInline(some, events, trx);
    }
  }

  private async stage(contents: RecordContent[], events: string, trx: Transaction): Promise<void> {
    const rows = contents.map((content) => {
      const staged = { ...content, rid: nextRecordName() };
      return { ...staged, seal: this.seal.ofStaged(staged.rid, contentDigest(staged)) };
    });
    try {
      await trx('assertion_log_staged').insert(rows);
    } catch (err) {
      throw new AssertionLogWriteFailed(events, err);
    }
    for (const content of contents) this.afterCommit(trx, content);
    if (!this.staging.has(trx)) {
      this.staging.add(trx);
      const sequencer = this.sequencer!;
      trx.executionPromise.then(
        () => sequencer.soon(),
        () => undefined,
      );
    }
  }

  private async appendInline(contents: RecordContent[], events: string, trx: Transaction, remembered = true): Promise<void> {
    let head = this.heads.get(trx);
    const first = !head;
    if (!head) {
      if (isPostgres(trx)) {
        // Inline on PostgreSQL (only when configured so): the lock keeps the head read under it the head.
        await trx.raw('SELECT pg_advisory_xact_lock(?)', [CHAIN_LOCK_KEY]);
        head = await chainHead(trx);
      } else {
        head = (remembered ? this.committedHead : null) ?? (await chainHead(trx));
      }
    }
    let { seq, prevHash } = head;
    const rows: AssertionLogRow[] = [];
    for (const content of contents) {
      const hash = chainHash(prevHash, contentDigest(content));
      rows.push({ seq, ...content, prev_hash: prevHash, hash, seal: this.seal.of(seq, hash) });
      seq += 1;
      prevHash = hash;
    }
    try {
      await trx('assertion_log').insert(rows);
    } catch (err) {
      this.heads.delete(trx);
      // Another process (the CLI) appended since this one last committed: the remembered head is
      // taken, and the records go after the real one. (A failed statement leaves SQLite's
      // transaction usable.)
      if (first && remembered && this.committedHead && /UNIQUE constraint failed: assertion_log\.seq/.test(String((err as Error)?.message))) {
        this.committedHead = null;
        return this.appendInline(contents, events, trx, false);
      }
      throw new AssertionLogWriteFailed(events, err);
    }
    this.heads.set(trx, { seq, prevHash });
    if (first && !isPostgres(trx)) {
      trx.executionPromise.then(
        () => {
          const committed = this.heads.get(trx);
          if (committed && (!this.committedHead || committed.seq > this.committedHead.seq)) this.committedHead = committed;
        },
        () => undefined,
      );
    }
    rows.forEach((row, i) => this.afterCommit(trx, contents[i]!, row.seq));
  }

  /** Every record committed so far is in the chain (staged: chains what waits; inline: nothing to do). */
  async settled(): Promise<void> {
    if (this.sequencer) await this.sequencer.drain();
  }

  /** As `settled`, waiting up to `waitMs` for another node's sequencing run to end. */
  async settledWithin(waitMs: number): Promise<void> {
    if (this.sequencer) await this.sequencer.drain(waitMs);
  }

  /** Background chaining and the sweep for records no one chained (staged only). */
  start(): void {
    this.sequencer?.start();
  }

  /** Chains what this process staged and stops the sweep (before the database closes). */
  async stop(): Promise<void> {
    await this.sequencer?.stop();
  }

  /** Reads on the database itself first chain what waits; reads inside a transaction see what it sees. */
  private async readable(trx: Queryable): Promise<void> {
    if (trx === this.db) await this.settled();
  }

  async query(filter: AuditFilter = {}, options: QueryOptions = {}, trx: Queryable = this.db): Promise<StoredAuditRecord[]> {
    await this.readable(trx);
    const query = applyAuditFilter(trx('assertion_log'), filter);
    if (options.afterSeq !== undefined) query.where('seq', options.order === 'desc' ? '<' : '>', options.afterSeq);
    query.orderBy('seq', options.order ?? 'asc');
    if (options.limit !== undefined) query.limit(options.limit);
    return ((await query) as AssertionLogRow[]).map(storedRecordOf);
  }

  /**
   * The newest records of these events among a citizen's pseudonyms (My account). Found through the
   * pseudonym index alone — the numbers and kinds first, then the few rows — so that no query plan
   * can turn it into a backward walk over the whole log in `seq` order (what an ORDER BY … LIMIT
   * over the pseudonym and event indexes becomes on PostgreSQL as the log grows).
   */
  async latestOf(pseudonyms: readonly string[], events: readonly AuditEvent[], limit: number, trx: Queryable = this.db): Promise<StoredAuditRecord[]> {
    if (!pseudonyms.length || !events.length) return [];
    await this.readable(trx);
    const hits = (await trx('assertion_log').whereIn('pseudonym', [...pseudonyms]).select('seq', 'event')) as Array<{ seq: number | string; event: string }>;
    const wanted = new Set<string>(events);
    const seqs = hits
      .filter((hit) => wanted.has(hit.event))
      .map((hit) => Number(hit.seq))
      .sort((a, b) => b - a)
      .slice(0, limit);
    if (!seqs.length) return [];
    return ((await trx('assertion_log').whereIn('seq', seqs).orderBy('seq', 'desc')) as AssertionLogRow[]).map(storedRecordOf);
  }

  /** How many records match (e.g. a SeP's completed logins: `token_issued`, for its tile). */
  async count(filter: AuditFilter, trx: Queryable = this.db): Promise<number> {
    await this.readable(trx);
    const [row] = (await applyAuditFilter(trx('assertion_log'), filter).count({ n: '*' })) as Array<{ n: number | string }>;
    return Number(row?.n ?? 0);
  }
}
