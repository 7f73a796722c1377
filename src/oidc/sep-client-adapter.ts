import Provider, { errors, type Adapter, type AdapterPayload } from 'oidc-provider';
import type { SepEnvironment } from '../domain/sep-environment.ts';
import { documentFromMetadata } from '../sep/registration-metadata.ts';
import { RegistrationRejected, type SepRegistration } from '../sep/sep-registration.ts';
import type { SepStore } from '../sep/sep-store.ts';
import { clientMetadataOf } from './client-metadata.ts';

/** oidc-provider's routes of registration management (RFC 7592): where a pending SeP is a client. */
const MANAGEMENT_ROUTES = new Set(['client', 'client_update', 'client_delete']);
const SELF_SERVICE = 'self-service (registration API)';

export interface SepClientAdapterOptions {
  seps: SepStore;
  registration: SepRegistration;
  publicUrl: URL;
  environment: SepEnvironment;
}

/**
 * oidc-provider's clients are the SePs in Brána's store, and its registration endpoints write there:
 * - an active SeP of this instance's environment is a client;
 * - a pending SeP is a client only to read, update or withdraw its registration; anywhere else (the
 *   authorization, token, userinfo… endpoints) it is refused with `unauthorized_client`, before
 *   Brána would redirect to a return URL no administrator has reviewed;
 * - a disabled SeP, one of the other environment, or a SAML SeP does not exist.
 * (oidc-provider caches validation by content, so an unchanged registration is not revalidated.)
 */
export class SepClientAdapter implements Adapter {
  private readonly options: SepClientAdapterOptions;

  constructor(options: SepClientAdapterOptions) {
    this.options = options;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const found = await this.options.seps.findWithSecret(id);
    // A SAML SeP is no OpenID client: it logs citizens in through /saml-idp only.
    if (!found || found.sep.status === 'disabled' || found.sep.environment !== this.options.environment || found.sep.protocol !== 'oidc') return undefined;
    if (found.sep.status === 'pending' && !MANAGEMENT_ROUTES.has(Provider.ctx?.oidc?.route ?? '')) {
      throw new errors.UnauthorizedClient('the SeP registration is waiting for approval by an administrator of Brána');
    }
    return clientMetadataOf(found.sep, found.clientSecret, this.options.publicUrl) as AdapterPayload;
  }

  /** A registration (RFC 7591) or a SeP's update of it (RFC 7592), already checked by the registration policy. */
  async upsert(id: string, payload: AdapterPayload): Promise<void> {
    const { document, problems } = documentFromMetadata(payload as Record<string, unknown>);
    if (problems.length) throw new errors.InvalidClientMetadata(problems.join('; '));
    const secret = typeof payload.client_secret === 'string' ? payload.client_secret : undefined;
    try {
      if (await this.options.seps.find(id)) await this.options.registration.updateBySep(id, document, SELF_SERVICE, secret);
      else await this.options.registration.register({ ...document, clientId: id }, 'pending', SELF_SERVICE, { clientSecret: secret });
    } catch (err) {
      if (err instanceof RegistrationRejected) throw new errors.InvalidClientMetadata(err.problems.join('; '));
      throw err;
    }
  }

  /** A SeP withdrawing its registration (RFC 7592 delete): it is disabled, its history stays. */
  async destroy(id: string): Promise<void> {
    await this.options.registration.setStatus(id, 'disabled', SELF_SERVICE, 'withdrawn_by_sep');
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async revokeByGrantId(): Promise<void> {}
}
