import { createHash } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import { AUDIT_EVENTS } from '../audit/assertion-log.ts';
import { auditExported, auditQueried, type AuditReader } from '../audit/audit-events.ts';
import { applyAuditFilter, describeAuditFilter, InvalidAuditFilter, parseAuditFilter, type AuditFilter } from '../audit/audit-filter.ts';
import type { AuditTrail } from '../audit/audit-trail.ts';
import { readJsonlExport, sinkOf, writeExport, type ExportedRecord, type TextSink } from '../audit/export.ts';
import { proveRecord, verifyStretch } from '../audit/record-proof.ts';
import { verifyChain, type ChainEntry } from '../audit/verification.ts';
import type { PersonStore } from '../identity/person-store.ts';
import { logger } from '../log/logger.ts';
import { localeOf } from '../pages/render.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Database } from '../store/database.ts';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import { consoleHtml, consoleMessages, renderConsole, staffOf } from './console-page.ts';
import { REGISTER_ID } from './staff-directory.ts';

export interface AuditorConsoleDependencies {
  db: Database;
  audit: AuditTrail;
  persons: PersonStore;
  pseudonyms: Pseudonyms;
  seps: SepStore;
  registry: IdentityMeansRegistry;
  publicUrl: URL;
}

const PAGE = 50;
const SEARCH_FIELDS = ['from', 'to', 'sep', 'means', 'event', 'personKind', 'person', 'reason'] as const;
type SearchForm = Record<(typeof SEARCH_FIELDS)[number], string>;

/** A search as the auditor entered it: the log filter, and why, when it looks for a person. */
interface Search {
  form: SearchForm;
  filter: AuditFilter;
  /** Set when the search names a person: the reason is logged with it. */
  reason?: string;
  /** What the record of the search says of the person looked for. */
  person?: Record<string, unknown>;
  /** A register id Brána has never seen: nothing in the log can be theirs. */
  unknownPerson: boolean;
}

class SearchRefused extends Error {
  readonly problems: string[];
  readonly form: SearchForm;

  constructor(problems: string[], form: SearchForm) {
    super(problems.join('; '));
    this.problems = problems;
    this.form = form;
  }
}

/**
 * The auditor's console (`/console/audit`): search the log, a record with its place in the chain
 * and its verification, and exports — the signed bundle the CLI makes, and a report to print.
 * Searches and exports are POSTed forms (with the session's token); each is in the log, with the
 * auditor's name and, when it looks for a person, the reason they gave, before any record is shown.
 */
export function auditorConsole(deps: AuditorConsoleDependencies): Router {
  const router = express.Router();
  const { log } = deps.audit;
  const readerOf = (res: Response, reason?: string): AuditReader => ({ via: 'console', staff: staffOf(res).name, ...(reason !== undefined ? { reason } : {}) });

  async function choices() {
    return {
      seps: (await deps.seps.list()).map((sep) => ({ id: sep.clientId, name: sep.name })),
      means: deps.registry.list().map((means) => ({ id: means.id, name: means.name })),
      events: AUDIT_EVENTS,
    };
  }

  async function searchOf(req: Request): Promise<Search> {
    const c = consoleMessages(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const form = Object.fromEntries(SEARCH_FIELDS.map((name) => [name, typeof body[name] === 'string' ? (body[name] as string).trim() : ''])) as SearchForm;
    const problems: string[] = [];
    let filter: AuditFilter = {};
    try {
      filter = parseAuditFilter(Object.fromEntries((['from', 'to', 'sep', 'means', 'event'] as const).filter((name) => form[name] !== '').map((name) => [name, form[name]])));
    } catch (err) {
      if (!(err instanceof InvalidAuditFilter)) throw err;
      problems.push(...err.problems);
    }
    const search: Search = { form, filter, unknownPerson: false };
    if (form.person !== '') {
      if (form.reason.length < 5 || form.reason.length > 500) problems.push(c.audit.reasonRequired);
      else search.reason = form.reason;
      if (form.personKind === 'pseudonym') {
        if (form.person.length > 100) problems.push(c.audit.personRequired);
        filter.pseudonym = form.person;
        search.person = { pseudonym: form.person };
      } else if (!REGISTER_ID.test(form.person)) {
        problems.push(c.audit.personRequired);
      } else {
        // The log holds pseudonyms only: the person's pseudonym in every SeP group is looked for.
        // The record of the search names the register id by its digest, not in clear.
        search.person = { registerIdSha256: createHash('sha256').update(form.person).digest('hex') };
        const person = await deps.persons.findByRegisterId(form.person);
        if (person) filter.pseudonyms = (await deps.seps.listGroups()).map((group) => deps.pseudonyms.forGroup(person.id, group));
        else search.unknownPerson = true;
      }
    } else if (form.reason !== '') {
      search.reason = form.reason.slice(0, 500);
    }
    if (problems.length) throw new SearchRefused(problems, form);
    return search;
  }

  const described = (search: Search) => ({ ...describeAuditFilter(search.filter), ...(search.person ? { person: search.person } : {}) });

  async function showSearch(req: Request, res: Response, extra: Record<string, unknown>, status = 200): Promise<void> {
    renderConsole(req, res, 'audit', { title: consoleMessages(req).audit.title, ...(await choices()), form: null, problems: null, results: null, ...extra }, status);
  }

  router.get('/', async (req: Request, res: Response) => {
    await showSearch(req, res, {});
  });

  /** The search a form asks for, or (shown again with its problems, nothing searched) undefined. */
  async function searchOrRefusal(req: Request, res: Response): Promise<Search | undefined> {
    try {
      return await searchOf(req);
    } catch (err) {
      if (!(err instanceof SearchRefused)) throw err;
      await showSearch(req, res, { form: err.form, problems: err.problems }, 400);
      return undefined;
    }
  }

  router.post('/search', async (req: Request, res: Response) => {
    const search = await searchOrRefusal(req, res);
    if (!search) return;
    const after = /^\d{1,16}$/.test(String((req.body as Record<string, unknown>).after ?? '')) ? Number((req.body as Record<string, unknown>).after) : 0;
    await log.append(auditQueried(readerOf(res, search.reason), { filter: described(search), limit: PAGE, after }));
    const records = search.unknownPerson ? [] : await log.query(search.filter, { afterSeq: after, limit: PAGE });
    await showSearch(req, res, {
      form: search.form,
      unknownPerson: search.unknownPerson,
      results: records,
      next: records.length === PAGE ? records[records.length - 1]!.seq : null,
    });
  });

  router.get('/records/:seq', async (req: Request, res: Response) => {
    const c = consoleMessages(req);
    // Opening a record is logged in the auditor's name: another site's link may not do it for them.
    if (req.headers['sec-fetch-site'] === 'cross-site') {
      res.redirect(303, '/console/audit/');
      return;
    }
    const seq = /^\d{1,16}$/.test(String(req.params.seq)) ? Number(req.params.seq) : NaN;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      renderConsole(req, res, 'not-found', { title: c.record.notFound }, 404);
      return;
    }
    await log.append(auditQueried(readerOf(res), { what: 'record', seq }));
    await log.settled();
    const proof = await proveRecord(deps.db, seq, deps.audit.keys.publicJwks, deps.audit.seal);
    if (!proof) {
      renderConsole(req, res, 'not-found', { title: c.record.notFound }, 404);
      return;
    }
    renderConsole(req, res, 'record', { title: c.record.title(seq), proof, detail: JSON.stringify(proof.record.detail, null, 2) });
  });

  /**
   * Verifies the stretch of the log that holds the records of a period, sending the page in pieces:
   * a progress step every thousand records (only the newest shows), then the result.
   */
  router.post('/verify', async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    let filter: AuditFilter;
    try {
      filter = parseAuditFilter(Object.fromEntries((['from', 'to'] as const).flatMap((name) => (typeof body[name] === 'string' && body[name] !== '' ? [[name, body[name]]] : []))));
    } catch (err) {
      if (!(err instanceof InvalidAuditFilter)) throw err;
      await showSearch(req, res, { problems: err.problems }, 400);
      return;
    }
    const c = consoleMessages(req);
    await log.append(auditQueried(readerOf(res), { what: 'verify', filter: describeAuditFilter(filter) }));
    await log.settled();
    const range = (await applyAuditFilter(deps.db('assertion_log'), filter).min({ low: 'seq' }).max({ high: 'seq' }).first()) as { low: number | null; high: number | null } | undefined;
    const [head, rest] = consoleHtml(req, res, 'verify', { title: c.verify.title }).split('<!--progress-->') as [string, string];
    const [middle, tail] = rest.split('<!--result-->') as [string, string];
    res.status(200).type('html');
    res.write(head);
    let outcome: Record<string, unknown>;
    try {
      if (range?.low == null || range.high == null) outcome = { report: null };
      else {
        const { report } = await verifyStretch(deps.db, Number(range.low), Number(range.high), deps.audit.keys.publicJwks, deps.audit.seal, (done, total) => {
          res.write(`<p class="progress-step"><progress max="${total}" value="${done}">${Math.floor((100 * done) / total)} %</progress> ${c.verify.progress(done, total)}</p>\n`);
        });
        outcome = { report };
      }
    } catch (err) {
      // The page has begun: it ends saying the verification did not finish, never looking intact.
      logger.error('console log verification failed', { error: (err as Error).message });
      outcome = { failed: true };
    }
    res.end(`${middle}${consoleHtml(req, res, 'verify-result', { ...outcome })}${tail}`);
  });

  router.post('/export', async (req: Request, res: Response) => {
    const search = await searchOrRefusal(req, res);
    if (!search) return;
    const format = (req.body as Record<string, unknown>).format === 'report' ? 'report' : 'jsonl';
    // A person Brána does not know: the export is of nobody's records (an impossible pseudonym list).
    const filter = search.unknownPerson ? { ...search.filter, pseudonyms: [] } : search.filter;
    await log.append(auditExported(readerOf(res, search.reason), { filter: described(search), format }));
    if (format === 'jsonl') {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      res.status(200).type('application/x-ndjson; charset=utf-8').set('Content-Disposition', `attachment; filename="brana-audit-${stamp}.jsonl"`);
      try {
        await writeExport(deps.db, deps.audit.checkpoints, filter, 'jsonl', sinkOf(res));
        res.end();
      } catch (err) {
        // The headers are gone: cut the export short rather than let it look complete.
        logger.error('console audit export failed', { error: (err as Error).message });
        res.destroy();
      }
      return;
    }
    await showReport(req, res, filter, search);
  });

  /**
   * The printable report: the export is made as for the bundle, then read back and verified with
   * the audit public key alone, as a court's expert would; the report names the bundle's digest.
   */
  async function showReport(req: Request, res: Response, filter: AuditFilter, search: Search): Promise<void> {
    const c = consoleMessages(req);
    const locale = localeOf(req);
    const chunks: string[] = [];
    const memory: TextSink = { write: async (text) => void chunks.push(text) };
    await writeExport(deps.db, deps.audit.checkpoints, filter, 'jsonl', memory);
    const text = chunks.join('');
    const lines = readJsonlExport(text);
    const checkpoints = lines.flatMap((line) => (line.kind === 'checkpoint' ? [line.jws] : []));
    const entries = lines.flatMap((line): ChainEntry[] => (line.kind === 'record' || line.kind === 'digest' ? [line.entry] : []));
    const records = lines.flatMap((line): ExportedRecord[] => (line.kind === 'record' ? [line.record] : []));
    const header = lines.find((line) => line.kind === 'export')?.header;
    const verification = await verifyChain({ entries, checkpoints, publicJwks: deps.audit.keys.publicJwks });
    const sepNames = new Map((await deps.seps.list()).map((sep) => [sep.clientId, sep.name[locale]]));
    renderConsole(req, res, 'report', {
      title: c.report.title,
      header,
      filter: Object.entries(described(search)).map(([name, value]) => `${name}: ${typeof value === 'string' ? value : JSON.stringify(value)}`),
      reason: search.reason ?? null,
      verification,
      kid: header?.keys.join(', ') ?? '',
      bundleSha256: createHash('sha256').update(text).digest('hex'),
      issuer: deps.publicUrl.href,
      rows: records.map((record) => ({
        seq: record.seq,
        at: record.at,
        event: record.event,
        sep: record.sepId ? `${sepNames.get(record.sepId) ?? ''} (${record.sepId})` : '',
        means: record.means ? (deps.registry.get(record.means)?.means.name[locale] ?? record.means) : '',
        loa: record.loa ?? '',
        attributes: Array.isArray(record.detail.attributes) ? record.detail.attributes.join(', ') : '',
      })),
    });
  }

  return router;
}
