/**
 * Data paths of a job spec are confined to the directories the host allows: a spec from the
 * admin API or a file cannot make the server read `/proc/self/environ` or any other file.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AdminError } from '@meshgrad/core';
import { ServerFixture, capturingLogger } from '../server.test-support.ts';
import { JobSpecError, parseJobSpec } from './job-spec.ts';

const TOKEN = 'test-admin-token-confinement';
const fixture = new ServerFixture('meshgrad-confine-');

const csvJob = (file: string, id = 'tabular') => ({
  id,
  name: 'Tabular',
  model: { kind: 'softmax', inputs: 2, classes: 2 },
  dataset: { kind: 'csv', file, testFraction: 0.25 },
});
const rows =
  'a,b,label\n' +
  Array.from({ length: 40 }, (_, i) => `${i % 3},${i % 5},${i % 2}`).join('\n') +
  '\n';

describe('dataset path confinement', () => {
  it('refuses a path outside the allowed directories, naming the field and the path', () => {
    const allowedDirs = ['/srv/data'];
    expect(() => parseJobSpec(csvJob('/proc/self/environ'), { allowedDirs })).toThrow(JobSpecError);
    try {
      parseJobSpec(csvJob('../../etc/passwd'), { baseDir: '/srv/data', allowedDirs });
    } catch (err) {
      expect(err).toMatchObject({ field: 'dataset.file', file: '/etc/passwd' });
      expect((err as Error).message).toMatch(/\/etc\/passwd is outside/);
    }
    expect(
      parseJobSpec(csvJob('sub/train.csv'), { baseDir: '/srv/data', allowedDirs }).dataset,
    ).toMatchObject({
      file: '/srv/data/sub/train.csv',
    });
    // A directory whose name only starts like an allowed one is not inside it.
    expect(() => parseJobSpec(csvJob('/srv/database/x.csv'), { allowedDirs })).toThrow(/outside/);
  });

  it('the admin API answers 400 for /proc/self/environ and a symlink out, and nothing of the file reaches the log', async () => {
    const { lines, logger } = capturingLogger('debug');
    const server = await fixture.start({ adminToken: TOKEN, logger, jobs: [] });
    const create = (body: unknown) =>
      fetch(`${server.url}/api/admin/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await create(csvJob('/proc/self/environ'));
    expect(res.status).toBe(400);
    const err = (await res.json()) as AdminError;
    expect(err).toMatchObject({ ok: false, code: 'ERR_INVALID_PAYLOAD', field: 'dataset.file' });
    expect(err.message).toMatch(/\/proc\/self\/environ is outside/);

    await symlink('/proc/self/environ', path.join(server.dataDir, 'innocent.csv'));
    const viaLink = await create(csvJob(path.join(server.dataDir, 'innocent.csv')));
    expect(viaLink.status).toBe(400);
    expect(((await viaLink.json()) as AdminError).message).toMatch(/outside/);

    // A file in the data directory is fine.
    await writeFile(path.join(server.dataDir, 'train.csv'), rows);
    const ok = await create(csvJob(path.join(server.dataDir, 'train.csv')));
    expect(ok.status).toBe(201);
    expect(server.jobs.has('tabular')).toBe(true);
    const log = lines.join('');
    expect(log).not.toContain('PATH=');
    expect(log).not.toMatch(/"level":50/);
  });

  it('a data file that fails to parse gives a 400 and logs no content of it', async () => {
    const { lines, logger } = capturingLogger('debug');
    const server = await fixture.start({ adminToken: TOKEN, logger, jobs: [] });
    const secret = 'TURN_SECRET=hunter2-never-log-me';
    await writeFile(path.join(server.dataDir, 'secret.csv'), `a,b,label\n1,2,0\n${secret},1\n`);
    const res = await fetch(`${server.url}/api/admin/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(csvJob(path.join(server.dataDir, 'secret.csv'))),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as AdminError).field).toMatch(/^dataset/);
    expect(lines.join('')).not.toContain('hunter2');
  });

  it('a --job spec may read from its own folder and from --allow-data-dir folders only', async () => {
    const outside = path.join(fixture.dataDir, '..', `${path.basename(fixture.dataDir)}-elsewhere`);
    await mkdir(outside, { recursive: true });
    await writeFile(path.join(outside, 'train.csv'), rows);
    const spec = csvJob(path.join(outside, 'train.csv'));
    await expect(fixture.start({ jobs: [spec] })).rejects.toThrow(/train\.csv is outside/);
    const server = await fixture.start({ jobs: [spec], allowDataDirs: [outside] });
    expect(server.jobs.has('tabular')).toBe(true);
  });
});
