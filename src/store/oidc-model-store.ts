import { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { Database, Queryable, Transaction } from './database.ts';
import { sepAlong } from '../sep/sep-store.ts';
import { isPostgres } from './database.ts';
import { currentRequestWrites, readAlongMark, rememberedRead, rememberedReadWithRelated, type ReadWithRelated } from './request-writes.ts';

/** Models whose rows belong to a grant and go when the grant is revoked. */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/**
 * Artefacts that oidc-provider reads with their grant and their session right after them (the token
 * endpoint a code, userinfo an access token): read in one statement with both.
 */
const READ_WITH_GRANT_AND_SESSION = new Set(['AuthorizationCode', 'AccessToken', 'RefreshToken']);

/**
 * Models whose SeP oidc-provider reads right after them in the same request (userinfo an access
 * token's client, the resumed authorization its interaction's): read with them, by the client id in
 * their payload.
 */
const SEP_OF: Readonly<Record<string, readonly string[]>> = { AccessToken: ['clientId'], Interaction: ['params', 'client_id'] };

/**
 * A field of a row's JSON payload, in the database's own SQL. PostgreSQL refuses to turn a JSON string
 * holding \u0000 (or a lone surrogate) into text, and a payload carries what a client sent (a nonce, a
 * hint): a payload with any \u escape gives NULL there, so nothing is read along with it and its
 * grant, session or SeP is read on its own, as before.
 */
function payloadField(db: Queryable, alias: string, path: readonly string[]): string {
  if (isPostgres(db)) return `(case when strpos(${alias}.payload, '\\u') = 0 then ${alias}.payload::json${path.map((key, i) => ` ${i === path.length - 1 ? '->>' : '->'} '${key}'`).join('')} end)`;
  return `json_extract(${alias}.payload, '$.${path.join('.')}')`;
}

/** Runs inside the transaction that stores a model, so a token and its audit record commit together. */
export type StoreHook = (model: string, id: string, payload: AdapterPayload, trx: Transaction) => Promise<void>;

interface Row {
  payload: string;
  expires_at: number | null;
  /** Absent from a row this request holds to write: an upsert leaves consumed_at as it is. */
  consumed_at?: number | null;
}

/** A row of the statement that reads a code or token with its grant (part 1) and its session (part 2). */
interface PartRow extends Row {
  part: number | string;
  grant_id: string | null;
  session_uid: string | null;
}

function rowOf(row: Row | undefined): Row | undefined {
  return row ? { payload: row.payload, expires_at: row.expires_at, consumed_at: row.consumed_at } : undefined;
}

/** A row of oidc_model as it is written. */
interface ModelRow extends Record<string, unknown> {
  model: string;
  id: string;
  payload: string;
  grant_id: string | null;
  uid: string | null;
  user_code: string | null;
  expires_at: number | null;
}

/** Stores models' rows in one statement (an upsert: a row stored again keeps its consumed_at). */
async function writeModelRows(db: Queryable, rows: ReadonlyArray<Record<string, unknown>>): Promise<void> {
  await db('oidc_model').insert(rows).onConflict(['model', 'id']).merge(['payload', 'grant_id', 'uid', 'user_code', 'expires_at']);
}

/**
 * oidc-provider's state (sessions, interactions, grants, codes, tokens…) on knex, so that every node
 * of a cluster shares it. Single-use artefacts are consumed atomically: of two token requests racing
 * with one code, one wins and the other gets invalid_grant with the grant revoked.
 *
 * At the token endpoint (when the request holds its writes, see HeldWrites and token-transaction.ts)
 * the consumption and every write after it are not made at once but committed together at the end
 * of the request: the code is used up only together with the tokens issued for it. At the resume
 * of an authorization, and at the authorization request, every write is held so (resumable-interactions.ts,
 * audit-hooks.ts), and read back from there.
 */
export class KnexModelAdapter implements Adapter {
  private readonly db: Database;
  private readonly model: string;
  /** The model column: the model's name, prefixed for another provider sharing the table. */
  private readonly stored: string;
  private readonly onStore: StoreHook | undefined;

  constructor(db: Database, model: string, onStore?: StoreHook, namespace?: string) {
    this.db = db;
    this.model = model;
    this.stored = namespace ? `${namespace}:${model}` : model;
    this.onStore = onStore;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const held = currentRequestWrites()?.held;
    if (held?.holdsWrite()) {
      const onStore = this.onStore;
      held.holdUpsert(this.db, this.key(id), this.row(id, payload, expiresIn), writeModelRows, onStore ? (trx) => onStore(this.model, id, payload, trx) : undefined);
      return;
    }
    if (!this.onStore) {
      await writeModelRows(this.db, [this.row(id, payload, expiresIn)]);
      return;
    }
    await this.db.transaction((trx) => this.upsertIn(trx, id, payload, expiresIn));
  }

  /** Stores a model in the caller's transaction, with what the store hook writes along with it. */
  async upsertIn(trx: Transaction, id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    await writeModelRows(trx, [this.row(id, payload, expiresIn)]);
    if (this.onStore) await this.onStore(this.model, id, payload, trx);
  }

  /** The key of a row in a request's held writes. */
  private key(id: string): string {
    return `oidc_model\u0000${this.stored}\u0000${id}`;
  }

  private row(id: string, payload: AdapterPayload, expiresIn: number): ModelRow {
    return {
      model: this.stored,
      id,
      payload: JSON.stringify(payload),
      grant_id: GRANTABLE.has(this.model) || this.model === 'Grant' ? (payload.grantId ?? (this.model === 'Grant' ? id : null)) : null,
      uid: payload.uid ?? null,
      user_code: payload.userCode ?? null,
      expires_at: expiresIn ? Date.now() + expiresIn * 1000 : null,
    };
  }

  private async findWhere(column: 'id' | 'uid' | 'user_code', value: string): Promise<AdapterPayload | undefined> {
    // What this request holds to write (the resume of an authorization) is what it reads.
    const held = currentRequestWrites()?.held?.heldRow(column === 'id' ? this.key(value) : undefined, (row) => row.model === this.stored && row[column] === value);
    // oidc-provider loads the same interaction, session or grant more than once in one request.
    const row =
      held === null
        ? undefined
        : ((held as Row | undefined) ??
          (column === 'id' && READ_WITH_GRANT_AND_SESSION.has(this.model)
            ? await rememberedReadWithRelated('oidc_model', this.memoKey(this.stored, column, value), () => this.readWithGrantAndSession(value))
            : column === 'id' && SEP_OF[this.model]
              ? await rememberedRead('oidc_model', this.memoKey(this.stored, column, value), () => this.readWithSep(value, SEP_OF[this.model]!))
              : await rememberedRead('oidc_model', this.memoKey(this.stored, column, value), () =>
                this.db('oidc_model').where({ model: this.stored, [column]: value }).first('payload', 'expires_at', 'consumed_at') as Promise<Row | undefined>,
              )));
    if (!row) return undefined;
    if (row.expires_at !== null && Number(row.expires_at) <= Date.now()) return undefined;
    const payload = JSON.parse(row.payload) as AdapterPayload;
    return row.consumed_at === null || row.consumed_at === undefined ? payload : { ...payload, consumed: Math.floor(Number(row.consumed_at) / 1000) };
  }

  /** What a request remembers a read of a row by: the stored model name, the column and its value. */
  private memoKey(stored: string, column: 'id' | 'uid' | 'user_code', value: string): string {
    return `${stored} ${column} ${value}`;
  }

  /** The stored name of another model of this adapter's provider. */
  private storedNameOf(model: string): string {
    return this.stored.slice(0, this.stored.length - this.model.length) + model;
  }

  /**
   * A code or token with its grant and its session, in one statement: oidc-provider reads both right
   * after it, and each read is a round trip. Rows that are not there (a revoked grant, a session
   * ended) are remembered as not there, as their own reads would have found them.
   */
  private async readWithGrantAndSession(id: string): Promise<ReadWithRelated<Row | undefined>> {
    const grant = this.storedNameOf('Grant');
    const session = this.storedNameOf('Session');
    const sessionUid = payloadField(this.db, 'a', ['sessionUid']);
    const sepPath = SEP_OF[this.model];
    // The SeP, when this model's requests read it next: on the artefact's own part, as NULLs on the others.
    const sep = sepPath ? { columns: `, ${sepAlong.columns('c')}`, join: ` left join sep c on c.client_id = ${payloadField(this.db, 'a', sepPath)}`, nulls: `, ${sepAlong.nulls()}` } : { columns: '', join: '', nulls: '' };
    const columns = (table: string) => `${table}.payload, ${table}.expires_at, ${table}.consumed_at`;
    const mark = readAlongMark();
    const rows = (await this.db.raw(
      `select 0 as part, a.grant_id as grant_id, ${sessionUid} as session_uid, ${columns('a')}${sep.columns} from oidc_model a${sep.join} where a.model = ? and a.id = ?` +
        ` union all select 1, null, null, ${columns('g')}${sep.nulls} from oidc_model a join oidc_model g on g.model = ? and g.id = a.grant_id where a.model = ? and a.id = ?` +
        ` union all select 2, null, null, ${columns('s')}${sep.nulls} from oidc_model a join oidc_model s on s.model = ? and s.uid = ${sessionUid} where a.model = ? and a.id = ?`,
      [this.stored, id, grant, this.stored, id, session, this.stored, id],
    )) as unknown;
    const list = (isPostgres(this.db) ? (rows as { rows: PartRow[] }).rows : (rows as PartRow[])).map((row) => ({ ...row, part: Number(row.part) }));
    const own = list.find((row) => row.part === 0);
    if (!own) return { value: undefined, related: [] };
    if (sepPath) sepAlong.remember(own as unknown as Record<string, unknown>, mark);
    const related: Array<[string, string, Row | undefined]> = [];
    if (own.grant_id) related.push(['oidc_model', this.memoKey(grant, 'id', own.grant_id), rowOf(list.find((row) => row.part === 1))]);
    if (own.session_uid) related.push(['oidc_model', this.memoKey(session, 'uid', own.session_uid), rowOf(list.find((row) => row.part === 2))]);
    return { value: rowOf(own), related };
  }

  /** A model's row with its SeP's, in one statement (SEP_OF): the request remembers the SeP (sepAlong). */
  private async readWithSep(id: string, sepPath: readonly string[]): Promise<Row | undefined> {
    const mark = readAlongMark();
    const row = (await this.db('oidc_model as a')
      .leftJoin('sep as c', 'c.client_id', this.db.raw(payloadField(this.db, 'a', sepPath)))
      .where({ 'a.model': this.stored, 'a.id': id })
      .first(this.db.raw(`a.payload, a.expires_at, a.consumed_at, ${sepAlong.columns('c')}`))) as (Row & Record<string, unknown>) | undefined;
    if (!row) return undefined;
    sepAlong.remember(row, mark);
    return rowOf(row);
  }

  /** A stored payload as it is, consumed or not, read in the caller's transaction (for the audit hook). */
  async readIn(trx: Queryable, id: string): Promise<AdapterPayload | undefined> {
    const row = (await trx('oidc_model').where({ model: this.stored, id }).first('payload')) as Pick<Row, 'payload'> | undefined;
    return row ? (JSON.parse(row.payload) as AdapterPayload) : undefined;
  }

  /** The payload of a grant's row of this model consumed last (the code a token was redeemed for), in the caller's transaction. */
  async lastConsumedOfGrantIn(trx: Queryable, grantId: string): Promise<AdapterPayload | undefined> {
    const row = (await trx('oidc_model').where({ model: this.stored, grant_id: grantId }).orderBy('consumed_at', 'desc').first('payload')) as Pick<Row, 'payload'> | undefined;
    return row ? (JSON.parse(row.payload) as AdapterPayload) : undefined;
  }

  find(id: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('id', id);
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.findWhere('user_code', userCode);
  }

  async consume(id: string): Promise<void> {
    const held = currentRequestWrites()?.held;
    if (held?.holdsConsumption()) {
      held.holdConsumption(this.db, { model: this.model, consume: (trx) => this.consumeIn(trx, id), revokeGrant: () => this.revokeGrantOf(id) });
      return;
    }
    if (await this.consumeIn(this.db, id)) return;
    await this.revokeGrantOf(id);
    throw new errors.InvalidGrant(`${this.model} already consumed`);
  }

  /** Marks one consumed, in the caller's transaction; false when it already was (or is gone). */
  async consumeIn(trx: Queryable, id: string): Promise<boolean> {
    const count = await trx('oidc_model').where({ model: this.stored, id }).whereNull('consumed_at').update({ consumed_at: Date.now() });
    return count === 1;
  }

  /** Revokes the grant a single-use artefact belongs to (it was used twice); the grant's id, if any. */
  async revokeGrantOf(id: string): Promise<string | undefined> {
    const row = (await this.db('oidc_model').where({ model: this.stored, id }).first('grant_id')) as { grant_id: string | null } | undefined;
    if (!row?.grant_id) return undefined;
    await this.revokeByGrantId(row.grant_id);
    return row.grant_id;
  }

  async destroy(id: string): Promise<void> {
    const held = currentRequestWrites()?.held;
    const destroy = async (db: Queryable) => {
      await db('oidc_model').where({ model: this.stored, id }).delete();
    };
    if (held?.holdsWrite()) held.holdDelete(this.db, destroy, { key: this.key(id) });
    else await destroy(this.db);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const held = currentRequestWrites()?.held;
    const revoke = async (db: Queryable) => {
      await db('oidc_model').where({ grant_id: grantId }).delete();
    };
    if (held?.holdsWrite()) held.holdDelete(this.db, revoke, { removes: (row) => row.grant_id === grantId });
    else await revoke(this.db);
  }
}

/** Deletes up to `limit` expired rows (sessions, interactions, codes, tokens…); returns how many. */
export async function removeExpiredModels(db: Queryable, now = Date.now(), limit = 5000): Promise<number> {
  const expired = db('oidc_model').select('model', 'id').where('expires_at', '<', now).limit(limit);
  return db('oidc_model').whereIn(['model', 'id'], expired).delete();
}
