import { createHash } from 'node:crypto';
import type { IdentityMeansRegistry } from '../upstream/identity-means-registry.ts';
import type { AssertionLog } from './assertion-log.ts';

/** The SHA-256 fingerprint of a certificate (PEM or bare base64 DER), as `openssl x509 -fingerprint -sha256` prints it. */
function fingerprint(certificate: string): string {
  const der = Buffer.from(certificate.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

/**
 * One `metadata_refreshed` record per identity means for the metadata now in use: which entity,
 * from where, and the fingerprints of the signing certificates Brána trusts for it from now on.
 */
export async function recordMetadataInUse(log: AssertionLog, registry: IdentityMeansRegistry, actor: string): Promise<void> {
  for (const id of registry.ids()) {
    const entry = registry.get(id)!;
    const metadata = entry.metadata.current();
    await log.append({
      event: 'metadata_refreshed',
      outcome: 'success',
      means: id,
      detail: {
        actor,
        location: entry.metadata.location,
        entityId: metadata.entityId,
        signingCertificates: metadata.signingCertificates.map(fingerprint),
        ...(metadata.validUntil ? { validUntil: metadata.validUntil.toISOString() } : {}),
      },
    });
  }
}
