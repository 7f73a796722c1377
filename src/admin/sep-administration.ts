import { X509Certificate } from 'node:crypto';
import { changedFields, type SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import type { SamlSepRecord, SamlSepStore } from '../sep/saml-service-provider.ts';
import { registrationOf, type Sep } from '../sep/sep.ts';

/** What an operator reviews of a SAML SeP's metadata: never the certificates themselves, their expiry. */
function samlReviewOf(record: SamlSepRecord): Record<string, unknown> {
  const sp = record.serviceProvider;
  const expiry = (pem: string) => new X509Certificate(pem).validTo;
  return {
    entityId: sp.entityId,
    assertionConsumerServices: sp.assertionConsumerServices,
    singleLogout: sp.singleLogout,
    signingCertificatesValidTo: sp.signingCertificates.map(expiry),
    encryptionCertificateValidTo: sp.encryptionCertificate ? expiry(sp.encryptionCertificate) : null,
    assertionEncryption: sp.assertionEncryption ?? null,
    metadataSource: record.metadataSource,
    metadataUpdatedAt: new Date(record.updatedAt).toISOString(),
  };
}

/**
 * A SeP as an administrator reviews it: the registration in force, the change it asked for (and
 * which fields that change touches), who else is in its SeP group — a SeP in a group gets the
 * same pseudonyms as every other member, so a group shared across organisations links people —
 * and `approval`: the digest of the version under review (an approval names it, and is refused if
 * the SeP changed its request since), the organisation that owns the group, and what would stop it.
 */
export async function reviewOf(seps: SepStore, registration: SepRegistration, sep: Sep, samlSeps?: SamlSepStore): Promise<Record<string, unknown>> {
  const members = (await seps.listGroup(sep.group)).filter((other) => other.clientId !== sep.clientId);
  const requestedGroup = sep.requestedRegistration?.group;
  const requestedMembers = requestedGroup && requestedGroup !== sep.group ? (await seps.listGroup(requestedGroup)).filter((other) => other.clientId !== sep.clientId) : [];
  const describe = (other: Sep) => ({ clientId: other.clientId, organisation: other.organisation, status: other.status });
  const { requestedRegistration, ...inForce } = sep;
  const approval = await registration.approvalReview(sep);
  // A SAML SeP: what its SP metadata registered (entity id, endpoints, certificates' expiry).
  const saml = sep.protocol === 'saml' && samlSeps ? await samlSeps.find(sep.clientId) : undefined;
  return {
    ...inForce,
    ...(saml ? { saml: samlReviewOf(saml) } : {}),
    createdAt: new Date(sep.createdAt).toISOString(),
    updatedAt: new Date(sep.updatedAt).toISOString(),
    groupMembers: members.map(describe),
    requestedChange: requestedRegistration
      ? { changed: changedFields(registrationOf(sep), { ...requestedRegistration, clientId: sep.clientId }), registration: requestedRegistration, groupMembers: requestedMembers.map(describe) }
      : null,
    approval: approval
      ? {
          awaiting: approval.awaiting,
          digest: approval.digest,
          group: approval.group,
          groupOwner: approval.groupOwner ? { organisation: approval.groupOwner.organisation, establishedBy: approval.groupOwner.establishedBy, establishedAt: new Date(approval.groupOwner.establishedAt).toISOString() } : null,
          // A group nobody owns yet becomes the declared organisation's by this approval: check the IČO.
          establishesGroup: approval.groupOwner === null,
          problems: approval.problems,
        }
      : null,
  };
}
