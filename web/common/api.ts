/**
 * The one way the pages talk to the service: JSON over /v1 with the signed-in key as a Bearer
 * token. Errors come back as ApiError with the server's stable `code`, so screens branch on codes,
 * never on wording.
 */
import { ref } from 'vue';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface Api {
  key: ReturnType<typeof ref<string | null>>;
  call<T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts?: { csv?: boolean; idempotencyKey?: string; signal?: AbortSignal },
  ): Promise<T>;
  text(path: string): Promise<string>;
  signOut(): void;
}

export function createApi(storageName: string): Api {
  const key = ref<string | null>(sessionStorage.getItem(storageName));
  const headers = (): Record<string, string> => (key.value ? { authorization: `Bearer ${key.value}` } : {});

  async function call<T>(
    method: string,
    path: string,
    body?: unknown,
    opts: { csv?: boolean; idempotencyKey?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const h = headers();
    let payload: BodyInit | undefined;
    if (opts.csv) {
      h['content-type'] = 'text/csv';
      payload = body as string;
    } else if (body !== undefined) {
      h['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    if (opts.idempotencyKey) h['idempotency-key'] = opts.idempotencyKey;
    const res = await fetch(path, { method, headers: h, body: payload, signal: opts.signal });
    const text = await res.text();
    let data: any;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!res.ok) {
      const e = data?.error ?? {};
      throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText, e.details ?? {});
    }
    return data as T;
  }

  async function text(path: string): Promise<string> {
    const res = await fetch(path, { headers: headers() });
    if (!res.ok) throw new ApiError(res.status, `http_${res.status}`, await res.text());
    return res.text();
  }

  return {
    key,
    call,
    text,
    signOut() {
      key.value = null;
      sessionStorage.removeItem(storageName);
    },
  };
}

/** Checks a key by a harmless read; remembers it for this browser tab only. */
export async function signIn(api: Api, storageName: string, candidate: string, probe: string): Promise<void> {
  api.key.value = candidate.trim();
  try {
    await api.call('GET', probe);
  } catch (err) {
    // A 404 from the probe still proves the key was accepted.
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      api.key.value = null;
      throw err;
    }
  }
  sessionStorage.setItem(storageName, api.key.value!);
}

export const newIdempotencyKey = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

/** Automation hooks on the <input> inside a Naive UI field (its typings know no data-* attributes). */
export const tid = (id: string, extra: Record<string, string> = {}): Record<string, string> => ({
  'data-testid': id,
  ...extra,
});
