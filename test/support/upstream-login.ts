import { inflateRawSync } from 'node:zlib';
import { startLogin, type AuthorizationOptions, type Citizen, type Sep } from './login-driver.ts';

/** A login that Brána has handed to an identity means: what the IdP (or an attacker) answers. */
export interface UpstreamLogin {
  citizen: Citizen;
  sep: Sep;
  means: string;
  /** The ID of Brána's AuthnRequest, read from the request itself. */
  requestId: string;
  codeVerifier: string;
  state: string;
  nonce: string;
  /** Brána's ACS for the means. */
  acs: string;
}

/**
 * A citizen starts a login at a SeP and Brána sends them to `means` (named by idp_hint). The
 * AuthnRequest is read from the HTTP-Redirect binding as an identity provider would read it:
 * base64, raw DEFLATE, XML — without any of Brána's code.
 */
export async function startUpstreamLogin(origin: string, sep: Sep, means: string, options: AuthorizationOptions = {}, citizen?: Citizen): Promise<UpstreamLogin> {
  const started = await startLogin(origin, sep, { scope: 'openid profile', ...options, idpHint: means }, citizen);
  const location = started.response.headers.location as string | undefined;
  if (started.response.status !== 303 || !location) throw new Error(`Brána did not send the citizen to ${means}: ${started.response.status} ${started.response.text.slice(0, 200)}`);
  const samlRequest = new URL(location, origin).searchParams.get('SAMLRequest');
  if (!samlRequest) throw new Error(`no SAMLRequest in ${location}`);
  const xml = inflateRawSync(Buffer.from(samlRequest, 'base64')).toString('utf8');
  const requestId = /<(?:\w+:)?AuthnRequest\b[^>]*\sID="([^"]+)"/.exec(xml)?.[1];
  if (!requestId) throw new Error('no ID in the AuthnRequest');
  return {
    citizen: started.citizen,
    sep,
    means,
    requestId,
    codeVerifier: started.codeVerifier,
    state: started.state,
    nonce: started.nonce,
    acs: `${origin}/saml/${means}/acs`,
  };
}
