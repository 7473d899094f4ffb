/**
 * Volunteer identities against a real server and real socket.io clients (DESIGN §9): a hello
 * proves its key by signing this connection's challenge; forged signatures, replayed or foreign
 * challenges and names that are too long or hold markup are refused with a clear error.
 */
import { describe, expect, it } from 'vitest';
import { MAX_DISPLAY_NAME_CHARS, type ErrorReply, type IdentityProof } from '@meshgrad/core';
import { BLOBS_JOB, ServerFixture } from '../server.test-support.ts';
import { identityId, newChallenge, verifyIdentity } from './identity.ts';
import { askChallenge, helloWith, joinAs, TestIdentity } from './identity.test-support.ts';

const fixture = new ServerFixture('meshgrad-identity-');

const refused = (r: { ok: boolean }): ErrorReply => {
  expect(r.ok).toBe(false);
  return r as ErrorReply;
};

describe('verifyIdentity', () => {
  it('accepts a signature over the expected challenge and names the identity by its key', async () => {
    const me = await TestIdentity.make();
    const challenge = newChallenge();
    const r = await verifyIdentity(await me.proof(challenge), challenge);
    expect(r).toEqual({ ok: true, id: identityId(me.publicKey) });
    expect(identityId(me.publicKey)).toMatch(/^v-[0-9a-f]{20}$/);
  });

  it('refuses a signature made with another key (a forged proof)', async () => {
    const me = await TestIdentity.make();
    const thief = await TestIdentity.make();
    const challenge = newChallenge();
    const forged: IdentityProof = { ...(await thief.proof(challenge)), publicKey: me.publicKey };
    const r = await verifyIdentity(forged, challenge);
    expect(r).toMatchObject({ ok: false, code: 'ERR_BAD_SIGNATURE' });
  });

  it('refuses a signature over another challenge, and a proof with no challenge held', async () => {
    const me = await TestIdentity.make();
    const proof = await me.proof(newChallenge());
    expect(await verifyIdentity(proof, newChallenge())).toMatchObject({ code: 'ERR_CHALLENGE' });
    expect(await verifyIdentity(proof, undefined)).toMatchObject({ code: 'ERR_CHALLENGE' });
  });

  it('refuses coordinates that are no point on the curve', async () => {
    const me = await TestIdentity.make();
    const challenge = newChallenge();
    const proof = await me.proof(challenge);
    const bad = { ...proof, publicKey: { ...proof.publicKey, y: proof.publicKey.x } };
    expect(await verifyIdentity(bad, challenge)).toMatchObject({ code: 'ERR_INVALID_PAYLOAD' });
  });
});

describe('hello with an identity', () => {
  it('binds the identity: the same key on two connections is the same identity', async () => {
    await fixture.start({ jobs: [BLOBS_JOB] });
    const me = await TestIdentity.make();
    const a = await joinAs(fixture.socket(), me, { name: 'Ada', team: 'Lovelace Lab' });
    const b = await joinAs(fixture.socket(), me);
    expect(a.identity).toEqual({ id: identityId(me.publicKey), name: 'Ada', team: 'Lovelace Lab' });
    expect(b.identity?.id).toBe(a.identity?.id);
    expect(b.workerId).not.toBe(a.workerId);
  });

  it('still lets a worker join without an identity (it earns no credit)', async () => {
    await fixture.start({ jobs: [BLOBS_JOB] });
    const a = await helloWith(fixture.socket(), undefined);
    expect(a.ok).toBe(true);
    expect(a.ok && a.identity).toBeFalsy();
  });

  it('refuses a forged signature with ERR_BAD_SIGNATURE, and the connection may try again', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const me = await TestIdentity.make();
    const thief = await TestIdentity.make();
    const s = fixture.socket();
    const challenge = await askChallenge(s);
    const forged = { ...(await thief.proof(challenge)), publicKey: me.publicKey };
    const r = refused(await helloWith(s, forged));
    expect(r.code).toBe('ERR_BAD_SIGNATURE');
    expect(r.message).toContain('identity.signature');
    expect(server.jobs.get('blobs')!.workers.size).toBe(0);
    // Nothing else lost: the same connection joins with its own key.
    const a = await joinAs(s, thief);
    expect(a.identity?.id).toBe(identityId(thief.publicKey));
  });

  it('refuses a replayed challenge: each is good for one hello', async () => {
    const server = await fixture.start({ jobs: [BLOBS_JOB] });
    const me = await TestIdentity.make();
    const s = fixture.socket();
    const proof = await me.proof(await askChallenge(s));
    const first = await helloWith(s, proof);
    expect(first.ok).toBe(true);
    // Dropped for silence, the socket says hello again: not with the proof it used.
    server.jobs.get('blobs')!.leave(first.ok ? first.workerId : '', 'stale');
    const same = refused(await helloWith(s, proof));
    expect(same.code).toBe('ERR_CHALLENGE');
    // Nor on a new connection.
    s.disconnect().connect();
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    const again = refused(await helloWith(s, proof));
    expect(again.code).toBe('ERR_CHALLENGE');
  });

  it('a ban follows the identity: a new worker id with the same key is refused, after a restart too', async () => {
    let server = await fixture.start({ jobs: [BLOBS_JOB] });
    const me = await TestIdentity.make();
    const other = await TestIdentity.make();
    const first = await joinAs(fixture.socket(), me);
    expect(server.jobs.get('blobs')!.ban(first.workerId, 'banned by the host')).toBe(true);
    // The same key on a fresh connection, asking for no id (a new worker id): refused.
    const s = fixture.socket();
    const again = refused(await helloWith(s, await me.proof(await askChallenge(s))));
    expect(again.code).toBe('ERR_BANNED');
    expect(again.message).toBe(`identity ${identityId(me.publicKey)} is banned from job blobs`);
    // Another key, and an anonymous hello, still join.
    expect((await joinAs(fixture.socket(), other)).identity?.id).toBe(identityId(other.publicKey));
    expect((await helloWith(fixture.socket(), undefined)).ok).toBe(true);
    // The ban is in the job's progress: a restarted server still refuses the key.
    fixture.disconnectAll();
    await server.close();
    server = await fixture.start({ jobs: [BLOBS_JOB] });
    const t = fixture.socket();
    expect(refused(await helloWith(t, await me.proof(await askChallenge(t)))).code).toBe(
      'ERR_BANNED',
    );
    expect(server.jobs.get('blobs')!.isIdentityBanned(identityId(me.publicKey))).toBe(true);
  });

  it('refuses a challenge given to another connection, and a hello that asked for none', async () => {
    await fixture.start({ jobs: [BLOBS_JOB] });
    const me = await TestIdentity.make();
    const other = fixture.socket();
    const s = fixture.socket();
    const foreign = await askChallenge(other);
    await askChallenge(s);
    const r = refused(await helloWith(s, await me.proof(foreign)));
    expect(r.code).toBe('ERR_CHALLENGE');
    expect(r.message).toContain('not the challenge this connection was given');
    const fresh = fixture.socket();
    const none = refused(await helloWith(fresh, await me.proof(foreign)));
    expect(none.code).toBe('ERR_CHALLENGE');
  });

  it('refuses a name of 10 kB, one with markup and one with control characters', async () => {
    await fixture.start({ jobs: [BLOBS_JOB] });
    const me = await TestIdentity.make();
    const s = fixture.socket();
    const cases: Array<[{ name?: string; team?: string }, string]> = [
      [
        { name: 'x'.repeat(10_240) },
        `identity.name: must be at most ${MAX_DISPLAY_NAME_CHARS} characters`,
      ],
      [{ name: '<img src=x onerror=alert(1)>' }, 'identity.name: must not contain < or >'],
      [{ team: 'tab\u0007bell' }, 'identity.team: must not contain control characters'],
      [{ team: '   ' }, 'identity.team: must not be blank'],
    ];
    for (const [extra, message] of cases) {
      const r = refused(await helloWith(s, await me.proof(await askChallenge(s), extra)));
      expect(r.code).toBe('ERR_INVALID_PAYLOAD');
      expect(r.message).toBe(message);
    }
    // A name at the cap is fine.
    const ok = await joinAs(s, me, { name: 'é'.repeat(MAX_DISPLAY_NAME_CHARS) });
    expect(ok.identity?.name).toHaveLength(MAX_DISPLAY_NAME_CHARS);
  });
});
