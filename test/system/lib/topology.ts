// Network-namespace topology for system tests.
//
//   upstream ns ("the internet")                 host ns ("the EC2 instance")
//   lo: 198.51.100.10 203.0.113.10 (servers)     eth0: 192.0.2.2/24  2001:db8:1::2/64
//       198.51.100.50 203.0.113.50 (clients)     default via 192.0.2.1 / 2001:db8:1::1
//       2001:db8:20::10 (server) ::50 (client)   ip_forward=1 (v4 and v6)
//   eth0: 192.0.2.1/24 2001:db8:1::1/64  <== veth ==>
//                                                optional light bridge:
//                                                docker0 172.17.0.1/16 (2001:db8:1234::1/64)
//                                                  └ "container" ns 172.17.0.2 (2001:db8:1234::2)
//
// Everything lives in namespaces we create (the veth is created directly inside
// them, so the root namespace never sees an interface), only documentation
// addresses are used, and nothing routes off the machine: the host's default
// route points at the upstream namespace, which has no default route at all.
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import ipaddr from "ipaddr.js";
import {
  run,
  runOk,
  runIn,
  runInOk,
  spawnBackground,
  waitFor,
  WaitAborted,
  tail,
  type Background,
} from "./exec.js";

/** Fixed addresses of the topology (all documentation ranges). */
export const ADDR = {
  /** Host's external address (what EC2 would call the private IP). */
  hostV4: "192.0.2.2",
  hostV6: "2001:db8:1::2",
  /** Upstream's end of the link: host's default gateway. */
  upstreamV4: "192.0.2.1",
  upstreamV6: "2001:db8:1::1",
  /** Server addresses owned by upstream ("somewhere on the internet"). */
  serverV4: "198.51.100.10",
  serverV4b: "203.0.113.10",
  serverV6: "2001:db8:20::10",
  /** Client source addresses owned by upstream, for connecting *to* the host from two networks. */
  clientV4: "198.51.100.50",
  clientV4b: "203.0.113.50",
  clientV6: "2001:db8:20::50",
  /** Light bridge (docker0 look-alike) inside host. */
  bridgeV4: "172.17.0.1",
  containerV4: "172.17.0.2",
  bridgeSubnetV4: "172.17.0.0/16",
  bridgeV6: "2001:db8:1234::1",
  containerV6: "2001:db8:1234::2",
  bridgeSubnetV6: "2001:db8:1234::/64",
} as const;

/** Host's interface towards upstream (the EC2 ENI, e.g. ens5 in reality). */
export const HOST_IF = "eth0";

export interface TopologyOptions {
  /** Also configure IPv6 addresses/routes and v6 forwarding (default false). */
  ipv6?: boolean;
  /** Enable forwarding in host (default true). Set false to mimic a fresh instance before Docker starts. */
  forwarding?: boolean;
}

export interface Topology {
  /** Short random id shared by all names of this topology. */
  id: string;
  /** netns name standing for the EC2 instance. */
  host: string;
  /** netns name standing for the internet. */
  upstream: string;
  /** Host's external interface name. */
  hostIf: string;
  ipv6: boolean;
  addr: typeof ADDR;
  /** Every namespace this topology owns (host, upstream, plus adopted ones). */
  namespaces(): string[];
  /** Make `destroy()` also delete `ns` (used for extra namespaces such as the light container). */
  adopt(ns: string): void;
  /** Add a route in upstream towards `prefix` via the host (for un-NATed container prefixes). */
  routeFromUpstream(prefix: string): Promise<void>;
  /** Kill processes left in our namespaces and delete them. Idempotent, never throws. */
  destroy(): Promise<void>;
}

/** Unique, short id: base-36 pid + 4 hex digits; names are "di-<id>-host" etc. The pid lets reapStaleNamespaces() recognise orphans. */
export function uniqueId(): string {
  return `${process.pid.toString(36)}${randomBytes(2).toString("hex")}`;
}

async function netnsAdd(name: string): Promise<void> {
  await runOk("ip", ["netns", "add", name], { timeoutMs: 10_000 });
}

/** Kill every process whose network namespace is `ns`, then delete it. Never throws. */
export async function deleteNamespace(ns: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const pids = await run("ip", ["netns", "pids", ns], { timeoutMs: 5_000 }).catch(() => undefined);
    const list = (pids?.stdout ?? "").split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number);
    if (list.length === 0) break;
    for (const pid of list) {
      try {
        process.kill(pid, round === 0 ? "SIGTERM" : "SIGKILL");
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  await run("ip", ["netns", "del", ns], { timeoutMs: 10_000 }).catch(() => undefined);
}

/** Names in /run/netns, i.e. `ip netns list` without the "(id: n)" decoration. */
export async function listNamespaces(): Promise<string[]> {
  try {
    return await readdir("/run/netns");
  } catch {
    return [];
  }
}

/**
 * Opt-in janitor for namespaces leaked by a crashed run: deletes "di-<pid36>..."
 * namespaces whose creating process is dead and in which no process runs.
 * Not called automatically, to never touch another live run's namespaces.
 */
export async function reapStaleNamespaces(): Promise<string[]> {
  const reaped: string[] = [];
  for (const ns of await listNamespaces()) {
    const m = /^di-([0-9a-z]+?)[0-9a-f]{4}-/.exec(ns);
    if (!m?.[1]) continue;
    const pid = parseInt(m[1], 36);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    const pids = await run("ip", ["netns", "pids", ns], { timeoutMs: 5_000 });
    if (pids.stdout.trim() !== "") continue;
    await run("ip", ["netns", "del", ns], { timeoutMs: 10_000 });
    reaped.push(ns);
  }
  return reaped;
}

/** Wait (bounded) until `dev` in `ns` reports operstate UP (`ip -br link`). */
export async function waitOperUp(ns: string, dev: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    `${dev} in ${ns} to be operationally UP`,
    async () => {
      const r = await runIn(ns, "ip", ["-br", "link", "show", "dev", dev], { timeoutMs: 3_000 });
      return r.stdout.trim().split(/\s+/)[1] === "UP";
    },
    { timeoutMs, intervalMs: 50 },
  );
}

async function sysctl(ns: string, ...settings: string[]): Promise<void> {
  await runInOk(ns, "sysctl", ["-q", "-w", ...settings], { timeoutMs: 5_000 });
}

/**
 * Build host + upstream namespaces joined by a veth (see the picture above).
 * On any failure the half-built topology is destroyed before rethrowing.
 */
export async function createTopology(opts: TopologyOptions = {}): Promise<Topology> {
  const ipv6 = opts.ipv6 ?? false;
  const id = uniqueId();
  const host = `di-${id}-host`;
  const upstream = `di-${id}-up`;
  const owned: string[] = [];
  let destroying: Promise<void> | undefined;

  const topo: Topology = {
    id,
    host,
    upstream,
    hostIf: HOST_IF,
    ipv6,
    addr: ADDR,
    namespaces: () => [...owned],
    adopt: (ns) => {
      if (!owned.includes(ns)) owned.push(ns);
    },
    routeFromUpstream: async (prefix) => {
      const v6 = prefix.includes(":");
      await runInOk(upstream, "ip", [v6 ? "-6" : "-4", "route", "replace", prefix, "via", v6 ? ADDR.hostV6 : ADDR.hostV4]);
    },
    destroy: () => {
      destroying ??= (async () => {
        // Reverse order: adopted (container) namespaces first.
        for (const ns of [...owned].reverse()) await deleteNamespace(ns);
      })();
      return destroying;
    },
  };

  try {
    for (const ns of [host, upstream]) {
      topo.adopt(ns);
      await netnsAdd(ns);
      await runInOk(ns, "ip", ["link", "set", "lo", "up"]);
      // No duplicate address detection: addresses (and bridges created later,
      // e.g. Docker's docker0) are usable at once instead of "tentative" for ~1-2 s.
      await sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0");
    }
    // Created inside host with its peer directly inside upstream: no root-ns interface ever.
    await runInOk(host, "ip", ["link", "add", HOST_IF, "type", "veth", "peer", "name", "eth0", "netns", upstream]);

    await runInOk(host, "ip", ["addr", "add", `${ADDR.hostV4}/24`, "dev", HOST_IF]);
    await runInOk(upstream, "ip", ["addr", "add", `${ADDR.upstreamV4}/24`, "dev", "eth0"]);
    for (const a of [ADDR.serverV4, ADDR.serverV4b, ADDR.clientV4, ADDR.clientV4b]) {
      await runInOk(upstream, "ip", ["addr", "add", `${a}/32`, "dev", "lo"]);
    }
    if (ipv6) {
      await runInOk(host, "ip", ["-6", "addr", "add", `${ADDR.hostV6}/64`, "dev", HOST_IF, "nodad"]);
      await runInOk(upstream, "ip", ["-6", "addr", "add", `${ADDR.upstreamV6}/64`, "dev", "eth0", "nodad"]);
      for (const a of [ADDR.serverV6, ADDR.clientV6]) {
        await runInOk(upstream, "ip", ["-6", "addr", "add", `${a}/128`, "dev", "lo"]);
      }
    }
    await runInOk(host, "ip", ["link", "set", HOST_IF, "up"]);
    await runInOk(upstream, "ip", ["link", "set", "eth0", "up"]);
    await runInOk(host, "ip", ["route", "add", "default", "via", ADDR.upstreamV4, "dev", HOST_IF]);
    if (ipv6) await runInOk(host, "ip", ["-6", "route", "add", "default", "via", ADDR.upstreamV6, "dev", HOST_IF]);

    // Written either way: a new namespace may inherit 1 from the root one
    // (where a running Docker turned it on), and "off" must mean off.
    const forwarding = (opts.forwarding ?? true) ? "1" : "0";
    await sysctl(host, `net.ipv4.ip_forward=${forwarding}`);
    if (ipv6) await sysctl(host, `net.ipv6.conf.all.forwarding=${forwarding}`);
    // Both ends must be operationally UP before we hand the link out: until
    // linkwatch (which can lag up to ~1 s) activates the device, its qdisc
    // drops packets, which shows up as a 1 s SYN retransmit in the first test.
    await waitOperUp(host, HOST_IF);
    await waitOperUp(upstream, "eth0");
    return topo;
  } catch (err) {
    await topo.destroy();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Light bridge: a docker0 look-alike without dockerd, for fast tests.

export interface LightBridge {
  /** The "container" netns (attached to docker0 inside host). */
  container: string;
  bridge: "docker0";
  gatewayV4: string;
  containerV4: string;
  /** Set when the topology has IPv6. */
  containerV6?: string;
}

/**
 * Inside host: bridge docker0 172.17.0.1/16 with one "container" namespace
 * (172.17.0.2, default via 172.17.0.1) and Docker's own NAT rule
 * `-t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`
 * (plus the ip6tables analogue for 2001:db8:1234::/64 when the topology has v6,
 * as dockerd --ip6tables does). Not usable together with a real dockerd in the
 * same topology (both want docker0). Removed by topology.destroy().
 */
export async function createLightBridge(topo: Topology): Promise<LightBridge> {
  const { host } = topo;
  const container = `di-${topo.id}-ctr`;
  topo.adopt(container);
  await netnsAdd(container);
  await runInOk(container, "ip", ["link", "set", "lo", "up"]);
  await sysctl(container, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0");

  await runInOk(host, "ip", ["link", "add", "docker0", "type", "bridge"]);
  await runInOk(host, "ip", ["addr", "add", `${ADDR.bridgeV4}/16`, "dev", "docker0"]);
  const vethName = `veth${topo.id.slice(-6)}`.slice(0, 15);
  await runInOk(host, "ip", ["link", "add", vethName, "type", "veth", "peer", "name", "eth0", "netns", container]);
  await runInOk(host, "ip", ["link", "set", vethName, "master", "docker0", "up"]);
  await runInOk(host, "ip", ["link", "set", "docker0", "up"]);
  await runInOk(container, "ip", ["addr", "add", `${ADDR.containerV4}/16`, "dev", "eth0"]);
  await runInOk(container, "ip", ["link", "set", "eth0", "up"]);
  await runInOk(container, "ip", ["route", "add", "default", "via", ADDR.bridgeV4]);
  await runInOk(host, "iptables", ["-t", "nat", "-A", "POSTROUTING", "-s", ADDR.bridgeSubnetV4, "!", "-o", "docker0", "-j", "MASQUERADE"]);

  await waitOperUp(container, "eth0");
  await waitOperUp(host, vethName);
  await waitOperUp(host, "docker0");

  const bridge: LightBridge = {
    container,
    bridge: "docker0",
    gatewayV4: ADDR.bridgeV4,
    containerV4: ADDR.containerV4,
  };
  if (topo.ipv6) {
    await runInOk(host, "ip", ["-6", "addr", "add", `${ADDR.bridgeV6}/64`, "dev", "docker0", "nodad"]);
    await runInOk(container, "ip", ["-6", "addr", "add", `${ADDR.containerV6}/64`, "dev", "eth0", "nodad"]);
    await runInOk(container, "ip", ["-6", "route", "add", "default", "via", ADDR.bridgeV6]);
    await runInOk(host, "ip6tables", ["-t", "nat", "-A", "POSTROUTING", "-s", ADDR.bridgeSubnetV6, "!", "-o", "docker0", "-j", "MASQUERADE"]);
    // Docker with its IPv6 NAT on (ip6tables) creates this chain when it
    // starts: what dockinit-firewall reads to load its IPv6 rewrite.
    await runInOk(host, "ip6tables", ["-t", "nat", "-N", "DOCKER"]);
    bridge.containerV6 = ADDR.containerV6;
  }
  return bridge;
}

// ---------------------------------------------------------------------------
// Port-echo servers and clients (socat).

export type Proto = "tcp" | "udp";

function isV6(addr: string): boolean {
  return addr.includes(":");
}

function socatHost(addr: string): string {
  return isV6(addr) ? `[${addr}]` : addr;
}

/** Canonical textual form of an address ("[2001:0db8:...]" -> "2001:db8::..."). */
export function normalizeAddr(addr: string): string {
  const bare = addr.replace(/^\[|\]$/g, "");
  return ipaddr.isValid(bare) ? ipaddr.process(bare).toString() : bare;
}

export interface EchoServer {
  ns: string;
  addr: string;
  port: number;
  proto: Proto;
  /** socat's own output (errors) so far. */
  log(): string;
  /** Kill the listener and its forked children. Idempotent. */
  stop(): Promise<void>;
}

/** What the echo server replies: "<peer address> <peer port>\n". */
export const ECHO_SCRIPT = 'echo "$SOCAT_PEERADDR $SOCAT_PEERPORT"';
/**
 * The same for a datagram, read first: socat writes the datagram to the
 * script's stdin, and when the script has already exited that write fails
 * (EPIPE) and socat ends without sending the reply it read: a datagram that
 * got through, unanswered (seen here about once in fifty).
 */
export const UDP_ECHO_SCRIPT = `read -r _; ${ECHO_SCRIPT}`;

/**
 * socat listener in `ns` on addr:port that answers every TCP connection / UDP
 * datagram with the source address and port it saw ("ADDR PORT") and closes.
 * That is how tests observe NAT: the port after MASQUERADE is what arrives.
 * Resolves once the socket is bound (bounded wait), rejects with socat's stderr.
 */
export async function startPortEchoServer(ns: string, addr: string, port: number, proto: Proto = "tcp"): Promise<EchoServer> {
  const v6 = isV6(addr);
  const listen =
    proto === "tcp"
      ? `${v6 ? "TCP6" : "TCP4"}-LISTEN:${port},bind=${socatHost(addr)},fork,reuseaddr`
      : `${v6 ? "UDP6" : "UDP4"}-RECVFROM:${port},bind=${socatHost(addr)},fork,reuseaddr`;
  const bg: Background = await spawnBackground("socat", [listen, `SYSTEM:${proto === "udp" ? UDP_ECHO_SCRIPT : ECHO_SCRIPT}`], { netns: ns });
  const server: EchoServer = { ns, addr, port, proto, log: () => bg.output(), stop: () => bg.stop(2_000) };
  const want = `${socatHost(normalizeAddr(addr))}:${port}`;
  try {
    await waitFor(
      `${proto} echo server on ${want} in ${ns}`,
      async () => {
        if (!bg.running()) throw new WaitAborted(`socat exited: ${tail(bg.output(), 5)}`);
        const ss = await runIn(ns, "ss", ["-Hn", "-l", proto === "tcp" ? "-t" : "-u"], { timeoutMs: 5_000 });
        return ss.stdout.split("\n").some((l) => l.split(/\s+/).includes(want));
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
  } catch (err) {
    await bg.stop();
    throw err;
  }
  return server;
}

export interface ConnectOptions {
  /** Destination address (v4 or v6). */
  addr: string;
  port: number;
  proto?: Proto;
  /** Bind the client to this source port (e.g. 33000, inside the ephemeral range). */
  sourcePort?: number;
  /** Bind the client to this source address (e.g. ADDR.clientV4b from upstream). */
  sourceAddr?: string;
  /** Whole attempt is bounded by this (default 3000 ms); a dropped SYN comes back as "timeout". */
  timeoutMs?: number;
}

/**
 * Why a connection got nothing. "timeout" is the client's own timeout (a
 * silent drop, when a control shows the same probe can get through);
 * "hung" is the harness killing a client that outlived its own timeouts:
 * not a verdict.
 */
export type ConnectFailure = "refused" | "timeout" | "unreachable" | "empty" | "error" | "hung";

export type ConnectResult =
  | {
      ok: true;
      /** Raw reply text (trimmed). */
      reply: string;
      /** Source address/port the server saw, parsed from an echo-server reply. */
      peerAddr?: string;
      peerPort?: number;
      durationMs: number;
    }
  | { ok: false; reason: ConnectFailure; detail: string; durationMs: number };

/** How long a connection that must be dropped is given: a silent drop shows as this timeout. */
export const DROP_MS = 2_000;
/** The connection got through. */
export const got = (r: ConnectResult): boolean => r.ok;
/**
 * No answer at all (a reject or reset would be another reason). Silence alone
 * proves no drop: firewall tests say "dropped" with lib/verdict.ts's
 * expectDropped, beside its control (test/unit/system-tests-lint.test.ts).
 * @deprecated in test files: use expectDropped.
 */
export const dropped = (r: ConnectResult): boolean => !r.ok && r.reason === "timeout";

/**
 * socat client argv (without the "socat" itself). TCP: stdin is /dev/null and
 * `shut-none` keeps the connection half-open so the server closes first (no
 * client TIME_WAIT blocks reusing the same source port), `-t` then bounds the
 * wait for the reply. UDP: the caller must feed one line on stdin (the datagram).
 */
export function socatClientArgs(o: ConnectOptions): string[] {
  const proto = o.proto ?? "tcp";
  const secs = Math.max(0.2, (o.timeoutMs ?? 3_000) / 1000).toFixed(1);
  const v6 = isV6(o.addr);
  const opts: string[] = [];
  if (o.sourcePort !== undefined) opts.push(`sourceport=${o.sourcePort}`, "reuseaddr");
  if (o.sourceAddr !== undefined) opts.push(`bind=${socatHost(o.sourceAddr)}`);
  let address: string;
  if (proto === "tcp") {
    address = `${v6 ? "TCP6" : "TCP4"}:${socatHost(o.addr)}:${o.port}`;
    opts.push(`connect-timeout=${secs}`, "shut-none");
  } else {
    address = `${v6 ? "UDP6" : "UDP4"}:${socatHost(o.addr)}:${o.port}`;
  }
  return ["-T", secs, "-t", secs, "-", [address, ...opts].join(",")];
}

/** Turn a socat client run into a ConnectResult (shared with docker.ts). */
export function interpretClient(r: { stdout: string; stderr: string; code: number | null; timedOut: boolean; durationMs: number }): ConnectResult {
  const reply = r.stdout.trim();
  const firstLine = reply.split("\n")[0] ?? "";
  if (firstLine !== "") {
    const m = /^(\S+) (\d+)$/.exec(firstLine);
    return m?.[1] && m[2]
      ? { ok: true, reply, peerAddr: normalizeAddr(m[1]), peerPort: Number(m[2]), durationMs: r.durationMs }
      : { ok: true, reply, durationMs: r.durationMs };
  }
  const err = r.stderr;
  if (r.timedOut) return { ok: false, reason: "hung", detail: `the client outlived its own timeouts and was killed: ${tail(err, 3)}`, durationMs: r.durationMs };
  let reason: ConnectFailure;
  if (/timed out/i.test(err)) reason = "timeout";
  else if (/refused/i.test(err)) reason = "refused";
  else if (/unreachable|no route/i.test(err)) reason = "unreachable";
  else if (r.code === 0) reason = "empty";
  else reason = "error";
  return { ok: false, reason, detail: tail(err || `exit ${String(r.code)}`, 5), durationMs: r.durationMs };
}

/**
 * Connect from namespace `ns` and return the reply (the echo server's view of
 * our source address/port) or a classified failure. Never hangs: socat's own
 * timeouts plus a hard kill bound the attempt. UDP with no reply is "timeout".
 */
export async function connectFrom(ns: string, o: ConnectOptions): Promise<ConnectResult> {
  return connectOnce(ns, o);
}

/**
 * A UDP probe's datagrams, one per line, 0.5 s apart: three tries in one
 * client run (udpAttempts' three without three runs); socat then waits its
 * timeout after the last. A datagram that must be dropped stays silent three
 * times in 1 s plus the timeout.
 */
export const UDP_DATAGRAMS = "echo ping; sleep 0.5; echo ping; sleep 0.5; echo ping";

/**
 * UDP has no retransmission: a datagram lost on a loaded machine is not a
 * verdict. A UDP attempt that heard nothing is tried again, three attempts in
 * all (CI, two system test files at a time, once saw two in a row go
 * unanswered: a container's query to an allowed DNS server); a connection
 * that must be dropped then has to stay silent three times. The probes of
 * connectFrom and lib/docker.ts send their datagram three times in one run
 * instead (UDP_DATAGRAMS); test/support/guest.ts's probes use this.
 */
export async function udpAttempts(proto: Proto | undefined, attempt: () => Promise<ConnectResult>): Promise<ConnectResult> {
  let result = await attempt();
  for (let again = 0; again < 2 && proto === "udp" && !result.ok && result.reason === "timeout"; again++) result = await attempt();
  return result;
}

async function connectOnce(ns: string, o: ConnectOptions): Promise<ConnectResult> {
  const timeoutMs = o.timeoutMs ?? 3_000;
  const proto = o.proto ?? "tcp";
  const args = socatClientArgs({ ...o, timeoutMs });
  const r =
    proto === "udp"
      ? await runIn(ns, "sh", ["-c", `(${UDP_DATAGRAMS}) | socat "$@"`, "sh", ...args], {
          timeoutMs: timeoutMs + 3_000,
          // UDP has no EOF: socat would wait out -t after the reply arrived.
          until: (out) => out.includes("\n"),
        })
      : await runIn(ns, "socat", args, { timeoutMs: timeoutMs + 2_000 });
  const res = interpretClient(r);
  if (!res.ok && proto === "udp" && (res.reason === "empty" || res.reason === "error") && r.code === 0) {
    return { ...res, reason: "timeout" };
  }
  return res;
}

/**
 * Forget all connection tracking state in `ns` (normally topology.host).
 * Needed between test phases that reuse a source address:port: while any
 * conntrack entry for e.g. 172.17.0.2:33000 exists (TIME_WAIT lasts 120 s),
 * the kernel reuses that entry's SNAT mapping for new connections from the same
 * source whenever it fits the rule's range; so removing a --to-ports rule does
 * not bring back port 33000 until the old entries are gone.
 */
export async function flushConntrack(ns: string): Promise<void> {
  for (const family of ["ipv4", "ipv6"]) {
    const r = await runIn(ns, "conntrack", ["-F", "-f", family], { timeoutMs: 10_000 });
    if (r.code !== 0) {
      throw new Error(`conntrack -F in ${ns} failed: ${r.stderr.trim()}`);
    }
  }
}

/** The port the server saw, or a descriptive throw (for concise assertions). */
export function peerPort(r: ConnectResult): number {
  if (!r.ok) throw new Error(`connection failed (${r.reason}): ${r.detail}`);
  if (r.peerPort === undefined) throw new Error(`reply is not "ADDR PORT": ${JSON.stringify(r.reply)}`);
  return r.peerPort;
}
