/**
 * The admin HTTP API from the browser: every call carries the token as a bearer header, and
 * every failure becomes an ApiError with the server's code and, for invalid input, the field.
 */
import type { AdminError } from '@meshgrad/core';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

async function failure(res: Response): Promise<ApiError> {
  let body: Partial<AdminError> = {};
  try {
    body = (await res.json()) as Partial<AdminError>;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(
    res.status,
    body.code ?? `HTTP_${res.status}`,
    body.message ?? `${res.status} ${res.statusText}`,
    body.field,
  );
}

export class AdminApi {
  constructor(readonly token: string) {}

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(path, {
        ...init,
        headers: { ...(init.headers ?? {}), authorization: `Bearer ${this.token}` },
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, 'ERR_NETWORK', `cannot reach the server: ${(err as Error).message}`);
    }
    if (!res.ok) throw await failure(res);
    return res;
  }

  async get<T>(path: string): Promise<T> {
    return (await (await this.request(path)).json()) as T;
  }

  async post<T>(path: string, body: unknown = {}): Promise<T> {
    const res = await this.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return (await res.json()) as T;
  }

  /**
   * Downloads a file behind the token: a plain link cannot send the header, so fetch it and hand
   * the browser a blob URL to save.
   */
  async download(path: string, filename: string): Promise<void> {
    const blob = await (await this.request(path)).blob();
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    a.rel = 'noopener';
    document.body.appendChild(a);
    a.click();
    a.remove();
    // Give the browser time to start the download before the URL goes.
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }
}
