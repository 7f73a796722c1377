import { createHash, createHmac, randomBytes } from 'node:crypto';
import * as client from 'openid-client';
import { isAttributeId, type AttributeId } from '../../domain/attributes.ts';
import { LOA_LEVELS, loaFromUri, loaRank, loaUri, weakestLoa, type Loa } from '../../domain/loa.ts';
import type { OidcMeans } from '../../means/identity-means.ts';
import { CLOCK_SKEW_MS, UpstreamRejected, type BrowserHandoff, type CorrelatedAnswer, type ExpectedRequest, type UpstreamAdapter, type UpstreamIdentity, type UpstreamLoginStart } from '../contract.ts';
import { MetadataUnavailable, type MetadataSource } from '../metadata/metadata-source.ts';
import type { OpenIdProviderMetadata } from './discovery.ts';

/** Clock tolerance for ID token times, as for SAML assertions. */
const CLOCK_TOLERANCE_SECONDS = CLOCK_SKEW_MS / 1000;

export interface OidcAdapterSettings {
  means: OidcMeans;
  issuer: string;
  clientId: string;
  clientSecret: string;
  discovery: MetadataSource<OpenIdProviderMetadata>;
  publicUrl: URL;
  /** Derives the PKCE verifier and nonce of a login from its state, so neither is stored. */
  stateKey: Buffer;
  /** Development mode: an issuer on a loopback host may use plain http. */
  allowLoopbackHttp: boolean;
}

const PROVIDER_ERROR = /^[a-z_]{1,40}$/;

/** The callback's query, named by its state. */
export interface OidcAnswer extends CorrelatedAnswer {
  query: Record<string, unknown>;
}

/**
 * An OpenID Connect identity means (Bank iD in real life) behind the same contract as SAML: code flow
 * with PKCE S256, state and nonce, ID token checks by openid-client, and the issuer checked in the
 * authorization response (RFC 9207) and the ID token against mix-up. The login is found again from
 * `state`, which the server records like a SAML request id.
 */
export class OidcAdapter implements UpstreamAdapter<OidcAnswer> {
  readonly means: OidcMeans;
  readonly redirectUri: string;
  private readonly settings: OidcAdapterSettings;
  private configuration: { version: number; config: client.Configuration } | undefined;

  constructor(settings: OidcAdapterSettings) {
    this.settings = settings;
    this.means = settings.means;
    this.redirectUri = new URL(`/oidc/${settings.means.id}/callback`, settings.publicUrl).href;
  }

  /** openid-client's view of the provider, rebuilt when the discovery document changes (its key cache with it). */
  private config(): client.Configuration {
    const { discovery } = this.settings;
    const metadata = discovery.current();
    if (this.configuration?.version !== discovery.currentVersion()) {
      const config = new client.Configuration(
        metadata as client.ServerMetadata,
        this.settings.clientId,
        { redirect_uris: [this.redirectUri], response_types: ['code'], id_token_signed_response_alg: 'RS256', [client.clockTolerance]: CLOCK_TOLERANCE_SECONDS },
        client.ClientSecretBasic(this.settings.clientSecret),
      );
      config.timeout = this.means.oidc.timeoutSeconds;
      if (this.settings.allowLoopbackHttp && new URL(metadata.issuer).protocol === 'http:') client.allowInsecureRequests(config);
      // openid-client trusts an ID token from the token endpoint on the strength of TLS alone and does
      // not check its signature. Brána re-asserts this identity to SePs and logs the token's hash as
      // evidence, as it demands signed SAML assertions: the bank's signature is checked against its
      // published keys (found by the security suite: a payload changed under a valid signature, or
      // one signed with a stranger's key, was accepted).
      client.enableNonRepudiationChecks(config);
      this.configuration = { version: discovery.currentVersion(), config };
    }
    return this.configuration.config;
  }

  private derived(purpose: 'pkce' | 'nonce', state: string): string {
    return createHmac('sha256', this.settings.stateKey).update(`${purpose}\0${this.means.id}\0${state}`).digest('base64url');
  }

  /** The acr values that satisfy a minimum, strongest first, up to what this means is registered for. */
  private acrValues(minimum: Loa): string {
    const acceptable = LOA_LEVELS.filter((loa) => loaRank(loa) >= loaRank(minimum) && loaRank(loa) <= loaRank(this.means.loa));
    return (acceptable.length ? acceptable : [minimum]).map(loaUri).reverse().join(' ');
  }

  async startLogin(login: UpstreamLoginStart): Promise<BrowserHandoff> {
    const config = this.config();
    const state = randomBytes(32).toString('base64url');
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: this.means.oidc.scope,
      state,
      nonce: this.derived('nonce', state),
      code_challenge: await client.calculatePKCECodeChallenge(this.derived('pkce', state)),
      code_challenge_method: 'S256',
      acr_values: this.acrValues(login.minimumLoa),
      // ForceAuthn: the provider must authenticate the citizen now, not reuse its own session.
      ...(login.forceAuthn ? { prompt: 'login', max_age: '0' } : {}),
    });
    return { kind: 'redirect', url: url.href, requestId: state };
  }

  /** The LoA an `acr` value stands for: an eIDAS URI, or a value the means file maps. */
  private loaOf(acr: unknown): Loa | undefined {
    if (typeof acr !== 'string') return undefined;
    return loaFromUri(acr) ?? this.means.oidc.acr[acr];
  }

  correlate(query: Record<string, unknown>): OidcAnswer {
    const state = query.state;
    if (typeof state !== 'string' || !state) throw new UpstreamRejected('state_missing', 'invalid_response');
    // A state this means never issued (or issued by another means' login) starts nothing.
    return { requestId: state, unknownRequestReason: 'unknown_request', query };
  }

  async handleAnswer(answer: OidcAnswer, expected: ExpectedRequest): Promise<UpstreamIdentity> {
    const { query } = answer;
    const text = (name: string) => (typeof query[name] === 'string' ? (query[name] as string) : undefined);
    const state = expected.requestId;
    if (answer.requestId !== state || expected.means !== this.means.id) throw new UpstreamRejected('unknown_request', 'unknown_request');

    let config: client.Configuration;
    try {
      config = this.config();
    } catch (err) {
      if (err instanceof MetadataUnavailable) throw new UpstreamRejected('metadata_unavailable', 'means_unavailable', err.message);
      throw err;
    }
    const metadata = config.serverMetadata();
    const iss = text('iss');
    if (iss !== undefined && iss !== metadata.issuer) throw new UpstreamRejected('issuer_mismatch', 'invalid_response');
    if (iss === undefined && metadata.authorization_response_iss_parameter_supported) throw new UpstreamRejected('issuer_missing', 'invalid_response');

    const error = text('error');
    if (error !== undefined) {
      const code = PROVIDER_ERROR.test(error) ? error : 'unknown';
      throw new UpstreamRejected(`oidc_${code}`, code === 'access_denied' ? 'cancelled' : code === 'temporarily_unavailable' ? 'means_unreachable' : 'authn_failed');
    }

    const callback = new URL(this.redirectUri);
    for (const [name, value] of Object.entries(query)) if (typeof value === 'string') callback.searchParams.set(name, value);
    const tokens = await this.exchange(config, callback, state);
    const idToken = tokens.id_token!;
    const claims = tokens.claims();
    if (!claims) throw new UpstreamRejected('id_token_missing', 'invalid_response');
    // openid-client refuses an iat too far in the past, not one in the future: beyond the tolerance it
    // is a lie (as a SAML assertion issued in the future is), and so is an authentication not yet made.
    const latest = Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS;
    if (claims.iat > latest || (typeof claims.auth_time === 'number' && claims.auth_time > latest)) {
      throw new UpstreamRejected('id_token_invalid', 'invalid_response', 'issued in the future');
    }
    if (typeof claims.acr !== 'string' || !claims.acr) throw new UpstreamRejected('loa_missing', 'invalid_response');
    const asserted = this.loaOf(claims.acr);
    // Neither an eIDAS URI nor a value the means file maps: not a level Brána can vouch for.
    if (!asserted) throw new UpstreamRejected('loa_unmapped', 'invalid_response');

    const source: Record<string, unknown> = { ...claims };
    if (this.means.oidc.userinfo) {
      const info = await this.call(() => client.fetchUserInfo(config, tokens.access_token, claims.sub), 'userinfo');
      Object.assign(source, info);
    }
    const attributes = this.attributesOf(source);
    const authTime = typeof claims.auth_time === 'number' ? claims.auth_time : undefined;
    return {
      means: this.means.id,
      authority: metadata.issuer,
      // A means can never produce more than it is registered for, whatever it signs.
      acr: weakestLoa(asserted, this.means.loa),
      // With ForceAuthn the time of authentication must be stated; Brána then checks it is fresh.
      instant: new Date((authTime ?? (expected.forceAuthn ? 0 : claims.iat)) * 1000),
      subject: claims.sub,
      attributes,
      messageHash: createHash('sha256').update(idToken).digest('hex'),
      assertionId: typeof claims.jti === 'string' && claims.jti ? claims.jti.slice(0, 200) : createHash('sha256').update(idToken).digest('hex'),
      assertionExpiresAt: new Date(claims.exp * 1000),
      requestId: state,
    };
  }

  private attributesOf(source: Record<string, unknown>): Partial<Record<AttributeId, string[]>> {
    const attributes: Partial<Record<AttributeId, string[]>> = {};
    for (const [id, claim] of Object.entries(this.means.oidc.claims)) {
      const value = source[claim];
      if (!isAttributeId(id) || value === undefined || value === null) continue;
      if (typeof value === 'string') attributes[id] = [value];
      else if (typeof value === 'number' || typeof value === 'boolean') attributes[id] = [String(value)];
    }
    return attributes;
  }

  private exchange(config: client.Configuration, callback: URL, state: string) {
    return this.call(
      () =>
        client.authorizationCodeGrant(config, callback, {
          pkceCodeVerifier: this.derived('pkce', state),
          expectedState: state,
          expectedNonce: this.derived('nonce', state),
          idTokenExpected: true,
        }),
      'token',
    );
  }

  /** Runs one back-channel call, turning what can go wrong into a refusal with a stable reason. */
  private async call<T>(action: () => Promise<T>, step: 'token' | 'userinfo'): Promise<T> {
    try {
      return await action();
    } catch (err) {
      throw refusalOf(err, step);
    }
  }
}

function refusalOf(err: unknown, step: 'token' | 'userinfo'): UpstreamRejected {
  const message = (err as Error).message;
  if (err instanceof client.ResponseBodyError) {
    const code = PROVIDER_ERROR.test(err.error) ? err.error : 'error';
    return new UpstreamRejected(`${step}_${code}`, err.status >= 500 ? 'means_unreachable' : 'invalid_response', err.error_description ?? message);
  }
  if (err instanceof client.AuthorizationResponseError) return new UpstreamRejected('authorization_response_invalid', 'invalid_response', message);
  if (err instanceof client.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT') return new UpstreamRejected('upstream_timeout', 'means_unreachable', `${step}: ${message}`);
    if (err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || err.code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
      return new UpstreamRejected('upstream_http_error', 'means_unreachable', `${step}: ${message}`);
    }
    return new UpstreamRejected(step === 'token' ? 'id_token_invalid' : 'userinfo_invalid', 'invalid_response', `${err.code ?? ''} ${message}`.trim());
  }
  // fetch() reports a refused connection, a DNS failure or a reset as a TypeError.
  if (err instanceof TypeError && /fetch failed|network|ECONN|ENOTFOUND|socket/i.test(`${message} ${String((err as { cause?: unknown }).cause ?? '')}`)) {
    return new UpstreamRejected('upstream_unreachable', 'means_unreachable', `${step}: ${message}`);
  }
  if (err instanceof DOMException && (err.name === 'TimeoutError' || err.name === 'AbortError')) return new UpstreamRejected('upstream_timeout', 'means_unreachable', `${step}: ${message}`);
  return new UpstreamRejected(`${step}_failed`, 'invalid_response', message);
}
