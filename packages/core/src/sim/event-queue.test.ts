import { describe, expect, it } from 'vitest';
import { Rng } from '../util/rng.ts';
import { EventQueue } from './event-queue.ts';
import { Schedule } from './schedule.ts';

describe('EventQueue', () => {
  it('runs events in time order, ties in insertion order, whatever the insertion order', async () => {
    const clock = new EventQueue();
    const rng = new Rng(4);
    const fired: { t: number; i: number; now: number }[] = [];
    for (let i = 0; i < 500; i++) {
      const t = Math.floor(rng.next() * 50) / 10;
      clock.at(t, () => void fired.push({ t, i, now: clock.nowS }));
    }
    await clock.run();
    expect(fired).toHaveLength(500);
    for (let j = 1; j < fired.length; j++) {
      const [a, b] = [fired[j - 1]!, fired[j]!];
      expect(b.t > a.t || (b.t === a.t && b.i > a.i)).toBe(true);
    }
    for (const f of fired) expect(f.now).toBe(f.t);
  });

  it('lets events schedule later events and awaits async ones', async () => {
    const clock = new EventQueue();
    const log: string[] = [];
    clock.at(1, async () => {
      await Promise.resolve();
      log.push(`a@${clock.nowS}`);
      clock.after(0.5, () => void log.push(`b@${clock.nowS}`));
    });
    clock.at(1.2, () => void log.push(`c@${clock.nowS}`));
    await clock.run();
    expect(log).toEqual(['a@1', 'c@1.2', 'b@1.5']);
  });

  it('refuses the past and stops at a time limit or on request', async () => {
    const clock = new EventQueue();
    clock.at(2, () => {});
    clock.at(5, () => {});
    await clock.run(3);
    expect(clock.nowS).toBe(3);
    expect(clock.size).toBe(1);
    expect(() => clock.at(1, () => {})).toThrow(RangeError);
    let n = 0;
    for (let i = 0; i < 10; i++) clock.at(6 + i, () => void n++);
    await clock.run(Infinity, () => n >= 4);
    expect(n).toBe(4);
  });
});

describe('Schedule', () => {
  it('is piecewise constant with sorted changes', () => {
    const s = new Schedule(10, [
      { atS: 5, value: 2 },
      { atS: 1, value: 7 },
    ]);
    expect(s.valueAt(0)).toBe(10);
    expect(s.valueAt(1)).toBe(7);
    expect(s.valueAt(4.99)).toBe(7);
    expect(s.valueAt(5)).toBe(2);
    expect(s.nextChangeAfter(0)).toBe(1);
    expect(s.nextChangeAfter(1)).toBe(5);
    expect(s.nextChangeAfter(5)).toBe(Infinity);
    expect(s.scaled(2).valueAt(3)).toBe(14);
  });

  it('models drops and rejects nonsense', () => {
    const s = Schedule.withDrops(100, [{ fromS: 10, toS: 15, factor: 0.1 }]);
    expect(s.valueAt(9)).toBe(100);
    expect(s.valueAt(12)).toBeCloseTo(10);
    expect(s.valueAt(15)).toBe(100);
    expect(() => new Schedule(-1)).toThrow(RangeError);
    expect(() => Schedule.withDrops(1, [{ fromS: 3, toS: 2, factor: 1 }])).toThrow(RangeError);
  });
});

describe('Schedule.withFactorFrom', () => {
  it('scales every value from a time on and keeps earlier ones', () => {
    const s = new Schedule(10, [
      { atS: 2, value: 20 },
      { atS: 6, value: 30 },
    ]).withFactorFrom(4, 0.1);
    expect(s.valueAt(1)).toBe(10);
    expect(s.valueAt(3)).toBe(20);
    expect(s.valueAt(4)).toBeCloseTo(2);
    expect(s.valueAt(7)).toBeCloseTo(3);
  });
});
