import { mkdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MeshgradServer } from './server.ts';
import { ServerFixture, BLOBS_JOB, capturingLogger } from './server.test-support.ts';

const fixture = new ServerFixture('meshgrad-http-');

interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

/**
 * Sends `GET <target>` exactly as written: fetch and node:http would normalise the request
 * target, and the malformed ones are what an attacker sends.
 */
function rawGet(server: MeshgradServer, target: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, body });
    });
    socket.write(`GET ${target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n`);
  });
}

describe('HTTP request boundary', () => {
  it.each([
    '//a:99999/',
    '//[/',
    '//%zz/',
    '//user@/',
    '/api/jobs/%zz/metrics',
    '/api/admin/%zz',
    'http://[/',
  ])('answers %s with 400 and a message, and keeps serving', async (target) => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const answer = await rawGet(server, target);
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toMatchObject({ error: expect.stringMatching(/request path/) });
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('still routes well-formed paths with a query string', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const answer = await rawGet(server, '/api/jobs?x=1');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ jobs: [{ id: 'blobs' }] });
  });
});

describe('HTTP client pages', () => {
  it('serves a static file and answers its revalidation with 304, nothing logged as a failure', async () => {
    const clientDir = path.join(fixture.dataDir, 'client');
    await mkdir(clientDir, { recursive: true });
    const page = `<!doctype html><title>meshgrad</title>${'<p>volunteer</p>'.repeat(100)}`;
    await writeFile(path.join(clientDir, 'index.html'), page);
    const { lines, logger } = capturingLogger();
    const server = await fixture.start({ jobs: [BLOBS_JOB], clientDir, logger });
    for (const route of ['/', '/index.html']) {
      const res = await fetch(`${server.url}${route}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(page);
      const etag = res.headers.get('etag');
      expect(etag).toBeTruthy();
      // sirv answers a matching If-None-Match with `return res.end()`: the response, no promise.
      const again = await fetch(`${server.url}${route}`, {
        headers: { 'if-none-match': etag as string },
      });
      expect(again.status).toBe(304);
    }
    expect(lines.filter((l) => l.includes('http handler failed'))).toEqual([]);
  });
});

describe('HTTP metrics history', () => {
  it('serves /api/jobs/<job>/metrics by range and limit, and names a bad range', async () => {
    const dir = path.join(fixture.dataDir, 'jobs', 'blobs');
    await mkdir(dir, { recursive: true });
    const start = Date.UTC(2026, 0, 1);
    const lines = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({
        time: new Date(start + i * 1000).toISOString(),
        samples: i * 10,
        workers: 0,
        samplesPerSec: 10,
        perWorker: {},
      }),
    );
    await writeFile(path.join(dir, 'metrics.jsonl'), lines.join('\n') + '\n');
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const get = async (query: string) => {
      const res = await fetch(`${server.url}/api/jobs/blobs/metrics${query}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const newest = await get('?limit=3');
    expect(newest.status).toBe(200);
    expect((newest.body.history as { samples: number }[]).map((r) => r.samples)).toEqual([
      370, 380, 390,
    ]);
    const range = await get(
      `?since=${start + 10_000}&until=${new Date(start + 14_000).toISOString()}`,
    );
    expect((range.body.history as { samples: number }[]).map((r) => r.samples)).toEqual([
      100, 110, 120, 130, 140,
    ]);
    expect(await get('?since=yesterday')).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/since must be/) },
    });
    expect((await get('?limit=0')).status).toBe(400);
  });
});
