import { logger as defaultLogger } from './logger.ts';

/** How long one line stands for the repetitions of its kind. */
export const OUTAGE_LOG_INTERVAL_MS = 10_000;

type Level = 'warn' | 'error';

interface Window {
  repeated: number;
  timer: NodeJS.Timeout;
}

interface Sink {
  log(level: Level, message: string, meta: Record<string, unknown>): unknown;
}

/**
 * During an outage every request fails the same way, and a log with one line (or one stack trace)
 * per request buries what an operator needs at 3 a.m. This says each kind of failure once: the first
 * occurrence at once, with its details; the next ones of the same message and kind within the
 * interval are counted, and at the end of the interval one line says how many there were
 * ("N more like this in the last 10 s"). While they go on, one such line per interval; once a whole
 * interval passes without one, the next occurrence is told in full again.
 *
 * For expected operational failures only (a database or a register out of reach): their lines carry
 * no stack trace. A programming error is logged as it is, with its stack, never through here.
 */
export class OutageLog {
  private readonly windows = new Map<string, Window>();
  private readonly sink: Sink;
  private readonly intervalMs: number;

  constructor(sink: Sink = defaultLogger, intervalMs = OUTAGE_LOG_INTERVAL_MS) {
    this.sink = sink;
    this.intervalMs = intervalMs;
  }

  /** One failure of `kind`; `meta` is logged only when the line is written in full. */
  report(level: Level, message: string, kind: string, meta: Record<string, unknown> = {}): void {
    const key = `${level}\u0000${message}\u0000${kind}`;
    const open = this.windows.get(key);
    if (open) {
      open.repeated += 1;
      return;
    }
    this.sink.log(level, message, { kind, ...meta });
    this.open(key, level, message, kind);
  }

  /** Writes the counts of every open interval now (before the process ends, and for tests). */
  flush(): void {
    for (const [key, window] of this.windows) {
      clearTimeout(window.timer);
      this.windows.delete(key);
      const [level, message, kind] = key.split('\u0000') as [Level, string, string];
      if (window.repeated) this.summarize(level, message, kind, window.repeated);
    }
  }

  private open(key: string, level: Level, message: string, kind: string): void {
    const window: Window = {
      repeated: 0,
      timer: setTimeout(() => {
        this.windows.delete(key);
        if (!window.repeated) return;
        this.summarize(level, message, kind, window.repeated);
        // Still going on: the next interval is counted too, with no line of its own at its start.
        this.open(key, level, message, kind);
      }, this.intervalMs),
    };
    window.timer.unref();
    this.windows.set(key, window);
  }

  private summarize(level: Level, message: string, kind: string, repeated: number): void {
    const interval = this.intervalMs >= 1000 ? `${Math.round(this.intervalMs / 1000)} s` : `${this.intervalMs} ms`;
    this.sink.log(level, `${message} (${repeated} more like this in the last ${interval})`, { kind, repeated });
  }
}

/** The node's outage log, writing to the node's logger. */
export const outageLog = new OutageLog();
