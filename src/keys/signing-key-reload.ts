import { logger } from '../log/logger.ts';
import { SigningKeyRing, type SigningKeyView } from './signing-keys.ts';

export interface SigningKeyStatus {
  file: string;
  signing: SigningKeyView['signing'];
  published: string[];
  loadedAt: number;
  /** The last re-read that failed (the node keeps signing with what it had). */
  lastError: string | null;
}

/**
 * How a node picks up rotated signing keys: it re-reads the shared file every `intervalMs`, at once on
 * SIGHUP (`check()`), and exactly when the schedule it holds says a key starts signing or stops being
 * published. `onChange` runs only when the view changes. A broken file is logged and ignored: the
 * node goes on with the keys it had.
 */
export class SigningKeyReload {
  private readonly file: string;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly listeners: Array<(view: SigningKeyView) => void> = [];
  private ring: SigningKeyRing;
  private text: string;
  private view: SigningKeyView;
  private loadedAt: number;
  private lastError: string | null = null;
  private interval: NodeJS.Timeout | undefined;
  private scheduled: NodeJS.Timeout | undefined;

  constructor(file: string, options: { intervalMs: number; now?: () => number }) {
    this.file = file;
    this.intervalMs = options.intervalMs;
    this.now = options.now ?? Date.now;
    ({ ring: this.ring, text: this.text } = SigningKeyRing.read(file));
    this.view = this.ring.view(this.now());
    this.loadedAt = this.now();
  }

  current(): SigningKeyView {
    return this.view;
  }

  onChange(listener: (view: SigningKeyView) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.interval = setInterval(() => void this.check('interval'), this.intervalMs);
    this.interval.unref();
    this.schedule();
  }

  stop(): void {
    clearInterval(this.interval);
    clearTimeout(this.scheduled);
  }

  /** Re-reads the file (if it changed) and recomputes the view for now; true if the view changed. */
  async check(reason: 'interval' | 'signal' | 'schedule' | 'request' = 'request'): Promise<boolean> {
    let view: SigningKeyView;
    try {
      const read = SigningKeyRing.read(this.file);
      view = read.ring.view(this.now());
      if (read.text !== this.text) {
        this.ring = read.ring;
        this.text = read.text;
        this.loadedAt = this.now();
        logger.info('signing keys re-read', { reason, keys: read.ring.keys.length });
      }
      this.lastError = null;
    } catch (err) {
      if ((err as Error).message !== this.lastError) logger.error('signing keys could not be re-read; the node keeps its keys', { reason, error: (err as Error).message });
      this.lastError = (err as Error).message;
      try {
        view = this.ring.view(this.now());
      } catch {
        return false;
      }
    }
    this.schedule(view);
    if (view.fingerprint === this.view.fingerprint) return false;
    this.view = view;
    logger.info('signing keys changed', { reason, signing: view.signing, published: view.published });
    for (const listener of this.listeners) listener(view);
    return true;
  }

  status(): SigningKeyStatus {
    return { file: this.file, signing: this.view.signing, published: this.view.published, loadedAt: this.loadedAt, lastError: this.lastError };
  }

  private schedule(view = this.view): void {
    clearTimeout(this.scheduled);
    if (view.nextChange === null || this.interval === undefined) return;
    // setTimeout holds at most ~24.8 days; a later change is found by the interval re-reads.
    const delay = Math.min(Math.max(view.nextChange - this.now(), 0) + 5, 2 ** 31 - 1);
    this.scheduled = setTimeout(() => void this.check('schedule'), delay);
    this.scheduled.unref();
  }
}
