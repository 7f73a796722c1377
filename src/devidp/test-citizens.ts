import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import { currentAddressBase64, ruianAddressBase64 } from '../identity/address.ts';
import type { RegisterRecord } from '../identity/population-register.ts';
import type { IdentityMeans } from '../means/identity-means.ts';

type Accounts = Record<string, { login: string; loa?: Loa }>;

/** A fictional citizen: their population register record and their accounts at identity means. */
export interface TestCitizen {
  register: RegisterRecord;
  accounts: Accounts;
}

/** A fictional foreign person with an eID of another EU country: not in the Czech register. */
export interface ForeignTestCitizen {
  eidas: { personIdentifier: string; givenName: string; familyName: string; dateOfBirth: string; placeOfBirth?: string };
  accounts: Accounts;
}

export const TEST_CITIZENS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../development/test-citizens.json');

interface TestCitizensFile {
  citizens: TestCitizen[];
  foreignCitizens?: ForeignTestCitizen[];
}

function readFile(file: string): TestCitizensFile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as TestCitizensFile;
}

export function readTestCitizens(file = TEST_CITIZENS_FILE): TestCitizen[] {
  return readFile(file).citizens;
}

export function readForeignTestCitizens(file = TEST_CITIZENS_FILE): ForeignTestCitizen[] {
  return readFile(file).foreignCitizens ?? [];
}

/**
 * A test citizen's account at one development identity provider: what it shows on its login page,
 * the subject it names the person by, the LoA it reaches, and the attribute values it can assert.
 */
export interface DevelopmentAccount {
  login: string;
  displayName: string;
  subject: string;
  loa: Loa;
  values: Partial<Record<AttributeId, string>>;
}

/** The accounts one means' development IdP knows: Czech citizens, or foreign ones for a cross-border means. */
export function developmentAccounts(means: IdentityMeans, subjectKey: Buffer, citizens: TestCitizen[], foreign: ForeignTestCitizen[]): DevelopmentAccount[] {
  // Each means names a person by its own opaque subject, as real means do.
  const subjectOf = (seed: string) => createHmac('sha256', subjectKey).update(means.id).update('\0').update(seed).digest('hex');
  if (means.crossBorder) {
    return foreign
      .filter((person) => person.accounts[means.id])
      .map((person) => ({
        login: person.accounts[means.id]!.login,
        displayName: `${person.eidas.givenName} ${person.eidas.familyName}`,
        subject: subjectOf(person.eidas.personIdentifier),
        loa: person.accounts[means.id]!.loa ?? means.loa,
        values: {
          PersonIdentifier: person.eidas.personIdentifier,
          CurrentGivenName: person.eidas.givenName,
          CurrentFamilyName: person.eidas.familyName,
          DateOfBirth: person.eidas.dateOfBirth,
          ...(person.eidas.placeOfBirth ? { PlaceOfBirth: person.eidas.placeOfBirth } : {}),
        },
      }));
  }
  return citizens
    .filter((citizen) => citizen.accounts[means.id])
    .map(({ register: record, accounts }) => ({
      login: accounts[means.id]!.login,
      displayName: `${record.givenName} ${record.familyName}`,
      subject: subjectOf(record.registerId),
      loa: accounts[means.id]!.loa ?? means.loa,
      values: {
        CurrentGivenName: record.givenName,
        CurrentFamilyName: record.familyName,
        DateOfBirth: record.dateOfBirth,
        PlaceOfBirth: record.placeOfBirth,
        CurrentAddress: currentAddressBase64(record.address),
        tradresaid: ruianAddressBase64(record.address),
        ...(record.email ? { eMail: record.email } : {}),
        ...(record.phone ? { phonenumber: record.phone } : {}),
      },
    }));
}

/** Whether a register file is the development test citizens' (through any path or link), or a copy holding any of them. */
export function holdsTestCitizens(file: string): boolean {
  if (fs.realpathSync(file) === fs.realpathSync(TEST_CITIZENS_FILE)) return true;
  const idsOf = (path: string) => {
    const data = JSON.parse(fs.readFileSync(path, 'utf8')) as { citizens?: Array<{ register?: { registerId?: unknown } } | null> };
    return (data.citizens ?? []).map((citizen) => String(citizen?.register?.registerId));
  };
  const testIds = new Set(idsOf(TEST_CITIZENS_FILE));
  return idsOf(file).some((id) => testIds.has(id));
}
