/**
 * Shaped links for end-to-end balancer tests (docs/recipes.md, "Shaped links"): one
 * network namespace per volunteer, a veth pair to the host namespace, and a `tbf` rate limit on
 * both ends of the pair. Each namespace has its own small subnet; the host side is the
 * namespace's default route and the host forwards between subnets, so volunteers in different
 * namespaces reach each other (WebRTC host candidates) and the job server (listening on the host)
 * through their own shaped link only.
 *
 *   volunteer ns ──veth── host ──veth── volunteer ns
 *        upload: tbf on the namespace end;  download: tbf on the host end
 *
 * Needs root and iproute2 (`ip netns`, `tc`). Everything a lab makes carries its prefix, and
 * `NetnsLab.removeStale` deletes leftovers of that prefix from an earlier run that died. Two runs
 * of one lab on one machine would share names and subnets, and the second's clean-up would tear
 * down the first's links mid-test, so a run first takes the lab's lock (`NetnsLab.lock`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Subnets are 10.<SUBNET_OCTET>.<n>.0/30, n = 1, 2, … (host end .1, namespace end .2). */
const SUBNET_OCTET = 213;
/** The host's IPv4 forwarding switch (no `sysctl` binary needed: minimal images lack procps). */
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
/**
 * How long a run waits for another run of the same lab on this machine to finish, ms: a whole
 * balancer spec takes 2–4 minutes, more on a loaded machine.
 */
export const LAB_LOCK_WAIT_MS = 15 * 60_000;
const LAB_LOCK_POLL_MS = 2_000;
/** A lock directory younger than this without an owner file is still being taken, ms. */
const LAB_LOCK_GRACE_MS = 5_000;
/** Longest Linux interface name (IFNAMSIZ − 1). */
const MAX_IFNAME = 15;
/**
 * Queue the token bucket holds before it drops, as time at the rate. Short, as at a home
 * router: SCTP's congestion control sees the drops and keeps its window near the rate, so a
 * sender's excess waits in the data channel (`bufferedAmount`), where the balancer can see it.
 */
const TBF_LATENCY_MS = 100;

export interface ShapedLinkSpec {
  /** Short name, e.g. `fast`; the namespace is `<prefix><name>`. */
  readonly name: string;
  /** Rate from the volunteer out (its upload), kbit/s. */
  readonly uploadKbit: number;
  /** Rate to the volunteer (its download), kbit/s. */
  readonly downloadKbit: number;
}

export interface ShapedLink extends ShapedLinkSpec {
  readonly namespace: string;
  /** The veth end in the host namespace (its egress is the volunteer's download). */
  readonly hostInterface: string;
  /** The veth end in the volunteer's namespace (its egress is the volunteer's upload). */
  readonly namespaceInterface: string;
  /** Host end's address: the namespace's gateway, and where it reaches the host's servers. */
  readonly hostAddress: string;
  readonly namespaceAddress: string;
}

/** Byte counters of a link's two directions, from the kernel (`ip -s link`). */
export interface LinkCounters {
  readonly uploadBytes: number;
  readonly downloadBytes: number;
}

function run(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command whose failure is expected now and then (deleting what may not exist). */
function tryRun(cmd: string, args: readonly string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/**
 * Why this machine cannot make namespaces, or null when it can: tries to add (and delete) one
 * throwaway namespace.
 */
export function netnsRefusedReason(prefix: string): string | null {
  const probe = `${prefix}probe`;
  tryRun('ip', ['netns', 'delete', probe]);
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error) return `ip netns add failed: ${r.error.message}`;
  if (r.status !== 0) return `ip netns add refused: ${(r.stderr || r.stdout).trim()}`;
  tryRun('ip', ['netns', 'delete', probe]);
  return null;
}

/** tbf parameters for a rate: a burst of at least one jiffy's bytes at HZ=100, and ≥ 2 MTUs. */
function tbfArgs(rateKbit: number): string[] {
  const burstBytes = Math.max(3_200, Math.ceil((rateKbit * 1000) / 8 / 100));
  return [
    'tbf',
    'rate',
    `${rateKbit}kbit`,
    'burst',
    String(burstBytes),
    'latency',
    `${TBF_LATENCY_MS}ms`,
  ];
}

export class NetnsLab {
  readonly links: ShapedLink[] = [];
  private forwardingBefore: string | null = null;
  private wrapperDir: string | null = null;
  private lockDir: string | null = null;

  /** `prefix` names everything the lab makes; keep it short (interface names ≤ 15 chars). */
  constructor(readonly prefix: string) {}

  /**
   * Takes the lab's machine-wide lock (a directory holding the owner's pid), waiting up to
   * LAB_LOCK_WAIT_MS while a live process holds it. A lock whose owner is gone is taken over.
   * `cleanup` releases it.
   */
  async lock(): Promise<void> {
    const dir = join(tmpdir(), `${this.prefix}lock`);
    const ownerFile = join(dir, 'pid');
    const deadline = Date.now() + LAB_LOCK_WAIT_MS;
    for (;;) {
      try {
        mkdirSync(dir);
        writeFileSync(ownerFile, String(process.pid));
        this.lockDir = dir;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let owner: number | null = null;
      try {
        owner = Number(readFileSync(ownerFile, 'utf8'));
      } catch {
        // No owner file yet: being taken right now, unless it was left half-made long ago.
        if (Date.now() - lockAge(dir) > LAB_LOCK_GRACE_MS)
          rmSync(dir, { recursive: true, force: true });
      }
      if (owner !== null && !processAlive(owner)) {
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `another run (pid ${String(owner)}) has held the ${this.prefix} network namespaces for ` +
            `${LAB_LOCK_WAIT_MS / 60_000} minutes (lock ${dir})`,
        );
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, LAB_LOCK_POLL_MS));
    }
  }

  /** Deletes namespaces and host-side veths of this prefix left by an earlier run. */
  removeStale(): void {
    const namespaces = run('ip', ['netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(this.prefix));
    for (const ns of namespaces) tryRun('ip', ['netns', 'delete', ns]);
    const interfaces = run('ip', ['-o', 'link', 'show'])
      .split('\n')
      .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
      .filter((n) => n.startsWith(this.prefix));
    for (const dev of interfaces) tryRun('ip', ['link', 'delete', dev]);
  }

  /**
   * Makes one namespace per spec, links it to the host and turns on forwarding. Links are not
   * shaped yet (volunteers download their data shard first): call `shape`.
   */
  setup(specs: readonly ShapedLinkSpec[]): ShapedLink[] {
    if (this.lockDir === null) throw new Error('NetnsLab.setup: take the lab lock first (lock())');
    this.removeStale();
    this.forwardingBefore = readFileSync(IP_FORWARD, 'utf8').trim();
    writeFileSync(IP_FORWARD, '1');
    for (const [i, spec] of specs.entries()) {
      const namespace = `${this.prefix}${spec.name}`;
      const hostInterface = `${namespace}-h`;
      const namespaceInterface = `${namespace}-n`;
      if (hostInterface.length > MAX_IFNAME) {
        throw new Error(`interface name ${hostInterface} is longer than ${MAX_IFNAME} characters`);
      }
      const subnet = `10.${SUBNET_OCTET}.${i + 1}`;
      const link: ShapedLink = {
        ...spec,
        namespace,
        hostInterface,
        namespaceInterface,
        hostAddress: `${subnet}.1`,
        namespaceAddress: `${subnet}.2`,
      };
      this.links.push(link);
      const inNs = (...args: string[]) => run('ip', ['-n', namespace, ...args]);
      run('ip', ['netns', 'add', namespace]);
      run('ip', ['link', 'add', hostInterface, 'type', 'veth', 'peer', 'name', namespaceInterface]);
      run('ip', ['link', 'set', namespaceInterface, 'netns', namespace]);
      run('ip', ['addr', 'add', `${link.hostAddress}/30`, 'dev', hostInterface]);
      run('ip', ['link', 'set', hostInterface, 'up']);
      inNs('addr', 'add', `${link.namespaceAddress}/30`, 'dev', namespaceInterface);
      inNs('link', 'set', 'lo', 'up');
      inNs('link', 'set', namespaceInterface, 'up');
      inNs('route', 'add', 'default', 'via', link.hostAddress);
    }
    return this.links;
  }

  /** Sets (or changes) the rates of a link's two directions; default: the spec's rates. */
  shape(link: ShapedLink, uploadKbit = link.uploadKbit, downloadKbit = link.downloadKbit): void {
    const up = tbfArgs(uploadKbit);
    const down = tbfArgs(downloadKbit);
    run('tc', ['qdisc', 'replace', 'dev', link.hostInterface, 'root', ...down]);
    run('tc', [
      '-n',
      link.namespace,
      'qdisc',
      'replace',
      'dev',
      link.namespaceInterface,
      'root',
      ...up,
    ]);
  }

  /** Bytes the kernel moved over the link so far, each direction (from the volunteer's side). */
  counters(link: ShapedLink): LinkCounters {
    const bytes = (dev: string, dir: 'rx' | 'tx') =>
      Number(readFileSync(`/sys/class/net/${dev}/statistics/${dir}_bytes`, 'utf8').trim());
    // The host end transmits what the volunteer downloads and receives what it uploads.
    return {
      uploadBytes: bytes(link.hostInterface, 'rx'),
      downloadBytes: bytes(link.hostInterface, 'tx'),
    };
  }

  /** The `tc -s` statistics of a link's two qdiscs (sent, dropped, overlimits), for logs. */
  qdiscStats(link: ShapedLink): string {
    const show = (args: string[]) =>
      run('tc', [...args])
        .replace(/\s+/g, ' ')
        .trim();
    return (
      `download ${show(['-s', 'qdisc', 'show', 'dev', link.hostInterface])}; ` +
      `upload ${show(['-n', link.namespace, '-s', 'qdisc', 'show', 'dev', link.namespaceInterface])}`
    );
  }

  /**
   * An executable that runs `binary` inside the link's namespace with the arguments it is given,
   * for Playwright's `executablePath`. `ip netns exec` execs the browser in place, so the pipe
   * Playwright drives it through (`--remote-debugging-pipe`, fds 3 and 4) stays connected.
   *
   * Chromium honours only the last `--enable-features`/`--disable-features` switch and
   * Playwright passes its own: the wrapper merges every switch of each kind, with the names in
   * `extraDisabledFeatures` added, into one.
   */
  browserWrapper(
    link: ShapedLink,
    binary: string,
    extraDisabledFeatures: readonly string[] = [],
  ): string {
    this.wrapperDir ??= mkdtempSync(join(tmpdir(), `${this.prefix}wrappers-`));
    const path = join(this.wrapperDir, `${link.namespace}.sh`);
    const script = `#!/bin/bash
# Made by e2e/harness/netns.ts: Chromium in network namespace ${link.namespace}.
disabled=${JSON.stringify(extraDisabledFeatures.join(','))}
enabled=""
args=()
for a in "$@"; do
  case "$a" in
    --disable-features=*) disabled="$disabled,\${a#--disable-features=}" ;;
    --enable-features=*) enabled="$enabled,\${a#--enable-features=}" ;;
    *) args+=("$a") ;;
  esac
done
disabled="\${disabled#,}"; enabled="\${enabled#,}"
[ -n "$disabled" ] && args+=("--disable-features=$disabled")
[ -n "$enabled" ] && args+=("--enable-features=$enabled")
exec ip netns exec ${link.namespace} ${binary} "\${args[@]}"
`;
    writeFileSync(path, script);
    chmodSync(path, 0o755);
    return path;
  }

  /**
   * Removes every namespace (which deletes its veth pair and both qdiscs), the wrappers, and
   * restores the forwarding setting. Safe to call twice and after a failed setup.
   */
  cleanup(): void {
    if (this.forwardingBefore !== null) {
      writeFileSync(IP_FORWARD, this.forwardingBefore);
      this.forwardingBefore = null;
    }
    if (this.wrapperDir) rmSync(this.wrapperDir, { recursive: true, force: true });
    this.wrapperDir = null;
    for (const link of this.links.splice(0)) {
      tryRun('ip', ['netns', 'delete', link.namespace]);
      tryRun('ip', ['link', 'delete', link.hostInterface]);
    }
    // Without the lock (a run that never got it), what is left belongs to the run that holds it.
    if (this.lockDir === null) return;
    this.removeStale();
    rmSync(this.lockDir, { recursive: true, force: true });
    this.lockDir = null;
  }
}

/** When `dir` was last changed, ms since the epoch (0 when it is gone). */
function lockAge(dir: string): number {
  try {
    return statSync(dir).mtimeMs;
  } catch {
    return 0;
  }
}

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
