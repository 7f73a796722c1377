import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { errorReturnedToSep, samlRequestReceived, samlRequestRefused, tokenIssued } from '../audit/audit-events.ts';
import { newHelpDeskReference } from '../audit/help-desk-reference.ts';
import { releaseDecisionOfAttributes, type ReleaseDecision } from '../consent/release-policy.ts';
import { attribute, type AttributeId } from '../domain/attributes.ts';
import { loaAtLeast, strictestLoa, type Loa } from '../domain/loa.ts';
import type { ForeignPersonStore } from '../identity/foreign-person-store.ts';
import type { PersonStore } from '../identity/person-store.ts';
import type { PopulationRegister } from '../identity/population-register.ts';
import { isForeignPerson } from '../identity/resolution.ts';
import type { KeyPairWithCertificate } from '../keys/certificate.ts';
import { JourneyGone, SAML_JOURNEY_PREFIX, type Journey, type JourneyFrontend, type JourneyResult } from '../login/journey.ts';
import { logger } from '../log/logger.ts';
import { claimsOf, type PersonFacts } from '../oidc/account.ts';
import { localeOf, renderPage } from '../pages/render.ts';
import { showCitizenError } from '../pages/citizen-errors.ts';
import type { Pseudonyms } from '../pseudonym/pseudonym.ts';
import { SamlSepStore, type SamlServiceProvider } from '../sep/saml-service-provider.ts';
import { ASSERTION_ENCRYPTIONS } from './sp-metadata.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { Sep } from '../sep/sep.ts';
import type { Database } from '../store/database.ts';
import type { AuthnRequestRefused, SamlAuthnRequest } from './authn-request.ts';
import type { SamlIdpEndpoints } from './idp-metadata.ts';
import { SAML_JOURNEY_LIFETIME_MS, SamlJourneyStore, type SamlJourneyRecord } from './journey-store.ts';
import { errorResponse, successResponse, type ResponseAddress } from './saml-response.ts';
import { STATUS, type SamlStatus } from './saml-status.ts';
import type { BranaSessions } from './brana-session.ts';
import { samlId } from './xml-signing.ts';

export interface SamlJourneyDependencies {
  db: Database;
  seps: SepStore;
  log: AssertionLog;
  pseudonyms: Pseudonyms;
  persons: PersonStore;
  register: PopulationRegister;
  foreignPersons?: ForeignPersonStore;
  endpoints: SamlIdpEndpoints;
  /** Brána's SAML signing key: Responses, Assertions and the IdP metadata are signed with it. */
  signing: KeyPairWithCertificate;
  /** Binds a journey to the browser that began it (an HMAC of its uid in a cookie). */
  formKey: Buffer;
  secure: boolean;
  /** The citizen's Brána session, which SAML logins join (SSO across SePs, IsPassive, logout). */
  sessions: BranaSessions;
}

/** The id of a SAML SeP's request in the assertion log: derived from its AuthnRequest ID, which the SeP knows. */
export function samlRequestIdOf(sepId: string, authnRequestId: string): string {
  return createHash('sha256').update('brana-saml-request-id').update(sepId).update('\0').update(authnRequestId).digest('base64url').slice(0, 22);
}

/** A SAML SeP's journey, read through the Journey a login step needs. */
class SamlJourney implements Journey {
  readonly protocol = 'saml';
  readonly record: SamlJourneyRecord;

  constructor(record: SamlJourneyRecord) {
    this.record = record;
  }

  get uid(): string {
    return this.record.uid;
  }

  get sepId(): string {
    return this.record.sepId;
  }

  get sepRequestId(): string {
    return this.record.sepRequestId;
  }

  get stage(): Journey['stage'] {
    return this.record.stage === 'done' ? 'other' : this.record.stage;
  }

  get accountId(): string | undefined {
    return this.record.personId ?? undefined;
  }

  get forceAuthn(): boolean {
    return this.record.forceAuthn;
  }

  get passive(): boolean {
    return this.record.isPassive;
  }

  get idpHint(): undefined {
    return undefined;
  }

  minimumLoa(registered: Loa): Loa {
    // The SeP may ask for more than it registered, never for less.
    return strictestLoa(this.record.requestedLoa ? [registered, this.record.requestedLoa] : [registered]);
  }

  releaseDecision(allowed: readonly AttributeId[]): ReleaseDecision {
    return releaseDecisionOfAttributes(
      this.record.requestedAttributes.map((requested) => requested.id),
      allowed,
    );
  }
}

/**
 * The SAML side of the journey. An AuthnRequest that passed every check begins a journey (its row,
 * with the request's id unique per SeP, and the `request_received` record, in one transaction) and
 * sends the browser, bound to it by a cookie, to the interaction every login shares. At its end the
 * SeP gets one signed Response at the ACS its metadata names: a signed and encrypted Assertion with
 * exactly what was consented to (and its `token_issued` record, in the transaction that ends the
 * journey), or a signed error status.
 */
export class SamlJourneys implements JourneyFrontend {
  private readonly deps: SamlJourneyDependencies;
  private readonly store: SamlJourneyStore;
  private readonly samlSeps: SamlSepStore;

  constructor(deps: SamlJourneyDependencies) {
    this.deps = deps;
    this.store = new SamlJourneyStore(deps.db);
    this.samlSeps = new SamlSepStore(deps.db);
  }

  /** The journeys' store, for sweeping expired rows. */
  get journeyStore(): SamlJourneyStore {
    return this.store;
  }

  /** Whether a journey still waits for its means' answer (for a re-sent answer). */
  isPending(uid: string): Promise<boolean> {
    return this.store.isPending(uid);
  }

  private cookieName(): string {
    return this.deps.secure ? '__Secure-brana_saml_journey' : 'brana_saml_journey';
  }

  private browserBinding(uid: string): string {
    return createHmac('sha256', this.deps.formKey).update(`saml-journey:${uid}`).digest('base64url');
  }

  /**
   * Begins the journey of a verified AuthnRequest. A request ID the SeP used before is a replay:
   * refused (the caller answers the SeP), and nothing begins.
   */
  async begin(req: Request, res: Response, request: SamlAuthnRequest): Promise<'begun' | 'replayed'> {
    const uid = `${SAML_JOURNEY_PREFIX}${randomBytes(16).toString('base64url')}`;
    const now = Date.now();
    const sepRequestId = samlRequestIdOf(request.sep.clientId, request.id);
    const begun = await this.deps.db.transaction(async (trx) => {
      const fresh = await this.store.begin(
        {
          uid,
          sepId: request.sep.clientId,
          authnRequestId: request.id,
          sepRequestId,
          acsUrl: request.acs.url,
          relayState: request.relayState,
          requestedAttributes: request.requestedAttributes,
          requestedLoa: request.requestedLoa,
          forceAuthn: request.forceAuthn,
          isPassive: request.isPassive,
          nameIdFormat: request.nameIdFormat,
          createdAt: now,
          expiresAt: now + SAML_JOURNEY_LIFETIME_MS,
        },
        trx,
      );
      if (!fresh) return false;
      await this.deps.log.append(
        samlRequestReceived({
          sepId: request.sep.clientId,
          requestId: sepRequestId,
          binding: request.binding,
          requestedLoa: request.requestedLoa,
          forceAuthn: request.forceAuthn,
          attributes: request.requestedAttributes.map((requested) => requested.id),
        }),
        trx,
      );
      return true;
    });
    if (!begun) return 'replayed';
    res.append(
      'Set-Cookie',
      serializeCookie(this.cookieName(), this.browserBinding(uid), { path: `/interaction/${uid}`, httpOnly: true, sameSite: 'lax', secure: this.deps.secure, maxAge: SAML_JOURNEY_LIFETIME_MS / 1000 }),
    );
    res.redirect(303, `/interaction/${uid}`);
    return 'begun';
  }

  async details(req: Request, _res: Response, uid: string): Promise<Journey> {
    const given = Buffer.from(parseCookies(req.headers.cookie ?? '')[this.cookieName()] ?? '');
    const expected = Buffer.from(this.browserBinding(uid));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new JourneyGone();
    const record = await this.store.find(uid);
    if (!record || record.stage === 'done' || record.expiresAt <= Date.now()) throw new JourneyGone();
    return new SamlJourney(record);
  }

  /** SAML keeps no grant: the Response carries exactly what was consented to. */
  async saveGrant(): Promise<null> {
    return null;
  }

  /**
   * A journey at its start, in a browser whose Brána session already holds a login that serves this
   * SeP (the LoA it needs, a means it may use — `qualifying` — and no ForceAuthn): on to consent
   * without a means, as oidc-provider does it for an OIDC SeP. An IsPassive journey the session
   * cannot serve ends in NoPassive. False when the citizen goes on to choose a means.
   */
  async continueFromSession(req: Request, res: Response, journey: Journey, qualifying: readonly string[], minimum: Loa): Promise<boolean> {
    const { record } = journey as SamlJourney;
    const login = record.forceAuthn ? undefined : this.deps.sessions.loginOf(await this.deps.sessions.current(req, res));
    if (login && qualifying.includes(login.means) && loaAtLeast(login.acr, minimum)) {
      if (!(await this.store.recordLogin(record.uid, { personId: login.accountId, acr: login.acr, means: login.means, authnInstant: login.authnInstant }))) throw new JourneyGone();
      res.redirect(303, `/interaction/${record.uid}`);
      return true;
    }
    if (!record.isPassive) return false;
    await this.finish(req, res, journey, { kind: 'denied', reason: 'passive_impossible', description: 'the citizen has no Brána session that serves this request' });
    return true;
  }

  async finish(req: Request, res: Response, journey: Journey, result: JourneyResult): Promise<void> {
    const { record } = journey as SamlJourney;
    if (result.kind === 'login') {
      const recorded = await this.store.recordLogin(record.uid, { personId: result.accountId, acr: result.acr, means: result.means, authnInstant: result.authnInstant });
      if (!recorded) throw new JourneyGone();
      // The means authenticated the citizen: the browser's Brána session holds this login from now on.
      await this.deps.sessions.logIn(req, res, result);
      res.redirect(303, `/interaction/${record.uid}`);
      return;
    }
    const sep = await this.deps.seps.find(record.sepId);
    const serviceProvider = await this.samlSeps.find(record.sepId);
    if (!sep || sep.status !== 'active' || !serviceProvider) throw new JourneyGone();
    const address: ResponseAddress = { idpEntityId: this.deps.endpoints.entityId, spEntityId: serviceProvider.serviceProvider.entityId, acsUrl: record.acsUrl, inResponseTo: record.authnRequestId };
    if (result.kind === 'denied') {
      const status = result.reason === 'consent_refused' ? STATUS.consentRefused : result.reason === 'passive_impossible' ? STATUS.noPassive : STATUS.authnFailed;
      const { xml } = errorResponse(address, status, this.deps.signing);
      await this.deps.db.transaction(async (trx) => {
        if (!(await this.store.end(record.uid, record.stage === 'login' ? 'login' : 'consent', trx))) throw new JourneyGone();
        await this.deps.log.append(errorReturnedToSep({ sepId: sep.clientId, requestId: record.sepRequestId, error: status.second ?? status.code, route: 'saml_sso', description: result.description }), trx);
      });
      this.post(req, res, sep, record.acsUrl, xml, record.relayState);
      return;
    }
    await this.issue(req, res, sep, record, address, serviceProvider.serviceProvider, result.decision);
  }

  /** The Assertion of exactly what was consented to, and its record, in the transaction that ends the journey. */
  private async issue(req: Request, res: Response, sep: Sep, record: SamlJourneyRecord, address: ResponseAddress, serviceProvider: SamlServiceProvider, decision: ReleaseDecision): Promise<void> {
    const { deps } = this;
    const encryptionCertificate = serviceProvider.encryptionCertificate;
    if (!record.personId || !record.acr || !record.means || !encryptionCertificate) throw new JourneyGone();
    const pseudonym = deps.pseudonyms.forGroup(record.personId, sep.group);
    const released = decision.consentable;
    const attributes = await this.attributeValues(record, sep, released);
    const nameId = record.nameIdFormat === 'persistent' ? pseudonym : `_${randomBytes(20).toString('hex')}`;
    // Given in the browser's session (if it still is this person's), the SeP joins it below.
    const inSession = await deps.sessions.sessionIndexFor(req, res, record.personId);
    const response = await successResponse(
      address,
      {
        nameId,
        nameIdFormat: record.nameIdFormat,
        loa: record.acr,
        authnInstant: record.authnInstant ?? Date.now(),
        sessionIndex: inSession ?? samlId(),
        attributes: attributes.saml,
        encryptionCertificate,
        dataEncryption: serviceProvider.assertionEncryption ?? ASSERTION_ENCRYPTIONS[0],
      },
      deps.signing,
    );
    await deps.db.transaction(async (trx) => {
      if (!(await this.store.end(record.uid, 'consent', trx))) throw new JourneyGone();
      await deps.log.append(
        tokenIssued({
          sepId: sep.clientId,
          requestId: record.sepRequestId,
          means: record.means,
          loa: record.acr,
          pseudonym,
          grantId: undefined,
          scope: undefined,
          attributes: released,
          protocol: 'saml',
          assertionId: response.assertionId,
          ...(sep.logAttributeValues ? { attributeValues: attributes.values } : {}),
        }),
        trx,
      );
    });
    if (inSession) await deps.sessions.join(req, res, sep.clientId, { nameId, nameIdFormat: record.nameIdFormat, sessionIndex: inSession });
    this.post(req, res, sep, record.acsUrl, response.xml, record.relayState);
  }

  /** The released attributes' values, as eIDAS attributes and (for value logging) by attribute name. */
  private async attributeValues(record: SamlJourneyRecord, sep: Sep, released: readonly AttributeId[]): Promise<{ saml: Array<{ name: string; values: string[] }>; values: Record<string, unknown> }> {
    const { deps } = this;
    const person = await deps.persons.find(record.personId!);
    const facts: PersonFacts | undefined = person ? (isForeignPerson(person) ? await deps.foreignPersons?.find(person.id) : await deps.register.findById(person.registerId)) : undefined;
    const personIdentifier = deps.pseudonyms.personIdentifier(record.personId!, sep.group);
    const ageAsked = record.requestedAttributes.find((requested) => requested.id === 'isAgeOver')?.values[0];
    const claims = (facts ? claimsOf(facts, personIdentifier, ageAsked ? { isAgeOver: { value: ageAsked } } : {}) : { PersonIdentifier: personIdentifier }) as Record<string, unknown>;
    const saml: Array<{ name: string; values: string[] }> = [];
    const values: Record<string, unknown> = {};
    for (const id of ['PersonIdentifier' as AttributeId, ...released]) {
      const value = claims[attribute(id).claims[0]!];
      if (value === undefined || value === null) continue;
      saml.push({ name: attribute(id).samlName, values: [String(value)] });
      if (id !== 'PersonIdentifier') values[id] = value;
    }
    return { saml, values };
  }

  /** The browser posts the Response to the SeP's ACS (HTTP-POST binding). */
  private post(req: Request, res: Response, sep: Sep, acsUrl: string, xml: string, relayState: string | null): void {
    const name = sep.name[localeOf(req)];
    renderPage(req, res, 'autopost', { title: name, heading: name, action: acsUrl, fields: { SAMLResponse: Buffer.from(xml, 'utf8').toString('base64'), ...(relayState !== null ? { RelayState: relayState } : {}) } });
  }

  /**
   * Answers a request that cannot begin a journey: a signed error Response to the SeP at a registered
   * ACS when the SeP and the ACS are known, the citizen's error page otherwise. Either way one log
   * record, with a help-desk reference, and never an assertion.
   */
  async refuse(req: Request, res: Response, refusal: AuthnRequestRefused | { reason: string; status: SamlStatus; respondTo: AuthnRequestRefused['respondTo'] }): Promise<void> {
    const reference = newHelpDeskReference();
    const target = refusal.respondTo;
    const requestId = target?.requestId ? samlRequestIdOf(target.sep.clientId, target.requestId) : null;
    await this.deps.log.append(samlRequestRefused({ sepId: target?.sep.clientId ?? null, requestId, reason: refusal.reason, answered: target ? (refusal.status.second ?? refusal.status.code) : null, reference }));
    logger.warn('SAML request refused', { reason: refusal.reason, reference, sep: target?.sep.clientId ?? null });
    if (!target) {
      showCitizenError(req, res, 'sep_request_refused', { reference });
      return;
    }
    const address: ResponseAddress = { idpEntityId: this.deps.endpoints.entityId, spEntityId: target.serviceProvider.serviceProvider.entityId, acsUrl: target.acs.url, inResponseTo: target.requestId };
    this.post(req, res, target.sep, target.acs.url, errorResponse(address, refusal.status, this.deps.signing).xml, target.relayState);
  }
}
