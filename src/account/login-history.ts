import type { AssertionLog, StoredAuditRecord } from '../audit/assertion-log.ts';
import { inReadingOrder, isAttributeId, type AttributeId } from '../domain/attributes.ts';
import { isLoa, type Loa } from '../domain/loa.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import type { SepStore } from '../sep/sep-store.ts';

/** How many pseudonyms one query of the log looks for (an `IN` list of bounded length). */
const GROUPS_PER_QUERY = 200;

/** One login of a citizen as they see it: when, where, how, and which data went (names, never values). */
export interface HistoryEntry {
  at: number;
  kind: 'login' | 'account';
  sepId: string | null;
  sepName: { cs: string; en: string } | null;
  means: string | null;
  loa: Loa | null;
  attributes: AttributeId[];
}

/**
 * A citizen's login history, read from the assertion log. The log holds only per-group pseudonyms,
 * never Brána's person id, so the history is found by computing this person's pseudonym for every
 * SeP group; nobody else's records can match.
 */
export class LoginHistory {
  private readonly seps: SepStore;
  private readonly log: AssertionLog;
  private readonly pseudonyms: Pseudonyms;

  constructor(seps: SepStore, log: AssertionLog, pseudonyms: Pseudonyms) {
    this.seps = seps;
    this.log = log;
    this.pseudonyms = pseudonyms;
  }

  async of(personId: string, limit = 50): Promise<HistoryEntry[]> {
    const groups = await this.seps.listGroups();
    // One bounded query per slice of groups, however many groups there are.
    const records: StoredAuditRecord[] = [];
    for (let i = 0; i < groups.length; i += GROUPS_PER_QUERY) {
      const slice = groups.slice(i, i + GROUPS_PER_QUERY).map((group) => this.pseudonyms.forGroup(personId, group));
      records.push(...(await this.log.latestOf(slice, ['token_issued', 'account_login'], limit)));
    }
    records.sort((a, b) => b.seq - a.seq);
    records.splice(limit);
    const names = new Map<string, { cs: string; en: string } | null>();
    for (const sepId of new Set(records.map((record) => record.sepId).filter((id): id is string => !!id))) {
      names.set(sepId, (await this.seps.find(sepId))?.name ?? null);
    }
    return records.map((record) => {
      // In the order a citizen reads them on the consent page, not the log's alphabetical one.
      const attributes = inReadingOrder(Array.isArray(record.detail.attributes) ? record.detail.attributes.filter(isAttributeId) : []);
      return {
        at: record.at,
        kind: record.event === 'account_login' ? 'account' : 'login',
        sepId: record.sepId,
        sepName: record.sepId ? (names.get(record.sepId) ?? null) : null,
        means: record.means,
        loa: isLoa(record.loa) ? record.loa : null,
        attributes,
      };
    });
  }
}
