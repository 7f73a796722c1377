import { chooseMeans, loginAtIdp, postToAcs, type Citizen } from './login-driver.ts';
import { brana } from './cli.ts';
import type { TestBroker } from './test-broker.ts';

/** Signs in to the consoles in this browser: Brána's own code flow (LoA high) through selection, IdP and back. */
export async function signInToConsole(citizen: Citizen, means: string, login: string) {
  const start = await citizen.follow(await citizen.get('/console/login'));
  if (start.status !== 200) throw new Error(`console sign-in answered ${start.status}: ${start.text.slice(0, 300)}`);
  const idp = await loginAtIdp(citizen, await chooseMeans(citizen, start, means), login);
  return postToAcs(citizen, idp.acs, idp.fields);
}

/** `brana staff …` against a test broker's database and keys, as an operator runs it. */
export function staff(testBroker: TestBroker, args: string[]) {
  return brana(['staff', ...args], { DATABASE_URL: testBroker.broker.env.databaseUrl, BRANA_KEYS_DIR: testBroker.keysDir });
}

/** The form token of a console page (every console form carries it). */
export function csrfOf(html: string): string {
  const found = /name="csrf" value="([^"]+)"/.exec(html);
  if (!found) throw new Error('the page has no console form');
  return found[1]!;
}
