import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Loa } from '../domain/loa.ts';
import type { RegisterRecord } from '../identity/population-register.ts';

/** A fictional citizen: their population register record and their accounts at identity means. */
export interface TestCitizen {
  register: RegisterRecord;
  accounts: Record<string, { login: string; loa?: Loa }>;
}

export const TEST_CITIZENS_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../development/test-citizens.json');

export function readTestCitizens(file = TEST_CITIZENS_FILE): TestCitizen[] {
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { citizens: TestCitizen[] }).citizens;
}
