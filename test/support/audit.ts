import type { Broker } from '../../src/broker.ts';
import type { StoredAuditRecord } from '../../src/audit/assertion-log.ts';
import { requestIdOf } from '../../src/audit/request-id.ts';
import { createHash } from 'node:crypto';

/** The assertion log records of one login, found by its PKCE verifier as the SeP would. */
export async function recordsOfLogin(broker: Broker, codeVerifier: string): Promise<StoredAuditRecord[]> {
  const requestId = requestIdOf(createHash('sha256').update(codeVerifier).digest('base64url'));
  return broker.log.query({ requestId: requestId! });
}

export async function codesIssuedTo(broker: Broker, clientId: string): Promise<number> {
  const rows = (await broker.db('oidc_model').where({ model: 'AuthorizationCode' }).select('payload')) as Array<{ payload: string }>;
  return rows.filter((row) => (JSON.parse(row.payload) as { clientId?: string }).clientId === clientId).length;
}
