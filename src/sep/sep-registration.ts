import { z } from 'zod';
import type { AssertionLog } from '../audit/assertion-log.ts';
import { sepChanged, sepChangeApproved, sepChangeRejected, sepRegistered, sepRegistrationApproved, sepRegistrationRejected, sepSecretRotated, sepStatusChanged, sepUpdated } from '../audit/audit-events.ts';
import { describeIssues } from '../config/configuration-error.ts';
import type { Database } from '../store/database.ts';
import { registrationOf, registrationSchema, type RegistrationContext, type Sep, type SepRegistration as RegistrationDocument, type SepStatus } from './sep.ts';
import type { RegisteredSep, SepStore, TechnicalSettings } from './sep-store.ts';

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

/** A decision about a SeP that is not registered. */
export class UnknownSep extends Error {
  constructor(clientId: string) {
    super(`no SeP with client id ${clientId}`);
  }
}

/** The fields a SeP changes for itself at once; every other field waits for an administrator. */
export const TECHNICAL_FIELDS = ['redirectUris', 'postLogoutRedirectUris', 'tokenEndpointAuthMethod', 'jwks', 'jwksUri', 'idTokenEncryption', 'idTokenSignedResponseAlg'] as const;

function technicalOf(document: RegistrationDocument): TechnicalSettings {
  return {
    redirectUris: document.redirectUris,
    postLogoutRedirectUris: document.postLogoutRedirectUris,
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
   * SeP may join one only if every SeP already in it belongs to the same organisation (IČO).
   */
  async selfServiceProblems(document: RegistrationDocument, clientId?: string): Promise<string[]> {
    const members = (await this.seps.listGroup(document.group)).filter((sep) => sep.clientId !== clientId && sep.status !== 'disabled');
    if (members.some((sep) => sep.organisation.id !== document.organisation.id)) {
      return ['group: belongs to another organisation; choose a group of your own organisation'];
    }
    return [];
  }

  async register(document: unknown, status: SepStatus, actor: string, options: { clientId?: string; clientSecret?: string } = {}): Promise<RegisteredSep> {
    const registration = this.validate(document);
    return this.db.transaction(async (trx) => {
      const registered = await this.seps.register(registration, status, trx, options);
      const { sep } = registered;
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
        }),
        trx,
      );
      return registered;
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
      await this.seps.replaceRegistration(clientId, registration, trx);
      await this.log.append(sepUpdated({ actor, sepId: clientId, changed, awaitingApproval: false }), trx);
      return changed;
    });
  }

  /** A SeP's own update of its registration (RFC 7592); see `planUpdate`. */
  async updateBySep(clientId: string, document: unknown, actor: string, clientSecret?: string): Promise<{ awaitingApproval: boolean; changed: string[] }> {
    const registration = this.validate({ ...(document as Record<string, unknown>), clientId });
    return this.db.transaction(async (trx) => {
      const current = await this.seps.findWithSecret(clientId, trx);
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
   * change an active SeP asked for (it comes into force).
   */
  async approve(clientId: string, actor: string): Promise<{ status: SepStatus; applied: string[] }> {
    return this.db.transaction(async (trx) => {
      const current = await this.seps.find(clientId, trx);
      if (!current) throw new UnknownSep(clientId);
      if (current.status === 'pending') {
        await this.seps.setStatus(clientId, 'active', trx);
        await this.log.append(sepRegistrationApproved({ actor, sepId: clientId, group: current.group, allowedAttributes: current.allowedAttributes, minimumLoa: current.minimumLoa }), trx);
        return { status: 'active' as SepStatus, applied: [] };
      }
      if (current.status === 'active' && current.requestedRegistration) {
        // The technical settings the SeP may have changed since it asked stay as they are now.
        const next = { ...current.requestedRegistration, ...technicalOf(registrationOf(current)), clientId };
        const applied = changedFields(registrationOf(current), next);
        await this.seps.replaceRegistration(clientId, next, trx);
        await this.log.append(sepChangeApproved({ actor, sepId: clientId, applied, group: next.group, allowedAttributes: next.allowedAttributes, minimumLoa: next.minimumLoa }), trx);
        return { status: current.status, applied };
      }
      throw new NothingToDecide(`SeP ${clientId} has nothing waiting for approval`);
    });
  }

  /** An administrator refuses a pending registration (it is disabled) or a requested change (it is dropped). */
  async reject(clientId: string, actor: string, reason: string): Promise<{ status: SepStatus }> {
    return this.db.transaction(async (trx) => {
      const current = await this.seps.find(clientId, trx);
      if (!current) throw new UnknownSep(clientId);
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

  async rotateSecret(clientId: string, actor: string): Promise<string | undefined> {
    return this.db.transaction(async (trx) => {
      const secret = await this.seps.rotateSecret(clientId, trx);
      if (secret) await this.log.append(sepSecretRotated({ actor, sepId: clientId }), trx);
      return secret;
    });
  }
}
