import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import supertest from 'supertest';
import winston from 'winston';
import { readEnvironment } from '../../src/config/environment.ts';
import { logger } from '../../src/log/logger.ts';
import { expectRefused, startAttackBed } from '../support/attack-bed.ts';
import { base64 } from '../support/independent-idp.ts';
import { chooseMeans, Citizen, decideConsent, loginAtIdp, postToAcs, redeemCode, startLogin, userinfo, type Sep } from '../support/login-driver.ts';
import { codeFor, tokenRequest } from '../support/oidc-attacker.ts';
import { startTestBroker, type TestBroker } from '../support/test-broker.ts';
import { startUpstreamLogin } from '../support/upstream-login.ts';

/** Rate limits, body limits, cookie flags, the CSP, and what the operator's log never holds. */

const query = (sep: Sep) =>
  new URLSearchParams({ client_id: sep.clientId, redirect_uri: sep.redirectUri, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();

describe('hardening', () => {
  describe('rate limits (per client IP, per endpoint group)', () => {
    let brana: TestBroker;
    let origin: string;
    before(async () => {
      brana = await startTestBroker({
        env: { BRANA_RATE_LIMIT_LOGIN: '4', BRANA_RATE_LIMIT_ACS: '2', BRANA_RATE_LIMIT_TOKEN_FAILURES: '3', BRANA_RATE_LIMIT_REGISTRATION: '2', BRANA_TRUST_PROXY: 'true' },
      });
      origin = brana.url.origin;
    });
    after(async () => brana.close());

    /** A request as it arrives through the one trusted proxy, from `client` (with whatever the client itself claimed before it). */
    const via = (client: string, claimed = '198.51.100.99') => ({ 'X-Forwarded-For': `${claimed}, ${client}` });

    it('limits the login pages, showing the citizen a Czech (or English) page with Retry-After', async () => {
      const sep = await brana.registerSep();
      for (let i = 0; i < 4; i += 1) assert.notEqual((await supertest(origin).get(`/auth?${query(sep)}`).set(via('203.0.113.10'))).status, 429);
      const limited = await supertest(origin).get(`/auth?${query(sep)}`).set(via('203.0.113.10'));
      assert.equal(limited.status, 429);
      assert.match(limited.text, /Příliš mnoho požadavků/);
      assert.ok(Number(limited.headers['retry-after']) > 0);
      const english = await supertest(origin).get(`/interaction/any`).set(via('203.0.113.10')).set('Cookie', 'brana_lang=en');
      assert.equal(english.status, 429);
      assert.match(english.text, /Too many requests/);
    });

    it('counts per client address: a spoofed X-Forwarded-For does not reset it, another client is not affected', async () => {
      const sep = await brana.registerSep();
      for (let i = 0; i < 4; i += 1) await supertest(origin).get(`/auth?${query(sep)}`).set(via('203.0.113.20', `10.0.0.${i}`));
      assert.equal((await supertest(origin).get(`/auth?${query(sep)}`).set(via('203.0.113.20', '10.9.9.9')).set('X-Real-IP', '10.1.1.1')).status, 429);
      assert.notEqual((await supertest(origin).get(`/auth?${query(sep)}`).set(via('203.0.113.21'))).status, 429);
    });

    it('limits the ACS (citizen page) and the registration endpoints (JSON for a program, a page for a person)', async () => {
      for (let i = 0; i < 2; i += 1) await supertest(origin).post('/saml/eobcanka/acs').set(via('203.0.113.30')).type('form').send({ SAMLResponse: 'AAAA' });
      const acs = await supertest(origin).post('/saml/eobcanka/acs').set(via('203.0.113.30')).type('form').send({ SAMLResponse: 'AAAA' });
      assert.equal(acs.status, 429);
      assert.match(acs.text, /Příliš mnoho požadavků/);
      for (let i = 0; i < 2; i += 1) await supertest(origin).post('/reg').set(via('203.0.113.31')).send({});
      const api = await supertest(origin).post('/reg').set(via('203.0.113.31')).set('Accept', 'application/json').send({});
      assert.equal(api.status, 429);
      assert.equal(api.body.error, 'temporarily_unavailable');
      const form = await supertest(origin).get('/register').set(via('203.0.113.31')).set('Accept', 'text/html,application/xhtml+xml');
      assert.equal(form.status, 429);
      assert.match(form.text, /Příliš mnoho požadavků/);
    });

    it('counts only failed token requests: a busy SeP is never slowed, guessing is', async () => {
      const own = await startTestBroker({ env: { BRANA_RATE_LIMIT_TOKEN_FAILURES: '3' } });
      try {
        const sep = await own.registerSep();
        const token = (form: Record<string, string>, secret: string) => supertest(own.url.origin).post('/token').auth(sep.clientId, secret).type('form').send(form);
        // More successful redemptions from one address than the limit: none is limited.
        for (let i = 0; i < 4; i += 1) {
          const code = await codeFor(own.url.origin, sep, { citizen: new Citizen(own.url.origin) });
          const ok = await token({ grant_type: 'authorization_code', code: code.code, redirect_uri: sep.redirectUri, code_verifier: code.codeVerifier }, sep.clientSecret);
          assert.equal(ok.status, 200);
        }
        for (let i = 0; i < 3; i += 1) assert.equal((await token({ grant_type: 'authorization_code', code: 'x' }, 'wrong')).status, 401);
        const limited = await token({ grant_type: 'authorization_code', code: 'x' }, 'wrong');
        assert.equal(limited.status, 429);
        assert.equal(limited.body.error, 'temporarily_unavailable');
        assert.equal(limited.body.access_token, undefined);
      } finally {
        await own.close();
      }
    });
  });

  it('ignores a client\'s X-Forwarded-For when no proxy is configured', async () => {
    const brana = await startTestBroker({ env: { BRANA_RATE_LIMIT_LOGIN: '2' } });
    try {
      const sep = await brana.registerSep();
      for (let i = 0; i < 2; i += 1) await supertest(brana.url.origin).get(`/auth?${query(sep)}`).set('X-Forwarded-For', `10.0.0.${i}`);
      assert.equal((await supertest(brana.url.origin).get(`/auth?${query(sep)}`).set('X-Forwarded-For', '10.0.0.99')).status, 429);
    } finally {
      await brana.close();
    }
  });

  it('refuses a rate-limit setting that is not a positive number, naming the variable', () => {
    assert.throws(() => readEnvironment({ BRANA_RATE_LIMIT_ACS: '0' }), /environment: BRANA_RATE_LIMIT_ACS: /);
    assert.throws(() => readEnvironment({ BRANA_RATE_LIMIT_WINDOW_SECONDS: 'soon' }), /environment: BRANA_RATE_LIMIT_WINDOW_SECONDS: /);
    assert.deepEqual(readEnvironment({}).rateLimits, { windowMs: 60_000, login: 600, acs: 120, tokenFailures: 60, registration: 20 });
  });

  describe('bodies, cookies and the content security policy', () => {
    let brana: TestBroker;
    let origin: string;
    before(async () => {
      brana = await startTestBroker();
      origin = brana.url.origin;
    });
    after(async () => brana.close());

    it('answers oversized, compressed and malformed bodies with a 4xx, never a 5xx', async () => {
      const sep = await brana.registerSep();
      const started = await startLogin(origin, sep);
      const consentPath = /action="(\/interaction\/[^/]+)\/means"/.exec(started.response.text)![1]!;
      const big = 'x'.repeat(200 * 1024);
      const answers = [
        await started.citizen.agent.post(`${consentPath}/means`).type('form').send({ means: big }),
        await started.citizen.agent.post(`${consentPath}/consent`).type('form').set('Content-Encoding', 'gzip').send(gzipSync(Buffer.from(`csrf=${big}`))),
        await supertest(origin).post('/token').auth(sep.clientId, sep.clientSecret).type('form').send({ grant_type: 'authorization_code', code: big.repeat(2) }),
        await supertest(origin).post('/token').auth(sep.clientId, sep.clientSecret).type('form').set('Content-Encoding', 'gzip').send(gzipSync(Buffer.from('grant_type=authorization_code'))),
        await supertest(origin).post('/token').auth(sep.clientId, sep.clientSecret).set('Content-Type', 'application/json').send('{"grant_type":'),
        await supertest(origin).post('/saml/eobcanka/acs').type('form').send('SAMLResponse=%E0%A4%A'),
      ];
      for (const answer of answers) assert.ok(answer.status >= 400 && answer.status < 500, `${answer.status}: ${answer.text.slice(0, 200)}`);
    });

    it('marks every cookie Secure (and sends HSTS) on an https deployment behind its proxy', async () => {
      const https = await startTestBroker({ env: { BRANA_TRUST_PROXY: 'true', BRANA_PUBLIC_URL: 'https://brana.example.cz' } });
      try {
        const sep = await https.registerSep();
        // (The public name is not resolvable here: requests go to the app itself.)
        const request = (path: string) => supertest(https.broker.app).get(path).set('X-Forwarded-Proto', 'https').set('X-Forwarded-For', '203.0.113.50');
        const responses = [await request(`/auth?${query(sep)}`), await request('/language?to=en&back=/')];
        const cookies = responses.flatMap((r) => ([] as string[]).concat(r.headers['set-cookie'] ?? []));
        assert.ok(cookies.length >= 3, cookies.join('\n'));
        for (const cookie of cookies) {
          assert.match(cookie, /; secure/i, cookie);
          assert.match(cookie, /; httponly/i, cookie);
          assert.match(cookie, /; samesite=lax/i, cookie);
        }
        assert.match(String(responses[0]!.headers['strict-transport-security']), /max-age=\d+/);
      } finally {
        await https.close();
      }
    });

    it('serves every page with a CSP that forbids inline script, and no page carries any', async () => {
      const sep = await brana.registerSep();
      const started = await startLogin(origin, sep);
      const toIdp = await chooseMeans(started.citizen, started.response, 'eobcanka');
      const idpPage = await started.citizen.get(String(toIdp.headers.location));
      const idp = await loginAtIdp(started.citizen, toIdp, '100000001');
      const idpAnswer = await started.citizen.post(`/dev-idp/eobcanka/login`, { request: idp.sealedRequest, login: '100000001', action: 'login' });
      const consent = await postToAcs(started.citizen, idp.acs, idp.fields);
      const pages = [
        started.response,
        idpPage,
        idpAnswer,
        consent,
        await new Citizen(origin).get('/interaction/unknown'),
        await new Citizen(origin).get(`/auth?${query(sep).replace('redirect_uri=', 'redirect_uri=x')}`),
        await started.citizen.get('/session/end'),
      ];
      for (const page of pages) {
        const csp = String(page.headers['content-security-policy']);
        assert.match(csp, /script-src 'self'(;|$)/, csp);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
        assert.match(csp, /object-src 'none'/);
        assert.match(csp, /base-uri 'none'/);
        assert.doesNotMatch(page.text, /<script(?![^>]*\ssrc=)[^>]*>/i, 'an inline script');
        assert.doesNotMatch(page.text, /\son[a-z]+\s*=/i, 'an inline event handler');
        assert.doesNotMatch(page.text, /javascript:/i);
      }
      await decideConsent(started.citizen, consent, 'refuse');
    });
  });

  describe('the operator\'s log', () => {
    it('never holds secrets, codes, tokens, SAML messages, cookies, pseudonyms or attribute values', async () => {
      const lines: string[] = [];
      const capture = new winston.transports.Stream({ stream: new Writable({ write: (chunk, _enc, done) => { lines.push(String(chunk)); done(); } }), level: 'debug' });
      const console = logger.transports.find((t) => t instanceof winston.transports.Console);
      const level = logger.level;
      logger.add(capture);
      logger.level = 'debug';
      if (console) console.silent = true;
      const bed = await startAttackBed({ env: { BRANA_RATE_LIMIT_TOKEN_FAILURES: '2' } });
      const secrets: string[] = [];
      try {
        const origin = bed.brana.url.origin;
        const sep = await bed.brana.registerSep();
        secrets.push(sep.clientSecret);
        // A full login: code, token, userinfo.
        const code = await codeFor(origin, sep, { scope: 'openid profile email' });
        const token = await redeemCode(origin, sep, code.code, code.codeVerifier);
        const info = await userinfo(origin, String(token.body.access_token));
        secrets.push(code.code, code.codeVerifier, String(token.body.access_token), String(token.body.id_token), String(info.body.sub));
        for (const cookie of code.citizen.agent.jar.getCookies({ domain: new URL(origin).hostname, path: '/', secure: false, script: false })) secrets.push(cookie.value);
        // Refused attacks: a tampered answer, a wrong secret until the limit, a forged consent.
        const login = await startUpstreamLogin(origin, await bed.brana.registerSep(), 'eobcanka');
        const answer = await bed.idp.eobcanka.answer(login, { encrypt: false });
        const tampered = answer.replace('>Novák<', '>Svobodová<');
        await expectRefused(bed, login, base64(tampered), ['signature_invalid']);
        secrets.push(base64(tampered).slice(100, 160));
        // A refused authorization request carrying a secret-looking state.
        await new Citizen(origin).get(`/auth?${query({ ...sep, redirectUri: 'https://attacker.example/' })}&state=${code.codeVerifier}`);
        for (let i = 0; i < 3; i += 1) await tokenRequest(origin, { grant_type: 'authorization_code', code: code.code, code_verifier: code.codeVerifier }, { id: sep.clientId, secret: 'guessed-secret-123' });
        secrets.push('guessed-secret-123');
      } finally {
        await bed.close();
        logger.remove(capture);
        logger.level = level;
        if (console) console.silent = false;
      }
      const log = lines.join('\n');
      assert.match(log, /upstream response refused/);
      assert.match(log, /rate limit reached/);
      assert.match(log, /authorization request refused/);
      for (const secret of secrets) assert.ok(secret.length >= 6 && !log.includes(secret), `the log holds ${secret.slice(0, 12)}…`);
      for (const value of ['Novák', 'Svobodová', '1980-04-12', 'jan.novak@example.cz', '<saml', '<samlp', 'SAMLResponse=', 'PHNhbWxw']) assert.ok(!log.includes(value), `the log holds ${value}`);
    });
  });
});
