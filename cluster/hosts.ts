/**
 * A cluster of hosts on one machine (reference F): each host is a Linux network namespace with its
 * own address on a private bridge, and its own mount namespace, where a tmpfs covers /dev/shm and
 * the host's "local disk" (`<root>/local`), so a file one host writes there is invisible to the
 * others and to the client. Everything else of the file system is shared, as a shared mount
 * (NFS, a cluster file system) would be.
 *
 * Needs root (`ip netns`, veth, bridge, `unshare`, `nsenter`, `tc`). Only loopback and the addresses
 * of the bridge's own subnet are used. `stop()` removes every process, namespace and link, and a
 * cluster left by a killed process is removed by `removeStaleClusters()`.
 *
 * Topology, for `hosts: 3` with id K:
 *   root namespace (client, driver, Spark master): bridge srK-br at 10.213.K.1/24
 *   host i (i = 1..3): netns srK-h<i>, eth0 at 10.213.K.(10+i)/24, veth srK-v<i> on the bridge
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A link's shape, as `tc` takes it: rate (tbf), delay and loss (netem). */
export interface LinkShape {
  rate?: string;
  delay?: string;
  loss?: string;
}

export interface Host {
  /** host1, host2, ... */
  name: string;
  /** The network namespace. */
  netns: string;
  address: string;
  /** The host's end of its link, in the root namespace (on the bridge). */
  veth: string;
  /** The process that holds the host's mount namespace (its private /dev/shm and local disk). */
  keeperPid: number;
}

export interface ClusterOptions {
  hosts: number;
  link?: LinkShape;
}

const PREFIX = 'sr';
const SUBNET = (id: number): string => `10.213.${id}`;
const STATE_DIR = join(tmpdir(), 'sparkring-clusters');

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quietly(run: () => unknown): void {
  try {
    run();
  } catch {
    // already gone
  }
}

/** An id whose bridge and namespaces do not exist yet (another cluster may run at the same time). */
function freeId(): number {
  const links = ip('-o', 'link', 'show');
  const spaces = ip('netns', 'list');
  for (let tries = 0; tries < 200; tries++) {
    const id = 20 + Math.floor(Math.random() * 230);
    if (!links.includes(`${PREFIX}${id}-br`) && !spaces.includes(`${PREFIX}${id}-h`)) return id;
  }
  throw new Error('no free cluster id: remove stale clusters with `make cluster-down`');
}

export class HostCluster {
  readonly hosts: Host[] = [];
  /** The client's address on the bridge (the root namespace): the driver and the Spark master. */
  readonly clientAddress: string;
  readonly bridge: string;
  /** Holds every host's local disk mount point (`local/`) and the cluster's state. */
  readonly root: string;
  private readonly keepers: ChildProcess[] = [];
  private readonly processes: ChildProcess[] = [];

  private constructor(readonly id: number) {
    this.clientAddress = `${SUBNET(id)}.1`;
    this.bridge = `${PREFIX}${id}-br`;
    this.root = join(STATE_DIR, String(id));
  }

  /** The directory that is private to each host (a tmpfs of its own on every host). */
  get localDir(): string {
    return join(this.root, 'local');
  }

  static async start(o: ClusterOptions): Promise<HostCluster> {
    const c = new HostCluster(freeId());
    mkdirSync(c.localDir, { recursive: true });
    writeFileSync(join(c.root, 'owner'), String(process.pid));
    try {
      ip('link', 'add', c.bridge, 'type', 'bridge');
      ip('addr', 'add', `${c.clientAddress}/24`, 'dev', c.bridge);
      ip('link', 'set', c.bridge, 'up');
      for (let i = 1; i <= o.hosts; i++) await c.addHost(i, o.link);
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private async addHost(i: number, link: LinkShape | undefined): Promise<void> {
    const netns = `${PREFIX}${this.id}-h${i}`;
    const veth = `${PREFIX}${this.id}-v${i}`;
    const peer = `${PREFIX}${this.id}-p${i}`;
    const address = `${SUBNET(this.id)}.${10 + i}`;
    ip('netns', 'add', netns);
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', peer);
    ip('link', 'set', peer, 'netns', netns);
    ip('-n', netns, 'link', 'set', peer, 'name', 'eth0');
    ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', netns, 'link', 'set', 'eth0', 'up');
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('link', 'set', veth, 'master', this.bridge);
    ip('link', 'set', veth, 'up');
    // The keeper holds the host's mount namespace; everything on the host enters it (nsenter).
    const keeper = spawn(
      'ip',
      [
        'netns',
        'exec',
        netns,
        'unshare',
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        `mount -t tmpfs -o size=2g tmpfs /dev/shm && mount -t tmpfs -o size=2g tmpfs '${this.localDir}' && echo ready && exec sleep infinity`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.keepers.push(keeper);
    await new Promise<void>((resolve, reject) => {
      keeper.stdout?.once('data', () => resolve());
      keeper.once('exit', (code) => reject(new Error(`host ${netns}: its mount namespace did not start (${code})`)));
    });
    const host: Host = { name: `host${i}`, netns, address, veth, keeperPid: keeper.pid as number };
    this.hosts.push(host);
    if (link) this.shape(host, link);
  }

  /** Shapes both directions of the host's link (tc tbf for the rate, netem for delay and loss). */
  shape(host: Host, link: LinkShape): void {
    for (const [ns, dev] of [
      [undefined, host.veth],
      [host.netns, 'eth0'],
    ] as const) {
      const tc = (...args: string[]): string =>
        execFileSync(ns ? 'ip' : 'tc', ns ? ['netns', 'exec', ns, 'tc', ...args] : args, {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      quietly(() => tc('qdisc', 'del', 'dev', dev, 'root'));
      const netem = [...(link.delay ? ['delay', link.delay] : []), ...(link.loss ? ['loss', link.loss] : [])];
      if (netem.length > 0) {
        tc('qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'netem', ...netem);
        if (link.rate) tc('qdisc', 'add', 'dev', dev, 'parent', '1:', 'handle', '2:', 'tbf', ...tbf(link.rate));
      } else if (link.rate) {
        tc('qdisc', 'add', 'dev', dev, 'root', 'tbf', ...tbf(link.rate));
      }
    }
  }

  /** The command line that runs `command` on `host` (its network and mount namespaces). */
  on(host: Host, command: string[]): string[] {
    return ['nsenter', '-t', String(host.keeperPid), '-n', '-m', '--', ...command];
  }

  /** A process of the cluster outside the hosts (the Spark master): stop() ends it too. */
  adopt(child: ChildProcess): void {
    this.processes.push(child);
    // Written down, so that removeStaleClusters() ends it if this process is killed before stop().
    const started = child.pid === undefined ? undefined : startTime(child.pid);
    if (started !== undefined) appendFileSync(join(this.root, 'adopted'), `${child.pid} ${started}\n`);
  }

  /** Starts a long-running process on `host`; stop() ends it. */
  spawnOn(host: Host, command: string[], env: NodeJS.ProcessEnv, stdio: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
    const [file, ...args] = this.on(host, command) as [string, ...string[]];
    const child = spawn(file, args, { env, stdio: ['ignore', stdio, stdio] });
    this.processes.push(child);
    return child;
  }

  /** Runs `command` on `host` to its end and returns its stdout. */
  run(host: Host, command: string[]): string {
    const [file, ...args] = this.on(host, command) as [string, ...string[]];
    return execFileSync(file, args, { encoding: 'utf8' });
  }

  /** Cuts the host off (its link goes down, as a pulled cable). */
  cut(host: Host): void {
    ip('link', 'set', host.veth, 'down');
  }

  restore(host: Host): void {
    ip('link', 'set', host.veth, 'up');
  }

  /**
   * Loses the host for good, as a machine that dies: every process on it (its Spark worker, the
   * executors, the Node workers) killed, and its link down. The namespace itself stays (its keeper
   * holds the mount namespace), so stop() still removes it.
   */
  lose(host: Host): void {
    this.cut(host);
    for (const pid of ip('netns', 'pids', host.netns).split('\n').filter(Boolean)) {
      if (Number(pid) !== host.keeperPid) quietly(() => process.kill(Number(pid), 'SIGKILL'));
    }
  }

  /**
   * Makes `target` unreachable from every other host for TCP between ephemeral ports (a peer's
   * connection to the port a ring listens on), while Spark's fixed ports still work both ways (a
   * fixed spark.blockManager.port for shuffles and broadcasts, the driver in the root namespace): a
   * routing rule in each other host that answers "unreachable". The rule matches the source port
   * too: a routing rule is stateless, so without it the answers to `target`'s own connections to a
   * peer's fixed port (a broadcast piece it fetches from a peer) would be cut as well, and its task
   * would wait on that fetch instead of failing on the ring.
   */
  isolateFromPeers(target: Host): void {
    for (const h of this.hosts) {
      if (h !== target) ip('-n', h.netns, 'rule', 'add', ...this.ephemeralTo(target), 'unreachable');
    }
  }

  rejoin(target: Host): void {
    for (const h of this.hosts) {
      if (h !== target) quietly(() => ip('-n', h.netns, 'rule', 'del', ...this.ephemeralTo(target), 'unreachable'));
    }
  }

  private ephemeralTo(target: Host): string[] {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    return ['to', `${target.address}/32`, 'ipproto', 'tcp', 'sport', `${low}-${high}`, 'dport', `${low}-${high}`];
  }

  /** The processes on `host` whose command line matches `pattern`, as "pid command". */
  processesOn(host: Host, pattern: RegExp): string[] {
    const pids = ip('netns', 'pids', host.netns).split('\n').filter(Boolean);
    const out: string[] = [];
    for (const pid of pids) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
      } catch {
        continue;
      }
      if (pattern.test(cmd)) out.push(`${pid} ${cmd}`);
    }
    return out;
  }

  /** What a run may have left on each host: Node workers and sparkring files in /dev/shm. */
  leftovers(): string[] {
    const found: string[] = [];
    for (const h of this.hosts) {
      for (const p of this.processesOn(h, /sparkring|runtime\/main|agent\.js/)) {
        if (!/org\.apache\.spark\.deploy|sleep infinity/.test(p)) found.push(`${h.name}: process ${p}`);
      }
      const shm = this.run(h, ['ls', '-A', '/dev/shm']).split('\n').filter((f) => f.startsWith('sparkring'));
      for (const f of shm) found.push(`${h.name}: /dev/shm/${f}`);
    }
    return found;
  }

  async stop(): Promise<void> {
    for (const p of this.processes) quietly(() => p.kill('SIGKILL'));
    removeCluster(this.id); // kills everything in the hosts' namespaces, the keepers with them
    await Promise.all(
      [...this.processes, ...this.keepers].map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            setTimeout(resolve, 5000).unref();
          }),
      ),
    );
  }
}

function tbf(rate: string): string[] {
  // A burst of a few ms at the rate: enough for TSO-sized segments, small enough to hold the rate.
  const bits = parseRate(rate);
  const burst = Math.max(64 * 1024, Math.round(bits / 8 / 250));
  return ['rate', rate, 'burst', String(burst), 'latency', '50ms'];
}

/** Bits per second of a tc rate such as 10gbit, 1gbit or 100mbit. */
export function parseRate(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmg]?)bit$/i.exec(rate);
  if (!m) throw new Error(`link rate "${rate}": use tc's form, e.g. 10gbit, 1gbit, 100mbit`);
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m[2] as string).toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * scale;
}

function killNamespace(netns: string): void {
  let pids: string[] = [];
  try {
    pids = ip('netns', 'pids', netns).split('\n').filter(Boolean);
  } catch {
    return;
  }
  for (const pid of pids) quietly(() => process.kill(Number(pid), 'SIGKILL'));
  for (let i = 0; i < 50; i++) {
    if (ip('netns', 'pids', netns).trim() === '') break;
    execFileSync('sleep', ['0.1']);
  }
}

/** A process's start time (clock ticks since boot, /proc/PID/stat field 22): a pid with another is another process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Kills the root-namespace processes a cluster adopted (its Spark master), where they still run. */
function killAdopted(root: string): void {
  let lines: string[] = [];
  try {
    lines = readFileSync(join(root, 'adopted'), 'utf8').split('\n');
  } catch {
    return;
  }
  for (const line of lines) {
    const [pid, started] = line.split(' ');
    if (pid && started && startTime(Number(pid)) === started) quietly(() => process.kill(Number(pid), 'SIGKILL'));
  }
}

function removeCluster(id: number): void {
  killAdopted(join(STATE_DIR, String(id)));
  const spaces = ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}${id}-h`));
  for (const ns of spaces) {
    killNamespace(ns);
    quietly(() => ip('netns', 'del', ns));
  }
  const links = ip('-o', 'link', 'show')
    .split('\n')
    .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '')
    .filter((n) => n.startsWith(`${PREFIX}${id}-`));
  for (const l of links) quietly(() => ip('link', 'del', l));
  rmSync(join(STATE_DIR, String(id)), { recursive: true, force: true });
}

/** Removes the clusters whose owner process is gone (a test run that was killed). */
export function removeStaleClusters(all = false): number[] {
  if (!existsSync(STATE_DIR)) return [];
  const removed: number[] = [];
  for (const entry of readdirSync(STATE_DIR)) {
    const id = Number(entry);
    if (!Number.isInteger(id)) continue;
    let owner = 0;
    try {
      owner = Number(readFileSync(join(STATE_DIR, entry, 'owner'), 'utf8'));
    } catch {
      // no owner file: a cluster that never finished starting
    }
    const alive = owner > 0 && existsSync(`/proc/${owner}`);
    if (all || !alive) {
      removeCluster(id);
      removed.push(id);
    }
  }
  return removed;
}
