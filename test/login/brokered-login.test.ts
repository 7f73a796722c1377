import assert from 'node:assert/strict';
import { completeLogin } from '../support/login-driver.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';

describe('a brokered login, end to end', () => {
  let brana: TestBroker;
  before(async () => {
    brana = await startTestBroker();
  });
  after(async () => brana.close());

  it('logs a citizen in through eObčanka and gives the SeP a pseudonym, the LoA and the consented claims', async () => {
    const sep = await brana.registerSep();
    const login = await completeLogin(brana.url.origin, sep, { means: 'eobcanka', login: '100000001', scope: 'openid profile' });
    console.log(login.idToken, login.userinfo);
  });
});
