import { createHash, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { sepApproved, sepChanged, sepChangeRejected, sepRegistered, sepRegistrationRejected, sepSecretRotated, sepStatusChanged, sepUpdated } from '../audit/audit-events.ts';
import { describeIssues } from '../config/configuration-error.ts';
import type { Database } from '../store/database.ts';
import { RESERVED_PREFIX, registrationOf, registrationSchema, type RegistrationContext, type Sep, type SepRegistration as RegistrationDocument, type SepStatus } from './sep.ts';
import type { Queryable } from '../store/database.ts';
import type { GroupOwner, RegisteredSep, SepStore, TechnicalSettings } from './sep-store.ts';
import { EntityIdTaken, SamlSepStore, type SamlServiceProvider } from './saml-service-provider.ts';

/** A certificate's SHA-256 fingerprint (hex), as the log names certificates. */
function certificateFingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex');
}

/** A SAML SeP's SP metadata, read and checked, as `register` writes it. */
export interface SamlRegistration {
  serviceProvider: SamlServiceProvider;
  metadata: { xml: string; source: string };
}

/** A registration refused for its content; `problems` name each field. */
export class RegistrationRejected extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** An administrator's decision that has nothing to decide on (no pending registration or change). */
export class NothingToDecide extends Error {}

/**
 * An approval that cannot be given: the registration changed since the administrator reviewed it
 * (`stale_review`), or what it would put in force breaks a rule (`not_approvable`). Nothing changes.
 */
export class ApprovalRefused extends Error {
  readonly code: 'stale_review' | 'not_approvable';

  constructor(code: 'stale_review' | 'not_approvable', description: string) {
    super(description);
    this.code = code;
  }
}

/** A decision about a SeP that is not registered. */
export class UnknownSep extends Error {
  constructor(clientId: string) {
    super(`no SeP with client id ${clientId}`);
  }
}

/** The fields a SeP changes for itself at once; every other field waits for an administrator. */
export const TECHNICAL_FIELDS = ['redirectUris', 'postLogoutRedirectUris', 'frontchannelLogoutUri', 'tokenEndpointAuthMethod', 'jwks', 'jwksUri', 'idTokenEncryption', 'idTokenSignedResponseAlg'] as const;

function technicalOf(document: RegistrationDocument): TechnicalSettings {
  return {
    redirectUris: document.redirectUris,
    postLogoutRedirectUris: document.postLogoutRedirectUris,
    frontchannelLogoutUri: document.frontchannelLogoutUri,
    tokenEndpointAuthMethod: document.tokenEndpointAuthMethod,
    jwks: document.jwks,
    jwksUri: document.jwksUri,
    idTokenEncryption: document.idTokenEncryption,
    idTokenSignedResponseAlg: document.idTokenSignedResponseAlg,
  };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The fields of a registration document that differ between two versions. */
export function changedFields(before: RegistrationDocument, after: RegistrationDocument): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)].filter((key) => key !== 'clientId'));
  return [...keys].filter((key) => !same(before[key as keyof RegistrationDocument], after[key as keyof RegistrationDocument])).sort();
}

/** JSON with sorted keys, so that the same document always gives the same digest. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, item]) => item !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * What waits for an administrator's approval, and the document that approving it puts in force:
 * a pending SeP's whole registration, or the change an active SeP asked for (its technical
 * settings are taken from what is in force at the time, so they are not part of what is approved).
 */
export function awaitingApproval(sep: Sep): { kind: 'registration' | 'change'; document: RegistrationDocument; reviewed: Record<string, unknown> } | null {
  if (sep.status === 'pending') {
    const document = registrationOf(sep);
    return { kind: 'registration', document, reviewed: { ...document } };
  }
  if (sep.status === 'active' && sep.requestedRegistration) {
    const document = { ...sep.requestedRegistration, ...technicalOf(registrationOf(sep)), clientId: sep.clientId };
    const reviewed: Record<string, unknown> = { ...sep.requestedRegistration, clientId: sep.clientId };
    for (const field of TECHNICAL_FIELDS) delete reviewed[field];
    return { kind: 'change', document, reviewed };
  }
  return null;
}

/**
 * The version of what waits for approval that an administrator reviews and names when approving:
 * a SHA-256 digest of the document (a pending registration, or the requested change without the
 * technical settings). A SeP that rewrites its request after the review changes the digest, and the
 * approval of the old one is refused.
 */
export function approvalDigest(sep: Sep): string | null {
  const waiting = awaitingApproval(sep);
  return waiting ? createHash('sha256').update(canonicalJson({ kind: waiting.kind, document: waiting.reviewed })).digest('hex') : null;
}

/**
 * What waits for a decision, if it is the version the administrator reviewed (`digest`); else
 * nothing is decided: `NothingToDecide`, or `ApprovalRefused('stale_review')`.
 */
function reviewedVersion(sep: Sep, digest: string, decision: 'approve' | 'refuse'): NonNullable<ReturnType<typeof awaitingApproval>> {
  const waiting = awaitingApproval(sep);
  if (!waiting) throw new NothingToDecide(`SeP ${sep.clientId} has nothing waiting for approval`);
  if (approvalDigest(sep) !== digest) {
    throw new ApprovalRefused('stale_review', `SeP ${sep.clientId}'s ${waiting.kind === 'registration' ? 'registration' : 'requested change'} is not the version you reviewed (digest ${digest}): it changed since; review it again and ${decision} the digest shown now`);
  }
  return waiting;
}

/**
 * What a SeP's own update makes of its registration. A pending SeP rewrites its whole request. An
 * active SeP changes its technical settings at once; a change of anything an administrator approved
 * (name, organisation, group, attributes, LoA, means, sector, legal basis…) is kept as a request and
 * the approved values stay in force until an administrator approves it.
 */
export function planUpdate(current: Sep, document: RegistrationDocument): { inForce: RegistrationDocument; requested: RegistrationDocument | null; changed: string[] } {
  const before = registrationOf(current);
  const asked = { ...document, clientId: current.clientId };
  if (current.status === 'pending') return { inForce: asked, requested: null, changed: changedFields(before, asked) };
  const inForce = { ...before, ...technicalOf(asked) };
  const requested = changedFields(inForce, asked).length ? asked : null;
  return { inForce, requested, changed: changedFields(current.requestedRegistration ?? before, asked) };
}

/**
 * Registering a SeP and every later change to its registration: validate the whole document, then
 * write the registration and its administrative record in one transaction, so nothing half-written
 * can stay behind.
 */
export class SepRegistration {
  private readonly db: Database;
  private readonly seps: SepStore;
  private readonly log: AssertionLog;
  private readonly context: RegistrationContext;

  constructor(db: Database, seps: SepStore, log: AssertionLog, context: RegistrationContext) {
    this.db = db;
    this.seps = seps;
    this.log = log;
    this.context = context;
  }

  /** The same desk for Brána's own applications: it may use the reserved `brana-` names. */
  forBrana(): SepRegistration {
    return new SepRegistration(this.db, this.seps, this.log, { ...this.context, allowReserved: true });
  }

  /** Validates a registration document; `cs` gives zod's own messages in Czech (for the web form). */
  validate(document: unknown, language: 'cs' | 'en' = 'en'): RegistrationDocument {
    const parsed = registrationSchema(this.context).safeParse(document, language === 'cs' ? { error: z.locales.cs().localeError } : undefined);
    if (!parsed.success) throw new RegistrationRejected(describeIssues(parsed.error.issues));
    return parsed.data;
  }

  /**
   * Problems that only matter when a SeP registers itself: a SeP group is a pseudonym sector, so a
   * SeP may ask to join one only if the group belongs to its organisation (IČO). Who owns a group
   * was established by an administrator; a group nobody owns yet is checked against its active SePs.
   * (This is early advice to the SeP; the rule that counts is checked again at approval.)
   */
  async selfServiceProblems(document: RegistrationDocument, clientId?: string): Promise<string[]> {
    return (await this.groupProblem(document, clientId, this.db)) ? ['group: belongs to another organisation; choose a group of your own organisation'] : [];
  }

  /** Why `document` may not be in force in its group, or null: its group belongs to another organisation. */
  private async groupProblem(document: RegistrationDocument, clientId: string | undefined, trx: Queryable): Promise<string | null> {
    const owner = await this.seps.groupOwner(document.group, trx);
    if (owner) return owner.organisation.id === document.organisation.id ? null : `group ${document.group} belongs to ${owner.organisation.name} (IČO ${owner.organisation.id})`;
    const members = (await this.seps.listGroup(document.group, trx)).filter((sep) => sep.clientId !== clientId && sep.status === 'active');
    const other = members.find((sep) => sep.organisation.id !== document.organisation.id);
    return other ? `group ${document.group} has an active SeP of ${other.organisation.name} (IČO ${other.organisation.id})` : null;
  }

  /**
   * An administrator's act puts `document` in force: its group must belong to its organisation, and
   * a group nobody owns yet becomes this organisation's (the administrator confirms it by the act).
   */
  private async claimGroup(document: RegistrationDocument, clientId: string | undefined, actor: string, trx: Queryable): Promise<GroupOwner> {
    const problem = await this.groupProblem(document, clientId, trx);
    if (problem) throw new RegistrationRejected([`group: ${problem}; a SeP group is a pseudonym sector and only SePs of one organisation may share it`]);
    const owner = await this.seps.establishGroupOwner(document.group, document.organisation, actor, trx);
    if (owner.organisation.id !== document.organisation.id) throw new RegistrationRejected([`group: group ${document.group} belongs to ${owner.organisation.name} (IČO ${owner.organisation.id})`]);
    return owner;
  }

  /**
   * What an administrator reviewing `sep` should know beyond the document: the version to name when
   * approving, who owns the group it would be in, and any rule its approval would break.
   */
  async approvalReview(sep: Sep): Promise<{ awaiting: 'registration' | 'change'; digest: string; group: string; groupOwner: GroupOwner | null; problems: string[] } | null> {
    const waiting = awaitingApproval(sep);
    if (!waiting) return null;
    const problems: string[] = [];
    try {
      this.validate(waiting.document);
    } catch (err) {
      if (!(err instanceof RegistrationRejected)) throw err;
      problems.push(...err.problems);
    }
    const groupProblem = await this.groupProblem(waiting.document, sep.clientId, this.db);
    if (groupProblem) problems.push(`group: ${groupProblem}`);
    return { awaiting: waiting.kind, digest: approvalDigest(sep)!, group: waiting.document.group, groupOwner: (await this.seps.groupOwner(waiting.document.group)) ?? null, problems };
  }

  /**
   * Registers a SeP. `saml`: a SAML SeP, its SP metadata written beside the registration in the same
   * transaction (its ACS URLs are the registration's return URLs).
   */
  async register(document: unknown, status: SepStatus, actor: string, options: { clientId?: string; clientSecret?: string; saml?: SamlRegistration } = {}): Promise<RegisteredSep> {
    const registration = this.validate(document);
    const { saml, ...storeOptions } = options;
    return this.db.transaction(async (trx) => {
      // An operator registering an active SeP is the administrator's act that establishes its group.
      if (status === 'active') await this.claimGroup(registration, registration.clientId ?? options.clientId, actor, trx);
      const registered = await this.seps.register(registration, status, trx, { ...storeOptions, ...(saml ? { protocol: 'saml' as const } : {}) });
      const { sep } = registered;
      if (saml) {
        try {
          await new SamlSepStore(trx).save(sep.clientId, saml.serviceProvider, saml.metadata, trx);
        } catch (err) {
          if (err instanceof EntityIdTaken) throw new RegistrationRejected([`entityID: ${err.message}`]);
          throw err;
        }
      }
      await this.log.append(
        sepRegistered({
          actor,
          sepId: sep.clientId,
          status,
          group: sep.group,
          organisationId: sep.organisation.id,
          allowedAttributes: sep.allowedAttributes,
          minimumLoa: sep.minimumLoa,
          environment: sep.environment,
          ...(saml ? { samlEntityId: saml.serviceProvider.entityId } : {}),
        }),
        trx,
      );
      return registered;
    });
  }

  /**
   * A SAML SeP's new SP metadata (a certificate rollover, a moved ACS): the same entity ID, its ACS
   * URLs as the return URLs, one `sep_changed` record with what changed (ACS URLs, SLO, certificate
   * fingerprints — never the certificates). Nothing else of the registration changes.
   */
  async replaceSamlMetadata(clientId: string, saml: SamlRegistration, actor: string): Promise<string[]> {
    return this.db.transaction(async (trx) => {
      const current = await this.seps.find(clientId, trx);
      const store = new SamlSepStore(trx);
      const before = current?.protocol === 'saml' ? await store.find(clientId, trx) : undefined;
      if (!current || !before) throw new RegistrationRejected(['clientId: no SAML SeP with this client id']);
      if (before.serviceProvider.entityId !== saml.serviceProvider.entityId) {
        throw new RegistrationRejected([`entityID: is ${saml.serviceProvider.entityId}, the SeP is registered as ${before.serviceProvider.entityId}`]);
      }
      const summary = (sp: SamlServiceProvider) => ({
        assertionConsumerServices: sp.assertionConsumerServices.map((service) => service.url),
        singleLogout: sp.singleLogout?.url ?? null,
        signingCertificates: sp.signingCertificates.map(certificateFingerprint),
        encryptionCertificate: sp.encryptionCertificate ? certificateFingerprint(sp.encryptionCertificate) : null,
        assertionEncryption: sp.assertionEncryption ?? null,
      });
      const from = summary(before.serviceProvider);
      const to = summary(saml.serviceProvider);
      const changed = (Object.keys(to) as Array<keyof typeof to>).filter((key) => JSON.stringify(from[key]) !== JSON.stringify(to[key]));
      await store.save(clientId, saml.serviceProvider, saml.metadata, trx);
      await this.seps.updateTechnicalSettings(clientId, { ...technicalOf(registrationOf(current)), redirectUris: to.assertionConsumerServices }, trx);
      await this.log.append(sepChanged({ actor, sepId: clientId, field: 'samlMetadata', from, to }), trx);
      return changed;
    });
  }

  /** The operator's switch: log attribute values (not only names) for this SeP's logins. */
  async setAttributeValueLogging(clientId: string, on: boolean, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const before = await this.seps.find(clientId, trx);
      if (!before) return false;
      await this.seps.setLogAttributeValues(clientId, on, trx);
      await this.log.append(sepChanged({ actor, sepId: clientId, field: 'logAttributeValues', from: before.logAttributeValues, to: on }), trx);
      return true;
    });
  }

  async setStatus(clientId: string, status: SepStatus, actor: string, reason?: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const before = await this.seps.find(clientId, trx);
      if (!before) return false;
      await this.seps.setStatus(clientId, status, trx);
      await this.log.append(sepStatusChanged({ actor, sepId: clientId, from: before.status, to: status, reason: reason ?? null }), trx);
      return true;
    });
  }

  /** An operator (or Brána itself) puts a whole new registration document in force. */
  async replaceByOperator(clientId: string, document: unknown, actor: string): Promise<string[]> {
    const registration = this.validate({ ...(document as Record<string, unknown>), clientId });
    return this.db.transaction(async (trx) => {
      const current = await this.seps.find(clientId, trx);
      if (!current) throw new RegistrationRejected(['clientId: no such SeP']);
      const changed = changedFields(registrationOf(current), registration);
      if (current.status === 'active') await this.claimGroup(registration, clientId, actor, trx);
      await this.seps.replaceRegistration(clientId, registration, trx);
      await this.log.append(sepUpdated({ actor, sepId: clientId, changed, awaitingApproval: false }), trx);
      return changed;
    });
  }

  /** A SeP's own update of its registration (RFC 7592); see `planUpdate`. */
  async updateBySep(clientId: string, document: unknown, actor: string, clientSecret?: string): Promise<{ awaitingApproval: boolean; changed: string[] }> {
    const registration = this.validate({ ...(document as Record<string, unknown>), clientId });
    return this.db.transaction(async (trx) => {
      const current = await this.seps.findForChange(clientId, trx);
      if (!current) throw new RegistrationRejected(['client_id: no such SeP']);
      const plan = planUpdate(current.sep, registration);
      if (current.sep.status === 'pending') await this.seps.replaceRegistration(clientId, plan.inForce, trx);
      else {
        await this.seps.updateTechnicalSettings(clientId, technicalOf(plan.inForce), trx);
        await this.seps.setRequestedRegistration(clientId, plan.requested, trx);
      }
      // Switching to a secret-based method gives a SeP its first secret (oidc-provider makes it).
      if (clientSecret && !current.clientSecret) await this.seps.setSecret(clientId, clientSecret, trx);
      const awaitingApproval = current.sep.status === 'pending' || plan.requested !== null;
      await this.log.append(sepUpdated({ actor, sepId: clientId, changed: plan.changed, awaitingApproval }), trx);
      return { awaitingApproval, changed: plan.changed };
    });
  }

  /**
   * An administrator approves a pending registration (it can log citizens in from now on) or the
   * change an active SeP asked for (it comes into force) — exactly the version the administrator
   * reviewed (`digest`, see `approvalDigest`). The rules are checked again on what comes into force:
   * the document is valid now (no reserved `brana-` names), and its group belongs to its organisation;
   * the first approval in a new group records the group's organisation.
   */
  async approve(clientId: string, actor: string, digest: string): Promise<{ status: SepStatus; applied: string[]; group: string; groupOwner: { id: string; name: string } }> {
    return this.db.transaction(async (trx) => {
      const current = (await this.seps.findForChange(clientId, trx))?.sep;
      if (!current) throw new UnknownSep(clientId);
      const waiting = reviewedVersion(current, digest, 'approve');
      let owner: GroupOwner;
      try {
        this.validate(waiting.document);
        if (waiting.document.group.startsWith(RESERVED_PREFIX) || clientId.startsWith(RESERVED_PREFIX)) throw new RegistrationRejected([`group: ${RESERVED_PREFIX} names are reserved for Brána`]);
        owner = await this.claimGroup(waiting.document, clientId, actor, trx);
      } catch (err) {
        if (err instanceof RegistrationRejected) throw new ApprovalRefused('not_approvable', `SeP ${clientId} cannot be approved: ${err.message}`);
        throw err;
      }
      const next = waiting.document;
      const applied = waiting.kind === 'change' ? changedFields(registrationOf(current), next) : [];
      if (waiting.kind === 'registration') await this.seps.setStatus(clientId, 'active', trx);
      else await this.seps.replaceRegistration(clientId, next, trx);
      await this.log.append(
        sepApproved({
          actor,
          sepId: clientId,
          approved: waiting.kind,
          digest,
          applied,
          group: next.group,
          groupOrganisationId: owner.organisation.id,
          organisationId: next.organisation.id,
          allowedAttributes: next.allowedAttributes,
          minimumLoa: next.minimumLoa,
        }),
        trx,
      );
      return { status: 'active' as SepStatus, applied, group: next.group, groupOwner: owner.organisation };
    });
  }

  /**
   * An administrator refuses a pending registration (it is disabled) or a requested change (it is
   * dropped). With `digest` (the console always gives it) only that version: a SeP that rewrote its
   * request since the review gets no refusal of a version nobody looked at.
   */
  async reject(clientId: string, actor: string, reason: string, digest?: string): Promise<{ status: SepStatus }> {
    return this.db.transaction(async (trx) => {
      const current = (await this.seps.findForChange(clientId, trx))?.sep;
      if (!current) throw new UnknownSep(clientId);
      if (digest !== undefined) reviewedVersion(current, digest, 'refuse');
      if (current.status === 'pending') {
        await this.seps.setStatus(clientId, 'disabled', trx);
        await this.log.append(sepRegistrationRejected({ actor, sepId: clientId, reason }), trx);
        return { status: 'disabled' as SepStatus };
      }
      if (current.status === 'active' && current.requestedRegistration) {
        await this.seps.setRequestedRegistration(clientId, null, trx);
        await this.log.append(sepChangeRejected({ actor, sepId: clientId, reason }), trx);
        return { status: current.status };
      }
      throw new NothingToDecide(`SeP ${clientId} has nothing waiting for approval`);
    });
  }

  /** An administrator suspends an active SeP: it logs nobody in until reinstated. */
  async suspend(clientId: string, actor: string, reason: string): Promise<void> {
    await this.db.transaction(async (trx) => {
      const current = (await this.seps.findForChange(clientId, trx))?.sep;
      if (!current) throw new UnknownSep(clientId);
      if (current.status !== 'active') throw new NothingToDecide(`SeP ${clientId} is not active`);
      await this.seps.setStatus(clientId, 'disabled', trx);
      await this.log.append(sepStatusChanged({ actor, sepId: clientId, from: 'active', to: 'disabled', reason }), trx);
    });
  }

  /**
   * An administrator reinstates a SeP that was suspended. Only a suspension is undone this way: a
   * refused registration was never approved, and reinstating it would put it in force unreviewed.
   * What the SeP's last decision was is read from the assertion log.
   */
  async reinstate(clientId: string, actor: string, reason: string): Promise<void> {
    // The decisions staged by this node are in the chain before it is read.
    await this.log.settled();
    await this.db.transaction(async (trx) => {
      const current = (await this.seps.findForChange(clientId, trx))?.sep;
      if (!current) throw new UnknownSep(clientId);
      if (!(await this.wasSuspended(current, trx))) throw new NothingToDecide(`SeP ${clientId} was not suspended: only a suspended SeP is reinstated`);
      await this.seps.setStatus(clientId, 'active', trx);
      await this.log.append(sepStatusChanged({ actor, sepId: clientId, from: 'disabled', to: 'active', reason }), trx);
    });
  }

  /** Whether a disabled SeP's last decision was a suspension of it while active. */
  async wasSuspended(sep: Sep, trx: Queryable = this.db): Promise<boolean> {
    if (sep.status !== 'disabled') return false;
    const [last] = await this.log.query({ sepId: sep.clientId, events: ['sep_status_changed', 'sep_rejected', 'sep_approved', 'sep_registered'] }, { order: 'desc', limit: 1 }, trx);
    return last?.event === 'sep_status_changed' && last.detail.from === 'active' && last.detail.to === 'disabled';
  }

  async rotateSecret(clientId: string, actor: string): Promise<string | undefined> {
    return this.db.transaction(async (trx) => {
      const secret = await this.seps.rotateSecret(clientId, trx);
      if (secret) await this.log.append(sepSecretRotated({ actor, sepId: clientId }), trx);
      return secret;
    });
  }
}
