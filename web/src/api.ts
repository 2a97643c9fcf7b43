// Calls to the exchange: Kraken public REST, Kraken private REST with the session cookie and the
// CSRF header (docs/adr/0007-web-sessions.md), and the page's own /api/ for accounts and keys.

export class ApiError extends Error {
  constructor(
    message: string,
    public field: string = "",
    public status = 200,
  ) {
    super(message);
  }
}

let csrfToken = "";
export function setCsrf(token: string): void {
  csrfToken = token;
}

const TIMEOUT_MS = 10_000;

async function fetchJson(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  try {
    const res = await fetch(url, { ...init, signal: ctrl.signal, credentials: "same-origin" });
    const text = await res.text();
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      throw new ApiError(`The server answered ${res.status} with something that is not JSON.`, "", res.status);
    }
    return { status: res.status, body };
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(ctrl.signal.aborted ? "The server did not answer in time." : "The server cannot be reached.");
  } finally {
    clearTimeout(timer);
  }
}

export async function publicCall<T = any>(name: string, params: Record<string, string | number> = {}): Promise<T> {
  const q = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]));
  const { body } = await fetchJson(`/0/public/${name}${q.size ? `?${q}` : ""}`);
  if (!body || body.error?.length) throw new ApiError(body?.error?.[0] ?? "Unknown error");
  return body.result as T;
}

export async function privateCall<T = any>(name: string, params: Record<string, string> = {}): Promise<T> {
  const { body } = await fetchJson(`/0/private/${name}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-csrf-token": csrfToken },
    body: new URLSearchParams(params).toString(),
  });
  if (!body || body.error?.length) throw new ApiError(body?.error?.[0] ?? "Unknown error");
  return body.result as T;
}

export async function webCall<T = any>(method: string, path: string, payload?: unknown): Promise<T> {
  const headers: Record<string, string> = { "x-csrf-token": csrfToken };
  if (payload !== undefined) headers["content-type"] = "application/json";
  const { status, body } = await fetchJson(`/api/${path}`, {
    method,
    headers,
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  if (status !== 200) throw new ApiError(body?.error?.message ?? `Error ${status}`, body?.error?.field ?? "", status);
  return body as T;
}

export interface Me {
  email: string;
  account: string;
  csrf: string;
  faucet: boolean;
  faucet_uses_left: number;
}
