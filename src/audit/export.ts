import fs from 'node:fs';
import readline from 'node:readline';
import { parse as parseCsv } from 'csv-parse';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import type { Database } from '../store/database.ts';
import type { AssertionLogRow } from './assertion-log.ts';
import { applyAuditFilter, describeAuditFilter, matchesAuditFilter, type AuditFilter } from './audit-filter.ts';
import { canonicalJson, contentDigest, type RecordContent } from './chain.ts';
import type { AuditCheckpoints, Checkpoint } from './checkpoints.ts';
import type { ChainEntry } from './verification.ts';

/**
 * An export of the assertion log with its proof. It covers a stretch of the chain from an anchor
 * (the start, or a signed checkpoint) to a closing signed checkpoint; the records the filter asks
 * for are whole, every other position in the stretch is only its digest, and the checkpoints in the
 * stretch are included. Anyone with the audit public key can then check that each exported record
 * sits unaltered in the chain Brána signed (`brana audit verify --file …`), without seeing the
 * records of other people. (A filtered export proves what it shows; that nothing matching was
 * left out is proven only by an export without filters.)
 *
 * JSON Lines: one object per line, `kind` = export (the first line), record, digest or checkpoint.
 * CSV: the same rows under one header; every cell quoted, and a cell starting with a character a
 * spreadsheet would run as a formula (= + - @ tab CR, their full-width forms, or ') gets a leading
 * apostrophe, which a reader removes (so the neutralisation is exact and reversible).
 */
export type ExportFormat = 'jsonl' | 'csv';
export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;

export interface ExportHeader {
  kind: 'export';
  version: 1;
  exportedAt: string;
  filter: Record<string, unknown>;
  /** The position the stretch starts after: 0 (the first record) or a checkpoint. */
  anchor: number;
  /** The last position in the stretch: a checkpoint unless `note` says otherwise. */
  through: number;
  /** The audit key(s) that signed the checkpoints. */
  keys: string[];
  note?: string;
}

export interface ExportSummary {
  header: ExportHeader;
  records: number;
  digestsOnly: number;
}

/** Where an export goes; `write` resolves when the text may be followed by more (backpressure). */
export interface TextSink {
  write(text: string): Promise<void>;
}

export function sinkOf(stream: NodeJS.WritableStream): TextSink {
  return {
    write: (text) =>
      new Promise<void>((resolve, reject) => {
        const cleanup = () => {
          stream.removeListener('error', onError);
          stream.removeListener('close', onClose);
          stream.removeListener('drain', onDrain);
        };
        const onError = (err: Error) => {
          cleanup();
          reject(err);
        };
        // A reader that goes away mid-export (a closed connection) ends the export.
        const onClose = () => {
          cleanup();
          reject(new Error('the export was closed by its reader'));
        };
        const onDrain = () => {
          cleanup();
          resolve();
        };
        stream.once('error', onError);
        stream.once('close', onClose);
        if (stream.write(text)) {
          cleanup();
          resolve();
        } else {
          stream.once('drain', onDrain);
        }
      }),
  };
}

export const CSV_COLUMNS = ['kind', 'seq', 'at', 'time', 'event', 'sep_id', 'request_id', 'means', 'pseudonym', 'loa', 'outcome', 'reason', 'detail', 'prev_hash', 'hash', 'digest', 'jws', 'rid'] as const;
type CsvRow = Partial<Record<(typeof CSV_COLUMNS)[number], string | number | null>>;

const FORMULA_START = /^[=+\-@\t\r'\uFF1D\uFF0B\uFF0D\uFF20]/;

export function neutraliseCell(value: string): string {
  return FORMULA_START.test(value) ? `'${value}` : value;
}

function restoreCell(value: string): string {
  return value.startsWith("'") ? value.slice(1) : value;
}

/** JSON text safe for every line-splitting reader: no raw line or paragraph separators. */
function jsonLine(value: unknown): string {
  return `${JSON.stringify(value).replace(/[\u0085\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

function recordLine(row: AssertionLogRow): Record<string, unknown> {
  return {
    kind: 'record',
    seq: Number(row.seq),
    at: Number(row.at),
    time: new Date(Number(row.at)).toISOString(),
    event: row.event,
    sepId: row.sep_id,
    requestId: row.request_id,
    means: row.means,
    pseudonym: row.pseudonym,
    loa: row.loa,
    outcome: row.outcome,
    reason: row.reason,
    detail: JSON.parse(row.detail) as unknown,
    prevHash: row.prev_hash,
    hash: row.hash,
    // Part of the hashed content of a record that was staged (docs/AUDIT-LOG.md).
    ...(row.rid ? { rid: row.rid } : {}),
  };
}

class ExportWriter {
  private readonly sink: TextSink;
  private readonly format: ExportFormat;
  private first = true;

  constructor(sink: TextSink, format: ExportFormat) {
    this.sink = sink;
    this.format = format;
  }

  private async csv(row: CsvRow): Promise<void> {
    // A null cell is left empty and unquoted; a value (even an empty one) is always quoted.
    const cells = CSV_COLUMNS.map((column) => {
      const value = row[column];
      return value === undefined || value === null ? null : neutraliseCell(String(value));
    });
    const text = stringifyCsv([cells], { quoted_string: true, record_delimiter: '\r\n', bom: this.first, ...(this.first ? { header: true, columns: [...CSV_COLUMNS] } : {}) });
    this.first = false;
    await this.sink.write(text);
  }

  async header(header: ExportHeader): Promise<void> {
    if (this.format === 'jsonl') await this.sink.write(jsonLine(header));
    else await this.csv({ kind: 'export', detail: JSON.stringify(header) });
  }

  async record(row: AssertionLogRow): Promise<void> {
    if (this.format === 'jsonl') {
      await this.sink.write(jsonLine(recordLine(row)));
      return;
    }
    await this.csv({
      kind: 'record',
      seq: Number(row.seq),
      at: Number(row.at),
      time: new Date(Number(row.at)).toISOString(),
      event: row.event,
      sep_id: row.sep_id,
      request_id: row.request_id,
      means: row.means,
      pseudonym: row.pseudonym,
      loa: row.loa,
      outcome: row.outcome,
      reason: row.reason,
      detail: row.detail,
      prev_hash: row.prev_hash,
      hash: row.hash,
      rid: row.rid ?? null,
    });
  }

  async digest(seq: number, digest: string): Promise<void> {
    if (this.format === 'jsonl') await this.sink.write(jsonLine({ kind: 'digest', seq, digest }));
    else await this.csv({ kind: 'digest', seq, digest });
  }

  async checkpoint(checkpoint: Checkpoint): Promise<void> {
    if (this.format === 'jsonl') await this.sink.write(jsonLine({ kind: 'checkpoint', seq: checkpoint.seq, jws: checkpoint.jws }));
    else await this.csv({ kind: 'checkpoint', seq: checkpoint.seq, jws: checkpoint.jws });
  }
}

const PAGE = 1000;

/**
 * Writes an export: first a checkpoint over the newest record (so the export closes on a signed
 * checkpoint), then the stretch of the chain that holds every matching record.
 */
export async function writeExport(db: Database, checkpoints: AuditCheckpoints, filter: AuditFilter, format: ExportFormat, sink: TextSink): Promise<ExportSummary> {
  let note: string | undefined;
  try {
    await checkpoints.make();
  } catch (err) {
    note = `Brána could not sign a checkpoint over the newest records (${(err as Error).message}); run brana audit verify`;
  }
  const all = await checkpoints.list();
  const valid = new Map<number, Checkpoint>();
  for (const checkpoint of all) if (await checkpoints.isValid(checkpoint)) valid.set(checkpoint.seq, checkpoint);

  const range = (await applyAuditFilter(db('assertion_log'), filter).min({ low: 'seq' }).max({ high: 'seq' }).first()) as { low: number | null; high: number | null } | undefined;
  const low = range?.low == null ? null : Number(range.low);
  const high = range?.high == null ? null : Number(range.high);
  const seqs = [...valid.keys()].sort((a, b) => a - b);
  let anchor = 0;
  let through = 0;
  if (low !== null && high !== null) {
    anchor = Math.max(0, ...seqs.filter((seq) => seq < low));
    const closing = seqs.find((seq) => seq >= high);
    if (closing === undefined) {
      const head = (await db('assertion_log').max({ seq: 'seq' }).first()) as { seq: number };
      through = Number(head.seq);
      note ??= `records after ${Math.max(0, ...seqs)} are not covered by a signed checkpoint`;
    } else {
      through = closing;
    }
  }

  const header: ExportHeader = {
    kind: 'export',
    version: 1,
    exportedAt: new Date().toISOString(),
    filter: describeAuditFilter(filter),
    anchor,
    through,
    keys: [...new Set([...valid.values()].map((checkpoint) => checkpoint.kid))],
    ...(note ? { note } : {}),
  };
  const writer = new ExportWriter(sink, format);
  await writer.header(header);
  const anchorCheckpoint = valid.get(anchor);
  if (anchorCheckpoint) await writer.checkpoint(anchorCheckpoint);

  let records = 0;
  let digestsOnly = 0;
  {
    let after = anchor;
    while (after < through) {
      const rows = (await db('assertion_log').where('seq', '>', after).andWhere('seq', '<=', through).orderBy('seq', 'asc').limit(PAGE)) as AssertionLogRow[];
      if (!rows.length) break;
      for (const row of rows) {
        if (matchesAuditFilter(row, filter)) {
          await writer.record(row);
          records += 1;
        } else {
          await writer.digest(Number(row.seq), contentDigest(row));
          digestsOnly += 1;
        }
        const checkpoint = valid.get(Number(row.seq));
        if (checkpoint) await writer.checkpoint(checkpoint);
      }
      after = Number(rows[rows.length - 1]!.seq);
    }
  }
  return { header, records, digestsOnly };
}

/** A record as an export shows it (the detail parsed). */
export interface ExportedRecord {
  seq: number;
  at: number;
  event: string;
  sepId: string | null;
  requestId: string | null;
  means: string | null;
  pseudonym: string | null;
  loa: string | null;
  outcome: string;
  reason: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
  /** Present for a record that was staged: its name, part of what its hash covers. */
  rid?: string | null;
}

export type ExportLine = { kind: 'export'; header: ExportHeader } | { kind: 'record'; record: ExportedRecord; entry: ChainEntry } | { kind: 'digest'; entry: ChainEntry } | { kind: 'checkpoint'; seq: number; jws: string };

export class ExportUnreadable extends Error {}

const nullable = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

function position(value: unknown, where: string): number {
  const number = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0) throw new ExportUnreadable(`${where}: not a whole number`);
  return number;
}

function hex64(value: unknown, where: string): string {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new ExportUnreadable(`${where}: not a SHA-256 hash`);
  return value;
}

function contentFromRecord(record: ExportedRecord): RecordContent {
  return {
    at: record.at,
    event: record.event,
    sep_id: record.sepId,
    request_id: record.requestId,
    means: record.means,
    pseudonym: record.pseudonym,
    loa: record.loa,
    outcome: record.outcome,
    reason: record.reason,
    detail: canonicalJson(record.detail),
    rid: record.rid ?? undefined,
  };
}

function recordLineOf(record: ExportedRecord): ExportLine {
  return { kind: 'record', record, entry: { kind: 'record', seq: record.seq, prevHash: record.prevHash, hash: record.hash, content: contentFromRecord(record) } };
}

function jsonlLine(line: string, number: number): ExportLine | undefined {
  if (!line.trim()) return undefined;
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new ExportUnreadable(`line ${number}: is not JSON`);
  }
  switch (value.kind) {
    case 'export':
      return { kind: 'export', header: value as unknown as ExportHeader };
    case 'record':
      return recordLineOf({
        seq: position(value.seq, `line ${number}: seq`),
        at: position(value.at, `line ${number}: at`),
        event: String(value.event),
        sepId: nullable(value.sepId),
        requestId: nullable(value.requestId),
        means: nullable(value.means),
        pseudonym: nullable(value.pseudonym),
        loa: nullable(value.loa),
        outcome: String(value.outcome),
        reason: nullable(value.reason),
        detail: (value.detail ?? {}) as Record<string, unknown>,
        prevHash: hex64(value.prevHash, `line ${number}: prevHash`),
        hash: hex64(value.hash, `line ${number}: hash`),
        ...(typeof value.rid === 'string' ? { rid: value.rid } : {}),
      });
    case 'digest':
      return { kind: 'digest', entry: { kind: 'stub', seq: position(value.seq, `line ${number}: seq`), digest: hex64(value.digest, `line ${number}: digest`) } };
    case 'checkpoint':
      return { kind: 'checkpoint', seq: position(value.seq, `line ${number}: seq`), jws: String(value.jws) };
    default:
      throw new ExportUnreadable(`line ${number}: unknown kind ${String(value.kind)}`);
  }
}

function csvLine(row: Record<string, string | null>, number: number): ExportLine {
  const cell = (column: (typeof CSV_COLUMNS)[number]): string => restoreCell(row[column] ?? '');
  const optional = (column: (typeof CSV_COLUMNS)[number]): string | null => (row[column] === null || row[column] === undefined ? null : restoreCell(row[column]));
  switch (cell('kind')) {
    case 'export':
      return { kind: 'export', header: JSON.parse(cell('detail')) as ExportHeader };
    case 'record': {
      const detailText = cell('detail');
      const record: ExportedRecord = {
        seq: position(cell('seq'), `row ${number}: seq`),
        at: position(cell('at'), `row ${number}: at`),
        event: cell('event'),
        sepId: optional('sep_id'),
        requestId: optional('request_id'),
        means: optional('means'),
        pseudonym: optional('pseudonym'),
        loa: optional('loa'),
        outcome: cell('outcome'),
        reason: optional('reason'),
        detail: JSON.parse(detailText) as Record<string, unknown>,
        prevHash: hex64(cell('prev_hash'), `row ${number}: prev_hash`),
        hash: hex64(cell('hash'), `row ${number}: hash`),
      };
      // Exports written before staging existed have no rid column; inline records leave it empty.
      const rid = optional('rid');
      if (rid) record.rid = rid;
      // The CSV carries the detail exactly as stored; it is checked as it stands.
      return { kind: 'record', record, entry: { kind: 'record', seq: record.seq, prevHash: record.prevHash, hash: record.hash, content: { ...contentFromRecord(record), detail: detailText } } };
    }
    case 'digest':
      return { kind: 'digest', entry: { kind: 'stub', seq: position(cell('seq'), `row ${number}: seq`), digest: hex64(cell('digest'), `row ${number}: digest`) } };
    case 'checkpoint':
      return { kind: 'checkpoint', seq: position(cell('seq'), `row ${number}: seq`), jws: cell('jws') };
    default:
      throw new ExportUnreadable(`row ${number}: unknown kind ${cell('kind')}`);
  }
}

/** Reads an export file line by line (JSON Lines or CSV, told apart by its first character). */
export async function* readExportFile(file: string): AsyncGenerator<ExportLine> {
  const handle = await fs.promises.open(file, 'r');
  const probe = Buffer.alloc(4);
  await handle.read(probe, 0, 4, 0);
  await handle.close();
  const text = probe.toString('utf8').replace(/^\uFEFF/, '');
  if (text.startsWith('{')) {
    const lines = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let number = 0;
    for await (const line of lines) {
      number += 1;
      const parsed = jsonlLine(line, number);
      if (parsed) yield parsed;
    }
    return;
  }
  // An empty unquoted cell is a null; a quoted one, even empty, is a value.
  const rows = fs.createReadStream(file).pipe(
    parseCsv({ bom: true, columns: true, relax_quotes: false, skip_empty_lines: true, cast: (value, context) => (value === '' && !context.quoting && !context.header ? null : value) }),
  );
  let number = 1;
  for await (const row of rows as AsyncIterable<Record<string, string | null>>) {
    number += 1;
    yield csvLine(row, number);
  }
}

/** The records of an export, in order (for reading an export back). */
export async function exportedRecords(file: string): Promise<{ header: ExportHeader | undefined; records: ExportedRecord[] }> {
  let header: ExportHeader | undefined;
  const records: ExportedRecord[] = [];
  for await (const line of readExportFile(file)) {
    if (line.kind === 'export') header = line.header;
    else if (line.kind === 'record') records.push(line.record);
  }
  return { header, records };
}

/** What the verifier needs from an export: its checkpoints first, then its entries in order. */
export async function exportForVerification(file: string): Promise<{ header: ExportHeader | undefined; checkpoints: string[]; entries: () => AsyncGenerator<ChainEntry> }> {
  let header: ExportHeader | undefined;
  const checkpoints: string[] = [];
  for await (const line of readExportFile(file)) {
    if (line.kind === 'export') header = line.header;
    else if (line.kind === 'checkpoint') checkpoints.push(line.jws);
  }
  async function* entries(): AsyncGenerator<ChainEntry> {
    for await (const line of readExportFile(file)) {
      if (line.kind === 'record' || line.kind === 'digest') yield line.entry;
    }
  }
  return { header, checkpoints, entries };
}


/** The lines of a JSON Lines export held in memory (the console reads back the export it made for its printable report). */
export function readJsonlExport(text: string): ExportLine[] {
  return text.split('\n').flatMap((line, index) => jsonlLine(line, index + 1) ?? []);
}
