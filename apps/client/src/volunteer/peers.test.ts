import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BACKLOG_HARD_LIMIT_BYTES,
  BACKLOG_LOW_WATER_BYTES,
  CONNECT_TIMEOUT_MS,
  MAX_RELAY_BYTES,
  RECONNECT_AFTER_MS,
} from '@meshgrad/core';
import { MemoryNetwork } from './memory-links.ts';
import {
  GLARE_ANSWER_WAIT_MS,
  IDLE_LINK_CLOSE_MS,
  OFFER_WAIT_MS,
  PeerMesh,
  VALVE_RECHECK_MS,
  type PeerMeshOptions,
} from './peers.ts';

/** One volunteer's mesh on the memory network, and what it handed to the page. */
interface Volunteer {
  readonly mesh: PeerMesh;
  readonly received: Array<{ from: string; bytes: number }>;
  readonly relayed: Array<{ to: string; bytes: number }>;
  readonly relay: { available: boolean };
  /** How often the mesh said its status changed. */
  readonly changes: number;
}

function volunteer(
  network: MemoryNetwork,
  id: string,
  extra: Partial<Pick<PeerMeshOptions, 'valve'>> = {},
): Volunteer {
  const relay = { available: true };
  const received: Volunteer['received'] = [];
  const relayed: Volunteer['relayed'] = [];
  const { createLink, signal } = network.join(id);
  let changes = 0;
  const mesh = new PeerMesh({
    selfId: id,
    createLink,
    signal,
    relay: {
      get available() {
        return relay.available;
      },
      send: (to, data) => relayed.push({ to, bytes: data.byteLength }),
    },
    onMessage: (from, data) => received.push({ from, bytes: data.byteLength }),
    onChange: () => changes++,
    now: () => Date.now(),
    ...extra,
  });
  network.listen(id, (from, data) => mesh.handleSignal(from, data));
  meshes.push(mesh);
  return {
    mesh,
    received,
    relayed,
    relay,
    get changes() {
      return changes;
    },
  };
}

const message = (bytes: number) => new ArrayBuffer(bytes);

/** Every mesh a test made, destroyed after it. */
const meshes: PeerMesh[] = [];

/**
 * Volunteers a and b on a fresh memory network, each naming the other, with the links made
 * (`a`'s options from `extra`); `link` is a's end.
 */
function linkedPair(extra: Partial<Pick<PeerMeshOptions, 'valve'>> = {}) {
  const network = new MemoryNetwork();
  const a = volunteer(network, 'a', extra);
  const b = volunteer(network, 'b');
  a.mesh.setNeighbours(['b']);
  b.mesh.setNeighbours(['a']);
  network.settle();
  const link = network.open('a')[0];
  if (!link) throw new Error('no link opened between a and b');
  return { network, a, b, link };
}

/** The route the mesh reports for `peer` at its next measurement. */
async function routeTo(v: Volunteer, peer: string) {
  return (await v.mesh.report()).find((r) => r.peer === peer);
}

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
});
afterEach(() => {
  for (const mesh of meshes.splice(0)) mesh.destroy();
  vi.useRealTimers();
});

describe('PeerMesh on links in memory', () => {
  it('opens one direct link between two neighbours and carries messages both ways', async () => {
    const { network, a, b } = linkedPair();

    expect(a.mesh.status()).toEqual([{ peer: 'b', ready: true, maxMessageBytes: 65_536 }]);
    expect(b.mesh.status()).toEqual([{ peer: 'a', ready: true, maxMessageBytes: 65_536 }]);
    expect(network.open('a')).toHaveLength(1);
    expect(network.open('b')).toHaveLength(1);
    // The smaller id offered; the other side waited and only answered.
    expect(network.links.map((l) => l.id)).toEqual(['a#1', 'b#2']);

    expect(a.mesh.send('b', message(1000))).toBe(true);
    expect(b.mesh.send('a', message(2000))).toBe(true);
    for (const link of network.links) link.deliver();
    expect(b.received).toEqual([{ from: 'a', bytes: 1000 }]);
    expect(a.received).toEqual([{ from: 'b', bytes: 2000 }]);
    expect(a.relayed).toEqual([]);
    expect(b.relayed).toEqual([]);
    expect((await routeTo(a, 'b'))?.route).toBe('direct');
  });

  it('glare: when both sides offer at once, the smaller id wins and one link opens', async () => {
    const network = new MemoryNetwork();
    const a = volunteer(network, 'a');
    const b = volunteer(network, 'b');
    // b names a first: it waits OFFER_WAIT_MS for a's offer, then offers itself, just as a
    // (now naming b) offers too. Both offers and their candidates cross on the wire.
    b.mesh.setNeighbours(['a']);
    vi.advanceTimersByTime(OFFER_WAIT_MS);
    a.mesh.setNeighbours(['b']);
    network.settle();

    // b's first (answering) link, replaced by its own offer, then replaced again to answer a's.
    expect(network.links.filter((l) => l.owner === 'b')).toHaveLength(3);
    expect(network.open('a')).toHaveLength(1);
    expect(network.open('b')).toHaveLength(1);
    // a's link is the one that opened (its offer won), and no link failed on a stray candidate.
    const aLink = network.open('a')[0];
    expect(aLink?.id.startsWith('a#')).toBe(true);
    expect(network.links.filter((l) => l.closeError?.code === 'ERR_LINK_FAILED')).toEqual([]);
    expect(a.mesh.status()[0]?.ready).toBe(true);
    expect(b.mesh.status()[0]?.ready).toBe(true);
    expect((await routeTo(a, 'b'))?.route).toBe('direct');
    expect((await routeTo(b, 'a'))?.route).toBe('direct');
  });

  it("glare after a lost offer: the smaller id answers the peer's offer, in time, no relay", async () => {
    const network = new MemoryNetwork();
    const a = volunteer(network, 'a');
    const b = volunteer(network, 'b');
    // a offers, but its offer and candidates are lost on the way (as a signal refused by a
    // process that does not know b yet). b names a, waits for an offer, then offers itself.
    network.blocked = true;
    a.mesh.setNeighbours(['b']);
    network.settle();
    network.blocked = false;
    b.mesh.setNeighbours(['a']);
    vi.advanceTimersByTime(OFFER_WAIT_MS);
    network.settle();
    // Glare at a: its own offer wins, so it waits for b's answer, which cannot come.
    expect(network.open('a')).toEqual([]);
    vi.advanceTimersByTime(GLARE_ANSWER_WAIT_MS);
    network.settle();
    // a answered b's offer instead, before either side's connect timeout.
    expect(OFFER_WAIT_MS + GLARE_ANSWER_WAIT_MS).toBeLessThan(CONNECT_TIMEOUT_MS);
    expect(network.open('a')).toHaveLength(1);
    expect(network.open('b')).toHaveLength(1);
    expect((await routeTo(a, 'b'))?.route).toBe('direct');
    expect((await routeTo(b, 'a'))?.route).toBe('direct');
    // And it stays up past the connect timeouts: nothing falls back to the relay.
    vi.advanceTimersByTime(CONNECT_TIMEOUT_MS);
    network.settle();
    expect(a.mesh.send('b', message(100))).toBe(true);
    expect(a.relayed).toEqual([]);
    expect(b.relayed).toEqual([]);
  });

  it('keeps a link the peer opened while the peer sends, and closes it once idle', async () => {
    const network = new MemoryNetwork();
    const a = volunteer(network, 'a');
    const b = volunteer(network, 'b');
    // One-way lists: a sends to b, b names nobody.
    a.mesh.setNeighbours(['b']);
    b.mesh.setNeighbours([]);
    network.settle();
    expect(network.open('b')).toHaveLength(1);
    // b offers the training loop no link to a: it does not send to a.
    expect(b.mesh.status()).toEqual([]);

    vi.advanceTimersByTime(IDLE_LINK_CLOSE_MS - 10_000);
    a.mesh.send('b', message(100));
    network.open('a')[0]?.deliver();
    vi.advanceTimersByTime(IDLE_LINK_CLOSE_MS - 10_000);
    // Heard from a 50 s ago: kept (it would have gone by now without that message).
    expect((await b.mesh.report()).map((r) => r.peer)).toEqual(['a']);
    expect(network.open('b')).toHaveLength(1);

    vi.advanceTimersByTime(20_000);
    expect(await b.mesh.report()).toEqual([]);
    expect(network.open('b')).toEqual([]);
    network.settle();
    // a still names b: the lost link puts the pair on the relay until a retries.
    expect(network.open('a')).toEqual([]);
    expect((await routeTo(a, 'b'))?.route).toBe('server');
  });

  it('a link that never connects falls back to the server relay, then goes direct again', async () => {
    const network = new MemoryNetwork();
    const a = volunteer(network, 'a');
    const b = volunteer(network, 'b');
    network.blocked = true;
    a.mesh.setNeighbours(['b']);
    b.mesh.setNeighbours(['a']);
    network.settle();

    // While the link connects, sends are skipped (counted), not relayed.
    expect(a.mesh.status()).toEqual([{ peer: 'b', ready: false, maxMessageBytes: 65_536 }]);
    expect(a.mesh.send('b', message(500))).toBe(false);
    expect(a.relayed).toEqual([]);

    vi.advanceTimersByTime(CONNECT_TIMEOUT_MS);
    const report = await routeTo(a, 'b');
    expect(report).toMatchObject({
      route: 'server',
      lastError: 'ERR_LINK_CONNECT_TIMEOUT',
      dropped: 1,
    });
    expect(a.mesh.status()).toEqual([{ peer: 'b', ready: true, maxMessageBytes: MAX_RELAY_BYTES }]);
    expect(a.mesh.send('b', message(500))).toBe(true);
    expect(a.relayed).toEqual([{ to: 'b', bytes: 500 }]);
    // A relayed message from the peer reaches the page like a direct one.
    b.mesh.receiveRelayed('a', message(300));
    expect(b.received).toEqual([{ from: 'a', bytes: 300 }]);

    // The relay down: the send is refused and counted, nothing is queued anywhere.
    a.relay.available = false;
    expect(a.mesh.status()[0]?.ready).toBe(false);
    expect(a.mesh.send('b', message(500))).toBe(false);
    expect((await routeTo(a, 'b'))?.dropped).toBe(2);
    a.relay.available = true;

    // The network heals: the offering side retries first and the pair goes direct.
    network.blocked = false;
    vi.advanceTimersByTime(RECONNECT_AFTER_MS);
    network.settle();
    expect(network.open('a')).toHaveLength(1);
    expect((await routeTo(a, 'b'))?.route).toBe('direct');
    expect((await routeTo(b, 'a'))?.route).toBe('direct');
    expect(a.mesh.send('b', message(700))).toBe(true);
    expect(a.relayed).toHaveLength(1);
    // The answering side's own later retry finds the link made and leaves it alone.
    const linksBefore = network.links.length;
    vi.advanceTimersByTime(RECONNECT_AFTER_MS);
    network.settle();
    expect(network.links.length).toBe(linksBefore);
  });

  it('backpressure: a full link takes no messages until bufferedamountlow; the ceiling drops', async () => {
    const { a, b, link } = linkedPair();

    const size = 64 * 1024;
    let sent = 0;
    while (a.mesh.status()[0]?.ready) {
      expect(a.mesh.send('b', message(size))).toBe(true);
      sent++;
      if (sent > 1000) throw new Error('the link never filled');
    }
    // Not ready from the send that reached the hard limit on.
    expect(link.bufferedAmount).toBeGreaterThanOrEqual(BACKLOG_HARD_LIMIT_BYTES);
    expect(link.bufferedAmount).toBeLessThan(BACKLOG_HARD_LIMIT_BYTES + size);
    const changesWhenFull = a.changes;

    // A racing send past the link's queue ceiling is refused by the link and counted.
    while (a.mesh.send('b', message(size))) sent++;
    expect((await routeTo(a, 'b'))?.dropped).toBe(1);

    // Draining to just above the low-water mark is not enough ...
    const aboveLowWater = Math.ceil((link.bufferedAmount - BACKLOG_LOW_WATER_BYTES) / size) - 1;
    link.deliver(aboveLowWater);
    expect(link.bufferedAmount).toBeGreaterThan(BACKLOG_LOW_WATER_BYTES);
    expect(a.mesh.status()[0]?.ready).toBe(false);
    // ... the next message takes it there, `bufferedamountlow` fires and the link is ready.
    link.deliver(1);
    expect(a.changes).toBe(changesWhenFull + 1);
    expect(a.mesh.status()[0]?.ready).toBe(true);
    link.deliver();
    expect(b.received).toHaveLength(sent);
  });

  it('the local safety valve holds sends back until the channels drain under it', () => {
    const limit = { limitBytes: 200_000, nextSendBytes: 50_000 };
    const { a, link } = linkedPair({ valve: () => limit });

    for (let i = 0; i < 3; i++) expect(a.mesh.send('b', message(50_000))).toBe(true);
    // 150,000 buffered + the next 50,000 fits 200,000; one more would not.
    expect(a.mesh.status()[0]?.ready).toBe(true);
    a.mesh.send('b', message(50_000));
    expect(a.mesh.status()[0]?.ready).toBe(false);

    const changes = a.changes;
    link.deliver(1);
    vi.advanceTimersByTime(VALVE_RECHECK_MS);
    // The valve's own recheck saw the drain and said so, without waiting for a status poll.
    expect(a.changes).toBe(changes + 1);
    expect(a.mesh.status()[0]?.ready).toBe(true);
  });

  it('the valve holds at the send too: a burst of sends from a stale status cannot pass it', async () => {
    const limit = { limitBytes: 200_000, nextSendBytes: 50_000 };
    const { a, link } = linkedPair({ valve: () => limit });
    expect(a.mesh.status()[0]?.ready).toBe(true);

    // Ten sends decided by the worker while the status still said ready, as on a busy page.
    const accepted = Array.from({ length: 10 }, () => a.mesh.send('b', message(50_000)));
    expect(accepted.filter(Boolean)).toHaveLength(4);
    expect(link.bufferedAmount).toBeLessThanOrEqual(limit.limitBytes);
    expect(a.mesh.status()[0]?.ready).toBe(false);
    expect((await routeTo(a, 'b'))?.dropped).toBe(6);

    // Once drained, sends pass again; a message larger than the limit still goes alone.
    link.deliver(4);
    vi.advanceTimersByTime(VALVE_RECHECK_MS);
    expect(a.mesh.status()[0]?.ready).toBe(true);
    link.maxMessageSize = 1_000_000;
    expect(a.mesh.send('b', message(250_000))).toBe(true);
    expect(a.mesh.send('b', message(1_000))).toBe(false);
  });
});
