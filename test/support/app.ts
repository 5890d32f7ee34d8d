import { randomBytes } from 'node:crypto';
import { createApp, App, AppDeps } from '../../src/app';
import { configFromEnv, Config } from '../../src/config';
import { Terminal } from '../../src/terminal/terminal';
import { Acquirer } from '../../src/acquirer/acquirer';
import { Clock } from '../../src/shared/clock';
import { silentLogger } from '../../src/shared/logger';
import { checkInvariants } from '../../src/inventory/check';
import { freshDb, FreshDb, TestDbKind } from './dbs';

export interface TestApp {
  app: App;
  url: string;
  adminKey: string;
  fdb: FreshDb;
  api: Api;
  /** A client with a key of this role. */
  as(role: 'cashier' | 'backoffice' | 'admin', lane?: string): Promise<Api>;
  check(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export type Api = (
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<ApiResponse>;

export function client(url: string, key: string | null): Api {
  return async (method, path, body, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    let payload: string | undefined;
    if (typeof body === 'string') payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + path, { method, headers: h, body: payload });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* keep text */
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
}

export async function startTestApp(
  kind: TestDbKind['name'],
  opts: {
    terminals?: Map<string, Terminal>;
    acquirer?: Acquirer | null;
    clock?: Clock;
    config?: Partial<Config>;
    poolSize?: number;
    /** Further adapters and options (printers, lane options). */
    deps?: Partial<AppDeps>;
  } = {},
): Promise<TestApp> {
  const fdb = await freshDb(kind, { poolSize: opts.poolSize });
  const adminKey = `pos_${randomBytes(24).toString('base64url')}`;
  const config: Config = { ...configFromEnv({}), databaseUrl: fdb.url, adminKey, port: 0, ...opts.config };
  const app = await createApp({
    config,
    db: fdb.db,
    terminals: opts.terminals,
    acquirer: opts.acquirer,
    clock: opts.clock,
    log: silentLogger,
    schedule: false,
    ...opts.deps,
  });
  const { url } = await app.listen(0, '127.0.0.1');
  const api = client(url, adminKey);
  return {
    app,
    url,
    adminKey,
    fdb,
    api,
    as: async (role, lane) => {
      const r = await api('POST', '/v1/api-keys', { role, lane });
      if (r.status !== 201) throw new Error(`could not create ${role} key: ${JSON.stringify(r.body)}`);
      return client(url, r.body.key);
    },
    check: async () => (await checkInvariants(fdb.db)).map((f) => `${f.rule} ${f.subject}: ${f.detail}`),
    stop: async () => {
      await app.close();
      await fdb.drop();
    },
  };
}
