import fs from 'node:fs';
import type { IdentityQuery, PopulationRegister, RegisterMatch, RegisterRecord } from './population-register.ts';

/** Names compare without case, surrounding or doubled spaces, and in one Unicode form. */
export function normaliseName(value: string): string {
  return value.normalize('NFC').trim().replace(/\s+/g, ' ').toLocaleLowerCase('cs');
}

/** An in-memory population register of test citizens, read from a JSON file. */
export class EmbeddedRegister implements PopulationRegister {
  private readonly records: RegisterRecord[];
  private readonly byId: Map<string, RegisterRecord>;

  constructor(records: RegisterRecord[]) {
    this.records = records;
    this.byId = new Map(records.map((record) => [record.registerId, record]));
  }

  static fromFile(file: string): EmbeddedRegister {
    const data = JSON.parse(fs.readFileSync(file, 'utf8')) as { citizens: Array<{ register: RegisterRecord }> };
    return new EmbeddedRegister(data.citizens.map((citizen) => citizen.register));
  }

  async match(query: IdentityQuery): Promise<RegisterMatch> {
    const given = normaliseName(query.givenName);
    const family = normaliseName(query.familyName);
    let candidates = this.records.filter(
      (record) => record.dateOfBirth === query.dateOfBirth && normaliseName(record.givenName) === given && normaliseName(record.familyName) === family,
    );
    if (candidates.length > 1 && query.placeOfBirth) {
      const place = normaliseName(query.placeOfBirth);
      candidates = candidates.filter((record) => normaliseName(record.placeOfBirth) === place);
    }
    if (candidates.length === 1) return { kind: 'found', record: candidates[0]! };
    return candidates.length === 0 ? { kind: 'not_found' } : { kind: 'ambiguous' };
  }

  async findById(registerId: string): Promise<RegisterRecord | undefined> {
    return this.byId.get(registerId);
  }
}
