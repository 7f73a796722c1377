import supertest from 'supertest';
import type { TestBroker } from './test-broker.ts';

let counter = 0;

/**
 * These suites register many SePs from one address: they test registration, not the rate limit on
 * /reg (the security suite tests that), so their broker allows more than a real one.
 */
export const MANY_REGISTRATIONS = { BRANA_RATE_LIMIT_REGISTRATION: '100000' };

/** An administrator's bearer credential on this broker. */
export async function adminToken(brana: TestBroker): Promise<string> {
  counter += 1;
  return (await brana.broker.operators.issue('admin', `admin ${process.pid} ${counter}`)).token;
}

/** An initial access token, handed out by an administrator through the admin API. */
export async function initialAccessToken(brana: TestBroker, admin?: string): Promise<string> {
  const response = await supertest(brana.url.origin)
    .post('/admin/initial-access-tokens')
    .set('Authorization', `Bearer ${admin ?? (await adminToken(brana))}`)
    .send({ days: 1 });
  if (response.status !== 201) throw new Error(`initial access token: ${response.status} ${response.text}`);
  return response.body.initial_access_token as string;
}

/** What a municipal portal sends to Brána's registration endpoint (RFC 7591 metadata). */
export function registrationMetadata(overrides: Record<string, unknown> = {}, brana: Record<string, unknown> = {}): Record<string, unknown> {
  counter += 1;
  return {
    redirect_uris: [`https://portal${counter}.hradeckralove.example.cz/callback`],
    post_logout_redirect_uris: [`https://portal${counter}.hradeckralove.example.cz/`],
    brana_registration: {
      name: { cs: `Portál občana Hradce Králové ${counter}`, en: `Hradec Králové citizen portal ${counter}` },
      organisation: { id: '00268810', name: 'Statutární město Hradec Králové' },
      description: 'Elektronické podání a přehled poplatků.',
      infoUrl: 'https://www.hradeckralove.org/',
      group: `hk-self-service-${process.pid}`,
      spType: 'public',
      minimumLoa: 'substantial',
      allowedAttributes: ['CurrentGivenName', 'CurrentFamilyName'],
      ...brana,
    },
    ...overrides,
  };
}

export interface SelfRegistered {
  clientId: string;
  clientSecret: string;
  registrationAccessToken: string;
  registrationClientUri: string;
  body: Record<string, unknown>;
}

export async function selfRegister(brana: TestBroker, metadata: Record<string, unknown>, token?: string): Promise<SelfRegistered> {
  const response = await supertest(brana.url.origin)
    .post('/reg')
    .set('Authorization', `Bearer ${token ?? (await initialAccessToken(brana))}`)
    .send(metadata);
  if (response.status !== 201) throw new Error(`registration: ${response.status} ${response.text}`);
  const body = response.body as Record<string, unknown>;
  return {
    clientId: body.client_id as string,
    clientSecret: body.client_secret as string,
    registrationAccessToken: body.registration_access_token as string,
    registrationClientUri: body.registration_client_uri as string,
    body,
  };
}

/**
 * An administrator reviews a SeP (`GET /admin/seps/:id`) and approves exactly the version reviewed,
 * naming its digest, as the admin API requires.
 */
export async function reviewAndApprove(origin: string, admin: string, clientId: string): Promise<supertest.Response> {
  const review = await supertest(origin).get(`/admin/seps/${clientId}`).set('Authorization', `Bearer ${admin}`);
  const digest = (review.body as { approval?: { digest?: string } | null }).approval?.digest ?? '0'.repeat(64);
  return supertest(origin).post(`/admin/seps/${clientId}/approve`).set('Authorization', `Bearer ${admin}`).send({ digest });
}
