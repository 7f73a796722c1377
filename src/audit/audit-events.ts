import { createHash } from 'node:crypto';
import type { AttributeId } from '../domain/attributes.ts';
import type { Loa } from '../domain/loa.ts';
import type { SepEnvironment } from '../domain/sep-environment.ts';
import type { AuditRecord } from './assertion-log.ts';

/*
 * One constructor for each kind of record in the assertion log: a step says what happened, in named
 * and typed fields, and the record's shape is decided here, once. Each returns the record exactly as
 * it is hashed and stored, so a change here is a change of the log.
 *
 * Times in `detail` are given as the record shows them (ISO text, or milliseconds where it has
 * always held milliseconds). `actor` is who did an administrative act: an administrator's name,
 * `cli`, a SeP's client id, or Brána itself.
 */

// A login, step by step.

/** oidc-provider accepted a SeP's authorization request (a new one, not its resumption). */
export function requestReceived(r: { sepId: string; requestId: string | null; scope: unknown; prompt: unknown; acrValues: unknown; idpHint: unknown }): AuditRecord {
  return { event: 'request_received', outcome: 'success', sepId: r.sepId, requestId: r.requestId, detail: { scope: r.scope, prompt: r.prompt, acrValues: r.acrValues, idpHint: r.idpHint } };
}

/** A SAML SeP's AuthnRequest passed every check and began a login. */
export function samlRequestReceived(r: { sepId: string; requestId: string; binding: 'redirect' | 'post'; requestedLoa: Loa | null; forceAuthn: boolean; attributes: AttributeId[] }): AuditRecord {
  return {
    event: 'request_received',
    outcome: 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    detail: { protocol: 'saml', binding: r.binding, requestedLoa: r.requestedLoa, forceAuthn: r.forceAuthn, attributes: r.attributes },
  };
}

/**
 * An `error`: a SAML AuthnRequest was refused (the reason from a closed set). `sepId` only when the
 * Issuer is a registered SeP; `answered`: the SAML status of the error Response sent to its ACS, or
 * null when the citizen was shown a page instead.
 */
export function samlRequestRefused(r: { sepId: string | null; requestId: string | null; reason: string; answered: string | null; reference: string }): AuditRecord {
  return { event: 'error', outcome: 'failure', sepId: r.sepId, requestId: r.requestId, reason: r.reason, detail: { protocol: 'saml', answered: r.answered, reference: r.reference } };
}

/** The citizen was sent to an identity means with Brána's request. */
export function requestSentUpstream(r: { sepId: string; requestId: string | null; means: string; loa: Loa; upstreamRequestId: string; forceAuthn: boolean }): AuditRecord {
  return {
    event: 'request_sent_upstream',
    outcome: 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    means: r.means,
    loa: r.loa,
    detail: { upstreamRequestId: r.upstreamRequestId, forceAuthn: r.forceAuthn },
  };
}

/** The identity means answered, and the answer passed every check. */
export function responseReceived(r: {
  sepId: string;
  requestId: string | null;
  means: string;
  loa: Loa;
  upstreamRequestId: string;
  assertionId: string;
  messageSha256: string;
  authority: string;
}): AuditRecord {
  return {
    event: 'response_received',
    outcome: 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    means: r.means,
    loa: r.loa,
    detail: { upstreamRequestId: r.upstreamRequestId, assertionId: r.assertionId, messageSha256: r.messageSha256, authority: r.authority },
  };
}

/**
 * The answer was resolved to a person. `values` only where the operator turned value logging on for
 * the SeP: the subject and the attribute values as the means asserted them.
 */
export function identityResolved(r: {
  sepId: string;
  requestId: string | null;
  means: string;
  loa: Loa;
  pseudonym: string | null;
  firstTime: boolean;
  attributesAsserted: string[];
  values?: { subject: string; attributeValues: Record<string, unknown> };
}): AuditRecord {
  return {
    event: 'identity_resolved',
    outcome: 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    means: r.means,
    loa: r.loa,
    pseudonym: r.pseudonym,
    detail: { firstTime: r.firstTime, attributesAsserted: r.attributesAsserted, ...(r.values ? { subject: r.values.subject, attributeValues: r.values.attributeValues } : {}) },
  };
}

/** An `error`: the chosen means cannot be used now (its metadata expired or cannot be loaded). */
export function meansSelectionFailed(r: { sepId: string; requestId: string | null; means: string; reason: string }): AuditRecord {
  return { event: 'error', outcome: 'failure', sepId: r.sepId, requestId: r.requestId, means: r.means, reason: r.reason, detail: { stage: 'means_selection' } };
}

/**
 * An `error`: an identity means' answer was refused. The SeP and its request are known only if the
 * answer named a request of this means. `reference`: the code the citizen's page shows for the help desk.
 */
export function upstreamResponseRefused(r: { sepId: string | null; requestId: string | null; means: string; reason: string; upstreamRequestId: string | null; reference?: string; problem?: string }): AuditRecord {
  return {
    event: 'error',
    outcome: 'failure',
    sepId: r.sepId,
    requestId: r.requestId,
    means: r.means,
    reason: r.reason,
    detail: { stage: 'upstream_response', upstreamRequestId: r.upstreamRequestId, ...(r.reference ? { reference: r.reference } : {}), ...(r.problem ? { problem: r.problem.slice(0, 200) } : {}) },
  };
}

/** An `error`: the citizen gave up the login, possibly on an error page (`after`: that page's error code). */
export function loginCancelled(r: { sepId: string; requestId: string | null; after: string | null }): AuditRecord {
  return { event: 'error', outcome: 'failure', sepId: r.sepId, requestId: r.requestId, reason: 'cancelled_by_citizen', detail: r.after ? { after: r.after } : {} };
}

/** An `error` oidc-provider returned to a SeP on one of its routes; the OAuth error code is the reason. */
export function errorReturnedToSep(r: { sepId: string | null; requestId: string | null; error: string; route: string | undefined; description: string | undefined }): AuditRecord {
  return { event: 'error', outcome: 'failure', sepId: r.sepId, requestId: r.requestId, reason: r.error.slice(0, 80), detail: { route: r.route, description: r.description } };
}

/** The citizen agreed to release `attributes` (or the SeP asked for nothing that needs consent: `not-required`). */
export function consentGiven(r: {
  sepId: string;
  requestId: string | null;
  pseudonym: string;
  kind: 'one-time' | 'permanent' | 'not-required';
  attributes: AttributeId[];
  refusedBySepRegistration: AttributeId[];
  /** The OIDC grant; null for a SAML SeP (its Response carries what was granted). */
  grantId: string | null;
}): AuditRecord {
  return {
    event: 'consent_given',
    outcome: 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    pseudonym: r.pseudonym,
    detail: { kind: r.kind, attributes: r.attributes, refusedBySepRegistration: r.refusedBySepRegistration, grantId: r.grantId },
  };
}

export function consentRefused(r: { sepId: string; requestId: string | null; pseudonym: string; attributes: AttributeId[] }): AuditRecord {
  return { event: 'consent_refused', outcome: 'failure', sepId: r.sepId, requestId: r.requestId, pseudonym: r.pseudonym, reason: 'refused_by_citizen', detail: { attributes: r.attributes } };
}

/** A permanent consent was withdrawn. */
export function consentRevoked(r: { actor: string; sepId: string; pseudonym: string | null; consentId: number; attributes: AttributeId[] }): AuditRecord {
  return { event: 'consent_revoked', outcome: 'success', sepId: r.sepId, pseudonym: r.pseudonym, detail: { actor: r.actor, consentId: r.consentId, attributes: r.attributes } };
}

/**
 * An access token was issued, in the transaction that stores it. `attributeValues` only where the
 * operator turned value logging on for the SeP.
 */
export function tokenIssued(r: {
  sepId: string;
  requestId: string | null;
  means: string | null;
  loa: Loa | null;
  pseudonym: string | null;
  grantId: string | undefined;
  scope: string | undefined;
  attributes: AttributeId[];
  attributeValues?: Record<string, unknown>;
  /** A SAML SeP's Response: the protocol and the Assertion's ID (an OIDC record stays as it always was). */
  protocol?: 'saml';
  assertionId?: string;
}): AuditRecord {
  return {
    event: 'token_issued',
    outcome: 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    means: r.means,
    loa: r.loa,
    pseudonym: r.pseudonym,
    detail: {
      ...(r.protocol ? { protocol: r.protocol, assertionId: r.assertionId } : { grantId: r.grantId, scope: r.scope }),
      attributes: r.attributes,
      ...(r.attributeValues ? { attributeValues: r.attributeValues } : {}),
    },
  };
}

/** A SeP revoked an access token. */
export function tokenRevoked(r: { sepId: string | null; grantId: string | undefined }): AuditRecord {
  return { event: 'token_revoked', outcome: 'success', sepId: r.sepId, detail: { grantId: r.grantId } };
}

export function grantRevoked(r: { sepId: string | null; grantId: string; route: string | undefined }): AuditRecord {
  return { event: 'grant_revoked', outcome: 'success', sepId: r.sepId, detail: { grantId: r.grantId, route: r.route } };
}

export function logout(r: { sepId: string | null }): AuditRecord {
  return { event: 'logout', outcome: 'success', sepId: r.sepId };
}

/**
 * A SAML SeP's single logout, answered with `status`. `pseudonym`: the NameID the SeP named, when it
 * has the shape of one (Brána keeps no SAML session: nothing else of the citizen's is ended).
 */
export function samlLogout(r: { sepId: string; pseudonym: string | null; status: string; reason: string | null }): AuditRecord {
  return { event: 'logout', outcome: r.reason ? 'failure' : 'success', sepId: r.sepId, pseudonym: r.pseudonym, reason: r.reason, detail: { protocol: 'saml', status: r.status } };
}

/**
 * A SeP of the citizen's Brána session told of its end (SAML: a signed LogoutRequest at its
 * SingleLogoutService), after `initiatedBy` (a SeP's logout; null: the citizen at Brána) ended it.
 */
export function logoutPropagated(r: { sepId: string; pseudonym: string | null; protocol: 'saml' | 'oidc'; initiatedBy: string | null }): AuditRecord {
  return { event: 'logout', outcome: 'success', sepId: r.sepId, pseudonym: r.pseudonym, detail: { protocol: r.protocol, propagated: true, initiatedBy: r.initiatedBy } };
}

/** The citizen opened My account (Brána's own SeP), which asked for `attributes`. */
export function accountLogin(r: { sepId: string; requestId: string | null; means: string | null; loa: Loa | null; pseudonym: string; attributes: AttributeId[] }): AuditRecord {
  return { event: 'account_login', outcome: 'success', sepId: r.sepId, requestId: r.requestId, means: r.means, loa: r.loa, pseudonym: r.pseudonym, detail: { attributes: r.attributes } };
}

// A SeP's registration.

export function sepRegistered(r: {
  actor: string;
  sepId: string;
  status: string;
  group: string;
  organisationId: string;
  allowedAttributes: AttributeId[];
  minimumLoa: Loa;
  environment: SepEnvironment;
  /** A SAML SeP: its entity id (an OIDC SeP's record stays as it always was). */
  samlEntityId?: string;
}): AuditRecord {
  return {
    event: 'sep_registered',
    outcome: 'success',
    sepId: r.sepId,
    detail: {
      actor: r.actor,
      status: r.status,
      group: r.group,
      organisationId: r.organisationId,
      allowedAttributes: r.allowedAttributes,
      minimumLoa: r.minimumLoa,
      environment: r.environment,
      ...(r.samlEntityId ? { protocol: 'saml', samlEntityId: r.samlEntityId } : {}),
    },
  };
}

/** One setting of a SeP that only the operator changes (e.g. logging of attribute values). */
export function sepChanged(r: { actor: string; sepId: string; field: string; from: unknown; to: unknown }): AuditRecord {
  return { event: 'sep_changed', outcome: 'success', sepId: r.sepId, detail: { actor: r.actor, field: r.field, from: r.from, to: r.to } };
}

export function sepStatusChanged(r: { actor: string; sepId: string; from: string; to: string; reason: string | null }): AuditRecord {
  return { event: 'sep_status_changed', outcome: 'success', sepId: r.sepId, reason: r.reason, detail: { actor: r.actor, from: r.from, to: r.to } };
}

/** A new registration document, in force or (`awaitingApproval`) waiting for an administrator. */
export function sepUpdated(r: { actor: string; sepId: string; changed: string[]; awaitingApproval: boolean }): AuditRecord {
  return { event: 'sep_updated', outcome: 'success', sepId: r.sepId, detail: { actor: r.actor, changed: r.changed, awaitingApproval: r.awaitingApproval } };
}

/**
 * A `sep_approved`: a pending registration may log citizens in from now on, or the change an active
 * SeP asked for is in force (`applied`: the fields it changed). `digest` names the version the
 * administrator reviewed; `groupOrganisationId` is the organisation the group belongs to.
 */
export function sepApproved(r: {
  actor: string;
  sepId: string;
  approved: 'registration' | 'change';
  digest: string;
  applied: string[];
  group: string;
  groupOrganisationId: string;
  organisationId: string;
  allowedAttributes: AttributeId[];
  minimumLoa: Loa;
}): AuditRecord {
  return {
    event: 'sep_approved',
    outcome: 'success',
    sepId: r.sepId,
    detail: {
      actor: r.actor,
      approved: r.approved,
      digest: r.digest,
      ...(r.approved === 'change' ? { applied: r.applied } : {}),
      group: r.group,
      groupOrganisationId: r.groupOrganisationId,
      organisationId: r.organisationId,
      allowedAttributes: r.allowedAttributes,
      minimumLoa: r.minimumLoa,
    },
  };
}

/** A `sep_rejected`: a pending registration is refused (and disabled); `reason` is the administrator's. */
export function sepRegistrationRejected(r: { actor: string; sepId: string; reason: string }): AuditRecord {
  return { event: 'sep_rejected', outcome: 'success', sepId: r.sepId, reason: 'registration_rejected', detail: { actor: r.actor, rejected: 'registration', reason: r.reason } };
}

/** A `sep_rejected`: the change an active SeP asked for is dropped; `reason` is the administrator's. */
export function sepChangeRejected(r: { actor: string; sepId: string; reason: string }): AuditRecord {
  return { event: 'sep_rejected', outcome: 'success', sepId: r.sepId, reason: 'change_rejected', detail: { actor: r.actor, rejected: 'change', reason: r.reason } };
}

export function sepSecretRotated(r: { actor: string; sepId: string }): AuditRecord {
  return { event: 'sep_secret_rotated', outcome: 'success', sepId: r.sepId, detail: { actor: r.actor } };
}

/** An initial access token for self-registration. The log keeps only the token's hash, never the token. */
export function sepInitialTokenIssued(r: { actor: string; expiresAt: number; uses: number; token: string }): AuditRecord {
  return { event: 'sep_initial_token_issued', outcome: 'success', detail: { actor: r.actor, expiresAt: r.expiresAt, uses: r.uses, tokenSha256: createHash('sha256').update(r.token).digest('hex') } };
}

// A SeP's tile in the portal catalogue.

export function tileRequested(r: {
  actor: string;
  sepId: string;
  tileId: number;
  /** The SeP's pending tiles this request replaces. */
  supersedes: number[];
  completedLogins: number;
  portalUrl: string;
  link: string;
  logoSha256: string;
  logoType: string;
}): AuditRecord {
  return {
    event: 'tile_requested',
    outcome: 'success',
    sepId: r.sepId,
    detail: { actor: r.actor, tileId: r.tileId, supersedes: r.supersedes, completedLogins: r.completedLogins, portalUrl: r.portalUrl, link: r.link, logoSha256: r.logoSha256, logoType: r.logoType },
  };
}

export function tileApproved(r: { actor: string; sepId: string; tileId: number; replaces: number[]; logoSha256: string }): AuditRecord {
  return { event: 'tile_approved', outcome: 'success', sepId: r.sepId, detail: { actor: r.actor, tileId: r.tileId, replaces: r.replaces, logoSha256: r.logoSha256 } };
}

/** A pending tile refused (`to`: rejected) or a published one withdrawn (`to`: withdrawn); `reason` is the administrator's. */
export function tileRejected(r: { actor: string; sepId: string; tileId: number; from: string; to: 'rejected' | 'withdrawn'; reason: string }): AuditRecord {
  return { event: 'tile_rejected', outcome: 'success', sepId: r.sepId, reason: r.to, detail: { actor: r.actor, tileId: r.tileId, from: r.from, reason: r.reason } };
}

// Identity means' metadata.

/** A means' metadata was taken (written on an operator's refresh, or when a scheduled one changed it). `summary`: what the document holds. */
export function metadataRefreshed(r: {
  means: string;
  source: string;
  trigger: string;
  changed: boolean;
  sha256: string;
  validUntil: string | null;
  summary: Record<string, unknown>;
}): AuditRecord {
  return {
    event: 'metadata_refreshed',
    outcome: 'success',
    means: r.means,
    detail: { source: r.source, trigger: r.trigger, changed: r.changed, sha256: r.sha256, validUntil: r.validUntil, ...r.summary },
  };
}

/** A means' metadata could not be refreshed; `keptLastGood`: the means works on with the document it held. */
export function metadataRefreshFailed(r: { means: string; source: string; trigger: string; error: string; keptLastGood: boolean }): AuditRecord {
  return {
    event: 'metadata_refresh_failed',
    outcome: 'failure',
    means: r.means,
    reason: 'metadata_refresh_failed',
    detail: { source: r.source, trigger: r.trigger, error: r.error.slice(0, 500), keptLastGood: r.keptLastGood },
  };
}

// Keys and operators.

/** What a rotation changed in a key ring. */
export interface KeyRingChange {
  /** When the new keys start to sign (ISO). */
  signingFrom: string;
  added: Array<{ kid: string; alg: string }>;
  retiring: Array<{ kid: string; alg: string; publishedUntil: string }>;
  removed: string[];
}

/** A `keys_rotated`: an operator rotated the keys of `purpose`. */
export function keysRotated(r: { purpose: string; actor: string; change: KeyRingChange }): AuditRecord {
  return { event: 'keys_rotated', outcome: 'success', detail: { purpose: r.purpose, actor: r.actor, ...r.change } };
}

/** A `keys_rotated`: the assertion log's own signing key was generated on Brána's first start. */
export function auditKeysGenerated(r: { kid: string }): AuditRecord {
  return { event: 'keys_rotated', outcome: 'success', detail: { purpose: 'audit-signing', kid: r.kid, reason: 'generated on first start' } };
}

// Staff and their consoles.

/** How a staff member is named as the actor of what they do in a console. */
export function staffActor(name: string): string {
  return `staff:${name}`;
}

/**
 * A role was granted to (or revoked from) a person. The record names them by the name the role
 * was granted under and by their pseudonym in the consoles' SeP group, never by their register id:
 * the log holds no identifier of a person that is not a pseudonym.
 */
export function staffGranted(r: { actor: string; name: string; role: string; pseudonym: string }): AuditRecord {
  return { event: 'staff_granted', outcome: 'success', pseudonym: r.pseudonym, detail: { actor: r.actor, name: r.name, role: r.role } };
}

export function staffRevoked(r: { actor: string; name: string; role: string; pseudonym: string }): AuditRecord {
  return { event: 'staff_revoked', outcome: 'success', pseudonym: r.pseudonym, detail: { actor: r.actor, name: r.name, role: r.role } };
}

/** A person signed in to the consoles (Brána's own SeP `brana-console`): with their roles, or refused for having none. */
export function consoleLogin(r: { sepId: string; requestId: string | null; means: string | null; loa: string | null; pseudonym: string; staff: { name: string; roles: string[] } | null; refusal?: 'no_staff_role' | 'loa_too_low' }): AuditRecord {
  return {
    event: 'console_login',
    outcome: r.refusal ? 'failure' : 'success',
    sepId: r.sepId,
    requestId: r.requestId,
    means: r.means,
    loa: r.loa,
    pseudonym: r.pseudonym,
    reason: r.refusal ?? null,
    detail: r.staff ? { actor: staffActor(r.staff.name), roles: r.staff.roles } : {},
  };
}

export function operatorAdded(r: { actor: string; role: string; name: string }): AuditRecord {
  return { event: 'operator_added', outcome: 'success', detail: { actor: r.actor, role: r.role, name: r.name } };
}

/** Every active credential of `name` was revoked (`count` of them). */
export function operatorRevoked(r: { actor: string; name: string; count: number }): AuditRecord {
  return { event: 'operator_revoked', outcome: 'success', detail: { actor: r.actor, name: r.name, count: r.count } };
}

// The assertion log itself: nobody reads it without leaving a trace.

/**
 * Who reads the log: the command line, an auditor's credential by name through the API, or an
 * auditor signed in to the console (by the name their role was granted under), who states why
 * when looking for a person.
 */
export type AuditReader = { via: 'cli' } | { via: 'api'; operator: string } | { via: 'console'; staff: string; reason?: string };

function readerOf(reader: AuditReader): Record<string, unknown> {
  if (reader.via === 'cli') return { actor: 'cli', via: 'cli' };
  if (reader.via === 'api') return { operator: reader.operator, via: 'api' };
  return { actor: staffActor(reader.staff), via: 'console', ...(reader.reason !== undefined ? { reason: reader.reason } : {}) };
}

/** What was asked of the log: records matching `filter` (paged by `limit` and `after`), or its checkpoints, or its verification. */
export interface AuditQuery {
  filter?: Record<string, unknown>;
  limit?: number;
  after?: number;
  what?: 'checkpoints' | 'verify' | 'record';
  /** The record looked at (`what: 'record'`). */
  seq?: number;
}

export function auditQueried(reader: AuditReader, query: AuditQuery): AuditRecord {
  return { event: 'audit_queried', outcome: 'success', detail: { ...readerOf(reader), ...query } };
}

export function auditExported(reader: AuditReader, exported: { filter: Record<string, unknown>; format: string }): AuditRecord {
  return { event: 'audit_exported', outcome: 'success', detail: { ...readerOf(reader), filter: exported.filter, format: exported.format } };
}

/** An `audit_queried` refused: an operator without the auditor role tried the auditors' API. */
export function auditAccessForbidden(r: { operator: string; role: string; path: string }): AuditRecord {
  return { event: 'audit_queried', outcome: 'failure', reason: 'forbidden_role', detail: { operator: r.operator, role: r.role, path: r.path } };
}

/** Records up to `throughSeq` were purged after the retention period; times are ISO. */
export function auditPurged(r: { actor: string; throughSeq: number; records: number; checkpointAt: string; retentionDays: number; cutoff: string }): AuditRecord {
  return {
    event: 'audit_purged',
    outcome: 'success',
    detail: { actor: r.actor, throughSeq: r.throughSeq, records: r.records, checkpointAt: r.checkpointAt, retentionDays: r.retentionDays, cutoff: r.cutoff },
  };
}
