import { describe, expect, it } from 'vitest';
import { RELAY_BURST_BYTES, RELAY_BYTES_PER_SEC, RelayQuota } from './relay-quota.ts';

describe('RelayQuota', () => {
  const KB = 64 * 1024;

  it('lets a sender relay its burst, then its rate, and refuses the rest by name', () => {
    let now = 0;
    const quota = new RelayQuota(() => now);
    let sent = 0;
    // Receivers that read everything at once: only the sender's budget binds.
    for (let i = 0; i < 1_000; i++) {
      if (quota.admit('a', `r${i}`, KB) === null) sent += KB;
    }
    expect(sent).toBe(RELAY_BURST_BYTES);
    expect(quota.admit('a', 'r', KB)).toMatch(/relay quota/);
    now += 1_000;
    let later = 0;
    while (quota.admit('a', `s${later}`, KB) === null) later++;
    expect(later * KB).toBeLessThanOrEqual(RELAY_BYTES_PER_SEC);
    expect((later + 1) * KB).toBeGreaterThan(RELAY_BYTES_PER_SEC);
  });

  it('bounds the bytes queued towards a receiver that does not read, across senders', () => {
    const quota = new RelayQuota(() => 0);
    let queued = 0;
    for (let s = 0; s < 8; s++) {
      for (let i = 0; i < 100; i++) if (quota.admit(`s${s}`, 'slow', KB) === null) queued += KB;
    }
    expect(queued).toBe(RELAY_BURST_BYTES);
    expect(quota.admit('fresh', 'slow', KB)).toMatch(/not yet delivered/);
    // Once its transport takes the queue, it receives again.
    quota.drained('slow');
    expect(quota.admit('fresh', 'slow', KB)).toBeNull();
  });

  it('keeps no queue for a receiver on another process, and forgets departed workers', () => {
    const quota = new RelayQuota(() => 0);
    for (let i = 0; i < 10; i++) expect(quota.admit(`s${i}`, 'remote', KB, false)).toBeNull();
    quota.admit('gone', 'r', RELAY_BURST_BYTES);
    expect(quota.admit('gone', 'r2', KB)).not.toBeNull();
    quota.forget('gone');
    expect(quota.admit('gone', 'r2', KB)).toBeNull();
  });
});
