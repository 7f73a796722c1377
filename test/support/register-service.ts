import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readTestCitizens } from '../../src/devidp/test-citizens.ts';
import { EmbeddedRegister } from '../../src/identity/embedded-register.ts';
import type { RegisterRecord } from '../../src/identity/population-register.ts';

/** How the service answers one request instead of looking the person up. */
export type Misbehaviour =
  | { status: number; body?: string }
  /** Answers correctly, but only after this long. */
  | { delayMs: number }
  /** Closes the connection without an answer. */
  | { hangUp: true };

export interface ReceivedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

/**
 * A population register service speaking the contract of docs/POPULATION-REGISTER.md on a real
 * port, looking people up in the test citizens. Tests script its misbehaviour: `next` answers
 * the coming requests in order, `always` every request after them.
 */
export class RegisterService {
  readonly requests: ReceivedRequest[] = [];
  next: Misbehaviour[] = [];
  always: Misbehaviour | null = null;
  private readonly register: EmbeddedRegister;
  private readonly server: http.Server;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(records: RegisterRecord[]) {
    this.register = new EmbeddedRegister(records);
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  static async start(records: RegisterRecord[] = readTestCitizens().map((citizen) => citizen.register)): Promise<RegisterService> {
    const service = new RegisterService(records);
    await new Promise<void>((resolve) => service.server.listen(0, '127.0.0.1', resolve));
    return service;
  }

  get url(): URL {
    return new URL(`http://127.0.0.1:${(this.server.address() as AddressInfo).port}/rob/v1`);
  }

  /** Forgets what it received and behaves again. */
  reset(): void {
    this.requests.length = 0;
    this.next = [];
    this.always = null;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const path = new URL(req.url ?? '/', 'http://register').pathname;
    this.requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body: text ? JSON.parse(text) : undefined });
    const misbehaviour = this.next.shift() ?? this.always;
    if (misbehaviour && 'hangUp' in misbehaviour) {
      req.socket.destroy();
      return;
    }
    if (misbehaviour && 'status' in misbehaviour) {
      res.writeHead(misbehaviour.status, { 'content-type': 'application/json' }).end(misbehaviour.body ?? '{"error":"unavailable"}');
      return;
    }
    if (misbehaviour) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          resolve();
        }, misbehaviour.delayMs);
        this.timers.add(timer);
      });
      if (res.destroyed) return;
    }
    await this.answer(req.method ?? '', path, text, res);
  }

  private async answer(method: string, path: string, body: string, res: http.ServerResponse): Promise<void> {
    const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (method === 'GET' && path === '/rob/v1/health') return void json(200, { status: 'ok' });
    if (method === 'POST' && path === '/rob/v1/match') {
      const match = await this.register.match(JSON.parse(body));
      return void json(200, match.kind === 'found' ? { result: 'found', record: match.record } : { result: match.kind });
    }
    const person = /^\/rob\/v1\/persons\/([^/]+)$/.exec(path);
    if (method === 'GET' && person) {
      const record = await this.register.findById(decodeURIComponent(person[1]!));
      return void (record ? json(200, record) : json(404, { error: 'not_found' }));
    }
    json(404, { error: 'no such operation' });
  }
}
