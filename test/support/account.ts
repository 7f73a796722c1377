import { chooseMeans, loginAtIdp, postToAcs, type Citizen } from './login-driver.ts';

/** Opens My account in this browser: Brána's own code flow through selection, IdP and back. */
export async function openAccount(citizen: Citizen, means: string, login: string) {
  const start = await citizen.follow(await citizen.get('/account/login'));
  if (start.status !== 200) throw new Error(`account login answered ${start.status}: ${start.text.slice(0, 300)}`);
  const idp = await loginAtIdp(citizen, await chooseMeans(citizen, start, means), login);
  const page = await postToAcs(citizen, idp.acs, idp.fields);
  if (page.status !== 200) throw new Error(`My account answered ${page.status}: ${page.text.slice(0, 300)}`);
  return page;
}
