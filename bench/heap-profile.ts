/** What bench/alloc-per-login.ts and bench/alloc-sites.ts share about a sampled heap profile. */

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
export interface SamplingNode {
  callFrame: CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

/**
 * Frames of the test driver and the development IdP: allocation on a stack through one of them is
 * the harness's, not the broker's. Node's HTTP client is the driver's too (it reads the broker's
 * answers; ≈ 0.1 MiB per login): the broker itself sends no request in these logins, and reaches
 * the outside with fetch (undici) when it does.
 */
export const HARNESS = /\/test\/|\/src\/devidp\/|node_modules\/(superagent|supertest|cookiejar|formidable|form-data)\/|^node:_http_client$|^node:_http_agent$/;

export function packageOf(url: string): string {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1]!;
  if (url.includes('/src/')) return `brana:${url.split('/src/')[1]!.split('/')[0]}`;
  if (url.startsWith('node:')) return 'node-internal';
  return '(native)';
}
