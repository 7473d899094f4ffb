import { describe, expect, it } from 'vitest';
import { LinkMeter } from './link-meter.ts';

describe('LinkMeter', () => {
  it('reports bytes that left the queue, not bytes queued', () => {
    const m = new LinkMeter(0);
    for (let i = 0; i < 10; i++) m.queued(100_000);
    // 1 MB queued in the first second, 400 KB of it still waiting: 600 KB/s left.
    const a = m.sample(1_000, 400_000);
    expect(a.goodputBytesPerSec).toBeCloseTo(600_000);
    expect(a.backlogBytes).toBe(400_000);
    expect(a.sent).toBe(10);
    // Nothing queued in the next half second and the backlog drained: 800 KB/s.
    const b = m.sample(1_500, 0);
    expect(b.goodputBytesPerSec).toBeCloseTo(800_000);
    expect(b.sent).toBe(0);
  });

  it('counts received bytes and dropped sends per interval', () => {
    const m = new LinkMeter(10);
    m.received(5_000);
    m.received(5_000);
    m.dropped();
    const a = m.sample(2_010, 0);
    expect(a.receivedBytesPerSec).toBeCloseTo(5_000);
    expect(a).toMatchObject({ received: 2, dropped: 1 });
    expect(m.sample(3_010, 0)).toMatchObject({ received: 0, dropped: 0, receivedBytesPerSec: 0 });
    expect(m.messagesDropped).toBe(1);
  });

  it('never reports negative goodput when the backlog grows faster than the count', () => {
    const m = new LinkMeter(0);
    expect(m.sample(1_000, 50_000).goodputBytesPerSec).toBe(0);
    // A zero-length interval does not divide by zero.
    expect(Number.isFinite(m.sample(1_000, 0).goodputBytesPerSec)).toBe(true);
  });
});
