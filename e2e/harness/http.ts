/**
 * The specs' GET requests to a job server. Node's fetch keeps connections alive and reuses them;
 * the server closes one that has been idle for its keep-alive timeout (5 s), and on a loaded
 * machine a request can go out on a connection at the moment the server closes it, which fails
 * with ECONNRESET ("fetch failed"). A GET is safe to send again, as browsers do, so such a
 * failure is retried; a status the server answered is the caller's to judge.
 *
 * Why not retry inside `expect.poll`: Playwright ends a poll at the first error its callback
 * throws (only the matcher's failures are polled past), so one reset connection failed a
 * 60 s poll after a few seconds.
 */

/** Attempts for a GET whose connection fails before any answer. */
const GET_ATTEMPTS = 3;
/** Pause between those attempts. */
const GET_RETRY_DELAY_MS = 500;

/** What a GET answered: its status and whole body. */
export interface GetAnswer {
  readonly status: number;
  readonly ok: boolean;
  readonly text: string;
}

/** GETs `url` and reads the whole body, retrying a request whose connection failed. */
export async function httpGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<GetAnswer> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { headers });
      return { status: res.status, ok: res.ok, text: await res.text() };
    } catch (err) {
      if (attempt >= GET_ATTEMPTS) {
        throw new Error(`GET ${url} failed ${GET_ATTEMPTS} times: ${describe(err)}`, {
          cause: err,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, GET_RETRY_DELAY_MS));
    }
  }
}

/** GETs `url` as text; a status other than 2xx is an error that shows the body. */
export async function getText(url: string, headers: Record<string, string> = {}): Promise<string> {
  const answer = await httpGet(url, headers);
  if (!answer.ok) throw new Error(`GET ${url}: ${answer.status} ${answer.text.slice(0, 500)}`);
  return answer.text;
}

/** GETs `url` and parses its JSON body; a status other than 2xx is an error. */
export async function getJson<T>(url: string, headers: Record<string, string> = {}): Promise<T> {
  return JSON.parse(await getText(url, headers)) as T;
}

function describe(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: string } | undefined) : undefined;
  return `${String(err)}${cause?.code === undefined ? '' : ` (${cause.code})`}`;
}
