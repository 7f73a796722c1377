import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AuditRecord } from '../../src/audit/assertion-log.ts';
import * as events from '../../src/audit/audit-events.ts';
import { canonicalJson } from '../../src/audit/chain.ts';

/**
 * Each constructor against the record the steps of a login or an administrative act wrote by hand
 * before there were constructors. The log is hash-chained: the same step must write the same record.
 */
const TABLE: Array<[string, AuditRecord, AuditRecord]> = [
  [
    'request_received',
    events.requestReceived({ sepId: 'sep-1', requestId: 'r1', scope: 'openid', prompt: undefined, acrValues: 'x', idpHint: undefined }),
    { event: 'request_received', outcome: 'success', sepId: 'sep-1', requestId: 'r1', detail: { scope: 'openid', prompt: undefined, acrValues: 'x', idpHint: undefined } },
  ],
  [
    'request_sent_upstream',
    events.requestSentUpstream({ sepId: 'sep-1', requestId: 'r1', means: 'mojeid', loa: 'substantial', upstreamRequestId: 'u1', forceAuthn: false }),
    { event: 'request_sent_upstream', outcome: 'success', sepId: 'sep-1', requestId: 'r1', means: 'mojeid', loa: 'substantial', detail: { upstreamRequestId: 'u1', forceAuthn: false } },
  ],
  [
    'response_received',
    events.responseReceived({ sepId: 'sep-1', requestId: 'r1', means: 'mojeid', loa: 'high', upstreamRequestId: 'u1', assertionId: 'a1', messageSha256: 'h', authority: 'idp' }),
    { event: 'response_received', outcome: 'success', sepId: 'sep-1', requestId: 'r1', means: 'mojeid', loa: 'high', detail: { upstreamRequestId: 'u1', assertionId: 'a1', messageSha256: 'h', authority: 'idp' } },
  ],
  [
    'identity_resolved, values not logged',
    events.identityResolved({ sepId: 'sep-1', requestId: 'r1', means: 'mojeid', loa: 'high', pseudonym: 'p', firstTime: true, attributesAsserted: ['A', 'B'] }),
    { event: 'identity_resolved', outcome: 'success', sepId: 'sep-1', requestId: 'r1', means: 'mojeid', loa: 'high', pseudonym: 'p', detail: { firstTime: true, attributesAsserted: ['A', 'B'] } },
  ],
  [
    'identity_resolved, values logged',
    events.identityResolved({ sepId: 's', requestId: null, means: 'm', loa: 'low', pseudonym: null, firstTime: false, attributesAsserted: [], values: { subject: 'sub', attributeValues: { A: ['1'] } } }),
    { event: 'identity_resolved', outcome: 'success', sepId: 's', requestId: null, means: 'm', loa: 'low', pseudonym: null, detail: { firstTime: false, attributesAsserted: [], subject: 'sub', attributeValues: { A: ['1'] } } },
  ],
  [
    'error at means selection',
    events.meansSelectionFailed({ sepId: 's', requestId: 'r', means: 'm', reason: 'means_metadata_unavailable' }),
    { event: 'error', outcome: 'failure', sepId: 's', requestId: 'r', means: 'm', reason: 'means_metadata_unavailable', detail: { stage: 'means_selection' } },
  ],
  [
    'error in an upstream response',
    events.upstreamResponseRefused({ sepId: null, requestId: null, means: 'm', reason: 'replayed_response', upstreamRequestId: null }),
    { event: 'error', outcome: 'failure', sepId: null, requestId: null, means: 'm', reason: 'replayed_response', detail: { stage: 'upstream_response', upstreamRequestId: null } },
  ],
  [
    'error in an upstream response, with the citizen\'s help-desk reference',
    events.upstreamResponseRefused({ sepId: 's', requestId: 'r', means: 'm', reason: 'signature_invalid', upstreamRequestId: 'u', reference: 'K7PM3QXD' }),
    { event: 'error', outcome: 'failure', sepId: 's', requestId: 'r', means: 'm', reason: 'signature_invalid', detail: { stage: 'upstream_response', upstreamRequestId: 'u', reference: 'K7PM3QXD' } },
  ],
  [
    'error: cancelled',
    events.loginCancelled({ sepId: 's', requestId: 'r', after: null }),
    { event: 'error', outcome: 'failure', sepId: 's', requestId: 'r', reason: 'cancelled_by_citizen', detail: {} },
  ],
  [
    'error: cancelled after a failure',
    events.loginCancelled({ sepId: 's', requestId: 'r', after: 'means_unavailable' }),
    { event: 'error', outcome: 'failure', sepId: 's', requestId: 'r', reason: 'cancelled_by_citizen', detail: { after: 'means_unavailable' } },
  ],
  [
    'error returned to a SeP',
    events.errorReturnedToSep({ sepId: null, requestId: null, error: 'x'.repeat(100), route: 'token', description: undefined }),
    { event: 'error', outcome: 'failure', sepId: null, requestId: null, reason: 'x'.repeat(80), detail: { route: 'token', description: undefined } },
  ],
  [
    'consent_given',
    events.consentGiven({ sepId: 's', requestId: 'r', pseudonym: 'p', kind: 'permanent', attributes: ['CurrentGivenName'], refusedBySepRegistration: [], grantId: 'g' }),
    { event: 'consent_given', outcome: 'success', sepId: 's', requestId: 'r', pseudonym: 'p', detail: { kind: 'permanent', attributes: ['CurrentGivenName'], refusedBySepRegistration: [], grantId: 'g' } },
  ],
  [
    'consent_refused',
    events.consentRefused({ sepId: 's', requestId: 'r', pseudonym: 'p', attributes: ['CurrentGivenName'] }),
    { event: 'consent_refused', outcome: 'failure', sepId: 's', requestId: 'r', pseudonym: 'p', reason: 'refused_by_citizen', detail: { attributes: ['CurrentGivenName'] } },
  ],
  [
    'token_issued, values logged',
    events.tokenIssued({ sepId: 's', requestId: null, means: null, loa: null, pseudonym: null, grantId: 'g', scope: undefined, attributes: [], attributeValues: {} }),
    { event: 'token_issued', outcome: 'success', sepId: 's', requestId: null, means: null, loa: null, pseudonym: null, detail: { grantId: 'g', scope: undefined, attributes: [], attributeValues: {} } },
  ],
  [
    'token_revoked',
    events.tokenRevoked({ sepId: 's', grantId: undefined }),
    { event: 'token_revoked', outcome: 'success', sepId: 's', detail: { grantId: undefined } },
  ],
  ['grant_revoked', events.grantRevoked({ sepId: null, grantId: 'g', route: 'end_session' }), { event: 'grant_revoked', outcome: 'success', sepId: null, detail: { grantId: 'g', route: 'end_session' } }],
  ['logout', events.logout({ sepId: 's' }), { event: 'logout', outcome: 'success', sepId: 's' }],
  [
    'audit_queried by an auditor',
    events.auditQueried({ via: 'api', operator: 'eva' }, { filter: { event: 'error' }, limit: 10, after: 0 }),
    { event: 'audit_queried', outcome: 'success', detail: { operator: 'eva', via: 'api', filter: { event: 'error' }, limit: 10, after: 0 } },
  ],
  [
    'audit_exported from the command line',
    events.auditExported({ via: 'cli' }, { filter: {}, format: 'csv' }),
    { event: 'audit_exported', outcome: 'success', detail: { actor: 'cli', via: 'cli', filter: {}, format: 'csv' } },
  ],
  [
    'sep_approved names the reviewed version and the group\'s organisation; applied only for a change',
    events.sepApproved({ actor: 'admin', sepId: 's', approved: 'registration', digest: 'd', applied: [], group: 'g', groupOrganisationId: '1', organisationId: '1', allowedAttributes: [], minimumLoa: 'low' }),
    { event: 'sep_approved', outcome: 'success', sepId: 's', detail: { actor: 'admin', approved: 'registration', digest: 'd', group: 'g', groupOrganisationId: '1', organisationId: '1', allowedAttributes: [], minimumLoa: 'low' } },
  ],
  [
    'sep_initial_token_issued keeps only the hash',
    events.sepInitialTokenIssued({ actor: 'admin', expiresAt: 5, uses: 1, token: 'secret' }),
    { event: 'sep_initial_token_issued', outcome: 'success', detail: { actor: 'admin', expiresAt: 5, uses: 1, tokenSha256: createHash('sha256').update('secret').digest('hex') } },
  ],
];

describe('audit event constructors', () => {
  for (const [name, built, expected] of TABLE) {
    it(`build the record a step wrote by hand: ${name}`, () => {
      assert.deepEqual(built, expected);
      assert.equal(canonicalJson(built), canonicalJson(expected));
    });
  }
});
