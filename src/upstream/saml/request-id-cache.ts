import { AsyncLocalStorage } from 'node:async_hooks';
import type { CacheItem, CacheProvider } from '@node-saml/node-saml';
import type { UpstreamLoginStart } from '../contract.ts';
import type { UpstreamRequest, UpstreamRequestStore } from '../upstream-request-store.ts';

/**
 * node-saml records each AuthnRequest id through its CacheProvider while it builds the request, and
 * checks InResponseTo through it when the answer arrives. Ours writes to the database, so any node can
 * take the answer. The login the request belongs to reaches `saveAsync` through AsyncLocalStorage,
 * because node-saml generates the id inside one call and offers no other way to pass it context.
 */
export const loginBeingStarted = new AsyncLocalStorage<UpstreamLoginStart & { requestId?: string }>();

/**
 * The request an answer claims to answer, already read by the adapter: node-saml asks for it twice
 * while validating (the Response's InResponseTo and the bearer confirmation's), and the database need
 * not be asked three times for one row.
 */
export const answerBeingChecked = new AsyncLocalStorage<{ request: UpstreamRequest | undefined }>();

export class RequestIdCache implements CacheProvider {
  private readonly store: UpstreamRequestStore;
  private readonly means: string;

  constructor(store: UpstreamRequestStore, means: string) {
    this.store = store;
    this.means = means;
  }

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    const login = loginBeingStarted.getStore();
    if (!login) throw new Error('an AuthnRequest was generated outside a login');
    await this.store.record({
      requestId: key,
      means: this.means,
      interactionUid: login.interactionUid,
      sepId: login.sepId,
      sepRequestId: login.sepRequestId,
      minimumLoa: login.minimumLoa,
      forceAuthn: login.forceAuthn,
    });
    login.requestId = key;
    return { value, createdAt: Date.now() };
  }

  /** Known only while outstanding, and only to the means it was sent to (no IdP mix-up). */
  async getAsync(key: string): Promise<string | null> {
    const known = answerBeingChecked.getStore();
    const request = known && known.request?.requestId === key ? known.request : await this.store.findOutstanding(key, this.means);
    const outstanding = request && request.means === this.means && request.consumedAt === null && request.expiresAt > Date.now();
    return outstanding ? new Date(request.createdAt).toISOString() : null;
  }

  /**
   * node-saml calls this on every outcome; the request is consumed by Brána instead, atomically and
   * only after all of its own checks, so that a replay race has exactly one winner.
   */
  async removeAsync(key: string | null): Promise<string | null> {
    return key;
  }
}
