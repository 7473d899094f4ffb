import { describe, expect, it } from 'vitest';
import { EventQueue } from './event-queue.ts';
import { DATA_CHANNEL_LIMIT_BYTES, SimNetwork, type PathOptions } from './network.ts';
import { Schedule } from './schedule.ts';

interface Arrival {
  at: number;
  from: string;
  to: string;
  bytes: Uint8Array;
}

function setup(path: (from: string, to: string) => PathOptions = () => ({ latencyS: 0 })) {
  const clock = new EventQueue();
  const network = new SimNetwork(clock, path, 3);
  const arrivals: Arrival[] = [];
  const add = (id: string, up: Schedule | number, down: Schedule | number = 1e12, valve?: number) =>
    network.addNode(id, {
      uplink: typeof up === 'number' ? Schedule.constant(up) : up,
      downlink: typeof down === 'number' ? Schedule.constant(down) : down,
      ...(valve !== undefined ? { sendBacklogLimitBytes: valve } : {}),
      onMessage: (from, bytes) => arrivals.push({ at: clock.nowS, from, to: id, bytes }),
    });
  return { clock, network, arrivals, add };
}

/** Message whose first 4 bytes hold `tag`, so arrivals can be told apart. */
function message(size: number, tag: number): Uint8Array {
  const m = new Uint8Array(size);
  new DataView(m.buffer).setUint32(0, tag, true);
  return m;
}
const tagOf = (m: Uint8Array) => new DataView(m.buffer, m.byteOffset).getUint32(0, true);

describe('SimNetwork', () => {
  it('never delivers faster than the capacity, even across a drop', async () => {
    // 100 kB/s, falling to 10 kB/s from t = 1 s to t = 3 s.
    const capacity = Schedule.withDrops(100_000, [{ fromS: 1, toS: 3, factor: 0.1 }]);
    const { clock, network, arrivals, add } = setup();
    add('a', capacity, 1e9, Infinity);
    add('b', 1e9);
    for (let i = 0; i < 60; i++) expect(network.send('a', 'b', message(5_000, i))).toBe('queued');
    await clock.run();
    expect(arrivals).toHaveLength(60);
    // Bytes that can have left by time t: the integral of the capacity.
    const allowed = (t: number) =>
      100_000 * Math.min(t, 1) +
      10_000 * Math.max(0, Math.min(t, 3) - 1) +
      100_000 * Math.max(0, t - 3);
    let delivered = 0;
    for (const a of arrivals) {
      delivered += a.bytes.byteLength;
      expect(delivered).toBeLessThanOrEqual(allowed(a.at) + 1e-6);
    }
    // The link was busy throughout, so it also delivered as fast as it could: 100 kB in the
    // first second, 20 kB during the drop, the other 180 kB by 4.8 s.
    expect(arrivals.at(-1)!.at).toBeCloseTo(4.8, 6);
    expect(arrivals.map((a) => tagOf(a.bytes))).toEqual(Array.from({ length: 60 }, (_, i) => i));
  });

  it('shares an uplink fairly and honours the receiver downlink and path caps', async () => {
    const { clock, network, arrivals, add } = setup((from, to) =>
      from === 'a' && to === 'c'
        ? { latencyS: 0, capacity: Schedule.constant(10_000) }
        : { latencyS: 0 },
    );
    add('a', 100_000, 1e9, Infinity);
    add('b', 1e9, 30_000);
    add('c', 1e9);
    add('d', 1e9);
    network.send('a', 'b', message(60_000, 1)); // limited by b's downlink: 30 kB/s
    network.send('a', 'c', message(10_000, 2)); // limited by the path: 10 kB/s
    network.send('a', 'd', message(60_000, 3)); // gets the rest of a's uplink: 60 kB/s
    expect(network.rateBytesPerSec('a', 'b')).toBeCloseTo(30_000);
    expect(network.rateBytesPerSec('a', 'c')).toBeCloseTo(10_000);
    expect(network.rateBytesPerSec('a', 'd')).toBeCloseTo(60_000);
    await clock.run();
    const at = new Map(arrivals.map((a) => [tagOf(a.bytes), a.at]));
    expect(at.get(3)).toBeCloseTo(1, 6);
    expect(at.get(2)).toBeCloseTo(1, 6);
    // After 1 s, b's flow is alone but still capped by b's downlink: 30 kB left at 30 kB/s.
    expect(at.get(1)).toBeCloseTo(2, 6);
  });

  it('adds latency and jitter but keeps a channel in order', async () => {
    const { clock, network, arrivals, add } = setup(() => ({ latencyS: 0.05, jitterS: 0.2 }));
    add('a', 1e7, 1e9, Infinity);
    add('b', 1e9);
    for (let i = 0; i < 50; i++) network.send('a', 'b', message(1_000, i));
    await clock.run();
    const tags = arrivals.map((a) => tagOf(a.bytes));
    expect(tags).toEqual([...tags].sort((x, y) => x - y));
    for (const a of arrivals) expect(a.at).toBeGreaterThanOrEqual(0.05 + 0.0001 * tagOf(a.bytes));
    expect(Math.max(...arrivals.map((a) => a.at))).toBeLessThan(0.05 + 0.2 + 0.006);
  });

  it('skips sends over the safety valve and reports overflow past 16 MiB', async () => {
    const { clock, network, add } = setup();
    add('a', 1_000, 1e9, 10_000); // valve at 10 kB
    add('b', 1e9);
    add('c', 1_000, 1e9, Infinity); // no valve: the data channel limit applies
    expect(network.send('a', 'b', message(6_000, 0))).toBe('queued');
    expect(network.send('a', 'b', message(6_000, 1))).toBe('skipped');
    expect(network.backlogBytes('a', 'b')).toBe(6_000);
    expect(network.counters('a', 'b')!.messagesSkipped).toBe(1);
    const big = message(200_000, 0);
    let results = 0;
    while (network.send('c', 'b', big) === 'queued') results++;
    expect(results).toBe(Math.floor(DATA_CHANNEL_LIMIT_BYTES / 200_000));
    expect(network.counters('c', 'b')!.overflows).toBe(1);
    // Once the queue drains, the valve lets sends through again.
    await clock.run(7);
    expect(network.send('a', 'b', message(6_000, 2))).toBe('queued');
  });

  it('measures backlog, busy time and goodput per interval', async () => {
    const { clock, network, add } = setup();
    add('a', 1_000, 1e9, Infinity);
    add('b', 1e9);
    network.send('a', 'b', message(500, 0));
    clock.at(2, () => {});
    await clock.run();
    const interval = network.collect();
    const ch = interval.channels.find((c) => c.from === 'a')!;
    expect(ch.transmittedBytes).toBeCloseTo(500);
    expect(ch.busyFraction).toBeCloseTo(0.25); // 0.5 s of 2 s
    expect(ch.meanBacklogBytes).toBeCloseTo((500 * 0.5) / 2 / 2); // triangle area / span
    expect(interval.sendBusyFraction.get('a')).toBeCloseTo(0.25);
  });

  it('drops queued and in-flight messages when a node leaves', async () => {
    const { clock, network, arrivals, add } = setup(() => ({ latencyS: 1 }));
    add('a', 1_000, 1e9, Infinity);
    add('b', 1e9);
    network.send('a', 'b', message(100, 0)); // transmitted at 0.1 s, arrives at 1.1 s
    network.send('a', 'b', message(5_000, 1)); // still queued at 0.5 s
    clock.at(0.5, () => network.removeNode('b'));
    await clock.run();
    expect(arrivals).toHaveLength(0);
    expect(network.send('a', 'b', message(10, 2))).toBe('closed');
    expect(network.hasNode('b')).toBe(false);
  });
});
