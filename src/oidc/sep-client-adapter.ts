import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { SepStore } from '../sep/sep-store.ts';
import { clientMetadataOf } from './client-metadata.ts';

/**
 * oidc-provider's clients are the SePs in Brána's store: only active registrations are clients, so a
 * disabled or pending SeP is refused at once. (oidc-provider caches validation by content, so an
 * unchanged registration is not revalidated on every request.)
 */
export class SepClientAdapter implements Adapter {
  private readonly seps: SepStore;
  private readonly publicUrl: URL;

  constructor(seps: SepStore, publicUrl: URL) {
    this.seps = seps;
    this.publicUrl = publicUrl;
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const found = await this.seps.findWithSecret(id);
    if (!found || found.sep.status !== 'active') return undefined;
    return clientMetadataOf(found.sep, found.clientSecret, this.publicUrl) as AdapterPayload;
  }

  async upsert(): Promise<void> {
    throw new Error('SeP registrations are written through the SeP store, not through oidc-provider');
  }

  async findByUid(): Promise<undefined> {
    return undefined;
  }

  async findByUserCode(): Promise<undefined> {
    return undefined;
  }

  async consume(): Promise<void> {}

  async destroy(): Promise<void> {
    throw new Error('SeP registrations are removed through the SeP store');
  }

  async revokeByGrantId(): Promise<void> {}
}
