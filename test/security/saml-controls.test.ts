import assert from 'node:assert/strict';
import { base64 } from '../support/independent-idp.ts';
import { expectAccepted, startAttackBed, type AttackBed } from '../support/attack-bed.ts';
import { startUpstreamLogin } from '../support/upstream-login.ts';

describe('the independent IdP (xmlsec1) makes answers Brána accepts', () => {
  let bed: AttackBed;
  before(async () => {
    bed = await startAttackBed();
  });
  after(async () => bed.close());

  it('accepts NIA\'s shape: signed assertion, encrypted, in a signed response', async () => {
    const sep = await bed.brana.registerSep();
    const login = await startUpstreamLogin(bed.brana.url.origin, sep, 'eobcanka');
    const xml = await bed.idp.eobcanka.answer(login);
    assert.ok(await bed.workspace.verifies(xml, bed.idp.eobcanka.idp.keys.certFile));
    await expectAccepted(login, base64(xml));
  });

  it('accepts a signed, unencrypted assertion inside an unsigned response where the means allows it', async () => {
    const sep = await bed.brana.registerSep();
    const login = await startUpstreamLogin(bed.brana.url.origin, sep, 'nia-id');
    await expectAccepted(login, base64(await bed.idp['nia-id'].answer(login, { encrypt: false, signResponse: false })));
  });
});
