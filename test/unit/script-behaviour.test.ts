// What the rendered host scripts make the kernel do, with no root and no
// kernel: each script runs under bash with a PATH of recording stubs
// (test/support/stub-host.ts), and a test asserts on what the tools were
// asked, or on the verdict the rules they were given reach for a packet
// (test/support/rule-eval.ts), never on the script's text. Both backends.
// The same with real packets is the system tests' part (test/system/*).
// scripts/mutate.mjs breaks each of these on purpose and expects its test
// here to fail.
import { spawn } from "node:child_process";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfigString, renderBundle, type Bundle } from "../../src/index.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import { applyRestore, familyOf, iptablesVerdict, nftVerdict, parseNftTable, parseSave, type IptTables, type Packet, type Sets, type Verdict } from "../support/rule-eval.js";
import { fakeDockerd, fakeProc, stubHost, type FakeProcess, type StubCall, type StubHost } from "../support/stub-host.js";

type Backend = "iptables" | "nftables";
const BACKENDS: Backend[] = ["iptables", "nftables"];
const FIREWALL = HOST_PATHS.firewallScript;
const PROXY = HOST_PATHS.proxyScript;

/** The source-port rewrite's ranges, as the config below says them (not as the model reads them). */
const MATCH = { low: 32768, high: 60999 };
const TO = { low: 40000, high: 44999 };

/** One host with every feature whose behaviour is checked below, IPv4 and IPv6. */
const config = (backend: Backend) => `version: 1
name: behaviour
docker: { daemon: { dns: [amazon, 2001:db8::53] } }
ephemeral_ports:
  match: ${MATCH.low}-${MATCH.high}
  to: ${TO.low}-${TO.high}
  protocols: [tcp, udp]
  sources: [172.17.0.0/16, 2001:db8:1234::/64]
firewall:
  backend: ${backend}
  published:
    default: deny
    rules: [{ port: 8080, allow: [203.0.113.0/24, 2001:db8:10::/48] }]
  containers: { egress_allow: [198.51.100.0/24, 2001:db8:20::/48] }
port_forwards:
  - { listen: 9000, to: 172.30.1.10:80 }
  - { listen: 9001, to: "[2001:db8:30::10]:80" }
`;

function render(backend: Backend): Bundle {
  const { bundle, diagnostics } = renderBundle(loadConfigString(config(backend)));
  if (!bundle) throw new Error(JSON.stringify(diagnostics));
  return bundle;
}

/** iptables-save of a host where Docker (20.10-27, iptables firewall, ip6tables on) runs one container publishing 8080 → 80. */
const DOCKER_SAVE: Record<4 | 6, Record<"nat" | "filter", string>> = {
  4: {
    nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
`,
    filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
`,
  },
  6: {
    nat: `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 2001:db8:1234::/64 ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination [2001:db8:1234::2]:80
COMMIT
`,
    filter: `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 2001:db8:1234::2/128 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-USER -j RETURN
COMMIT
`,
  },
};

/**
 * The same host after Docker re-ordered things (a restart, a new network):
 * dockinit's jumps from an earlier apply sit below Docker's rules.
 */
const REORDERED: typeof DOCKER_SAVE = {
  4: {
    nat: DOCKER_SAVE[4].nat
      .replace(":DOCKER - [0:0]\n", ":DOCKER - [0:0]\n:DOCKINIT-POSTROUTING - [0:0]\n")
      .replace("-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n", "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n-A POSTROUTING -j DOCKINIT-POSTROUTING\n"),
    filter: DOCKER_SAVE[4].filter
      .replace(":DOCKER-USER - [0:0]\n", ":DOCKER-USER - [0:0]\n:DOCKINIT-USER - [0:0]\n")
      .replace("-A DOCKER-USER -j RETURN\n", "-A DOCKER-USER -j RETURN\n-A DOCKER-USER -j DOCKINIT-USER\n"),
  },
  6: DOCKER_SAVE[6],
};

/** The jumps the iptables backend must put first: family, table, parent, dockinit's chain. */
const IPTABLES_JUMPS = ([4, 6] as const).flatMap((family) => [
  { family, table: "nat", parent: "PREROUTING", chain: "DOCKINIT-PREROUTING" },
  { family, table: "nat", parent: "OUTPUT", chain: "DOCKINIT-OUTPUT" },
  { family, table: "nat", parent: "POSTROUTING", chain: "DOCKINIT-POSTROUTING" },
  { family, table: "filter", parent: "INPUT", chain: "DOCKINIT-INPUT" },
  { family, table: "filter", parent: "DOCKER-USER", chain: "DOCKINIT-USER" },
]);

/** The sets as the host fills them: the egress allow-lists, docker-proxy's port 8080. */
const SETS: Sets = {
  "dockinit-egress4": ["198.51.100.0/24"],
  "dockinit-egress6": ["2001:db8:20::/48"],
  "dockinit-proxy-tcp": [8080],
  "dockinit-proxy-udp": [],
  egress4: ["198.51.100.0/24"],
  egress6: ["2001:db8:20::/48"],
  proxy_tcp: [8080],
  proxy_udp: [],
  "dockinit-dns4": ["169.254.169.253"],
  "dockinit-dns6": ["2001:db8::53"],
  dns4: ["169.254.169.253"],
  dns6: ["2001:db8::53"],
};

const hosts: StubHost[] = [];
afterAll(() => {
  for (const h of hosts.splice(0)) h.cleanup();
});

/**
 * The iptables backend loads IPv6 only where the kernel has it: the script
 * reads /proc itself (no stub can stand in), so this machine must have IPv6.
 */
const HOST_IPV6 = existsSync("/proc/net/if_inet6") && readFileSync("/proc/sys/net/ipv6/conf/all/disable_ipv6", "utf8").trim() === "0";

function host(backend: Backend, saves: typeof DOCKER_SAVE = DOCKER_SAVE): StubHost {
  if (backend === "iptables" && !HOST_IPV6) throw new Error("this machine has IPv6 off (/proc/net/if_inet6, net.ipv6.conf.all.disable_ipv6): the iptables backend's script would load IPv4 only, so its IPv6 half cannot be checked here");
  const h = stubHost();
  hosts.push(h);
  h.install(render(backend));
  for (const family of [4, 6] as const) for (const table of ["nat", "filter"] as const) h.setTable(family, table, saves[family][table]);
  return h;
}

async function runOk(h: StubHost, path: string, args: string[], opts: Parameters<StubHost["run"]>[2] = {}) {
  const r = await h.run(path, args, opts);
  expect(r.stderr).not.toMatch(/command not found|No such file/);
  expect(r.code, `${path} ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r;
}

/** One apply per backend on Docker's host, shared by the tests that only read what it did. */
const plainApply = new Map<Backend, Promise<StubCall[]>>();
function applied(backend: Backend): Promise<StubCall[]> {
  if (!plainApply.has(backend)) {
    const h = host(backend);
    plainApply.set(backend, runOk(h, FIREWALL, ["apply"]).then(() => h.calls()));
  }
  return plainApply.get(backend)!;
}

const restores = (calls: StubCall[], opts: { test?: boolean } = {}) =>
  calls.filter((c) => /^ip6?tables-restore$/.test(c.tool) && c.args.includes("--test") === (opts.test ?? false));
const familyOfTool = (tool: string): 4 | 6 => (tool.startsWith("ip6tables") ? 6 : 4);

/** The tables of each family after every restore the run made, applied to what the host had before, in order. */
function tablesAfter(calls: StubCall[], saves: typeof DOCKER_SAVE): Record<4 | 6, IptTables> {
  const out = {} as Record<4 | 6, IptTables>;
  for (const family of [4, 6] as const) {
    let tables = parseSave(saves[family].nat + saves[family].filter);
    for (const c of restores(calls).filter((r) => familyOfTool(r.tool) === family)) {
      const r = applyRestore(tables, c.stdin ?? "", { noflush: c.args.includes("--noflush") });
      if (r.error) throw new Error(`${c.tool}: ${r.error}`);
      tables = r.tables;
    }
    out[family] = tables;
  }
  return out;
}

/** Every address a restore input names (-s, -d, conntrack's reply source, a DNAT target). */
function addressesIn(input: string): string[] {
  const out: string[] = [];
  for (const m of input.matchAll(/(?:^|\s)(?:-s|-d|--ctreplsrc) (\S+)/g)) out.push(m[1]!.replace(/\/\d+$/, ""));
  for (const m of input.matchAll(/--to-destination (\S+)/g)) out.push(m[1]!.replace(/^\[(.*)\]:\d+$/, "$1").replace(/^([\d.]+):\d+$/, "$1"));
  return out;
}

/** The nft input apply loaded (one transaction): dockinit's table. */
function nftLoaded(calls: StubCall[]) {
  const loads = calls.filter((c) => c.tool === "nft" && c.args.includes("-f"));
  expect(loads, "apply loads the table in one nft -f").toHaveLength(1);
  return parseNftTable(loads[0]!.stdin ?? "");
}

/** A container's connection leaving by the external interface from `sport`. */
const outbound = (family: 4 | 6, proto: "tcp" | "udp", sport: number): Packet => ({
  family,
  proto,
  src: family === 4 ? "172.17.0.5" : "2001:db8:1234::5",
  dst: family === 4 ? "198.51.100.9" : "2001:db8:20::9",
  sport,
  dport: 443,
  iif: "docker0",
  oif: "eth0",
  ct: { state: "new", direction: "original" },
});

async function postroutingVerdict(backend: Backend, packets: Packet[]): Promise<Verdict[]> {
  const calls = await applied(backend);
  if (backend === "iptables") {
    const tables = tablesAfter(calls, DOCKER_SAVE);
    return packets.map((p) => iptablesVerdict(tables[p.family], "nat", "POSTROUTING", p, SETS));
  }
  const { chains } = nftLoaded(calls);
  const base = [...chains.values()].find((c) => c.hook === "postrouting")!;
  return packets.map((p) => nftVerdict(chains, base.name, p, SETS));
}

describe.concurrent.each(BACKENDS)("%s backend: the source-port rewrite's range, edge to edge", (backend) => {
  it.each([
    [4, "tcp"],
    [4, "udp"],
    [6, "tcp"],
    [6, "udp"],
  ] as const)("IPv%s %s: the range's first and last ports are rewritten into exactly the `to` range, the ports beside them are not", async (family, proto) => {
    const edges = [MATCH.low - 1, MATCH.low, MATCH.high, MATCH.high + 1];
    const verdicts = await postroutingVerdict(backend, edges.map((port) => outbound(family, proto, port)));
    const rewritten = (v: Verdict) => (v.kind === "masquerade" && v.toPorts ? v.toPorts : undefined);
    expect(verdicts.map(rewritten), `source ports ${edges.join(", ")}`).toEqual([undefined, TO, TO, undefined]);
  });
});

describe.concurrent("each backend's rules come first", () => {
  it.each([
    ["a host where Docker runs", DOCKER_SAVE],
    ["a host where Docker put its rules above dockinit's earlier jumps", REORDERED],
  ] as const)("iptables: after apply on %s, every jump into dockinit's chains is first in its parent, once", async (_, saves) => {
    let calls: StubCall[];
    if (saves === DOCKER_SAVE) calls = await applied("iptables");
    else {
      const h = host("iptables", saves);
      await runOk(h, FIREWALL, ["apply"]);
      calls = h.calls();
    }
    const tables = tablesAfter(calls, saves);
    for (const j of IPTABLES_JUMPS) {
      const rules = tables[j.family].get(j.table)!.get(j.parent)!.rules;
      expect(rules[0], `IPv${j.family} ${j.table} ${j.parent}: ${rules.join(" | ")}`).toBe(`-A ${j.parent} -j ${j.chain}`);
      expect(rules.filter((r) => r === `-A ${j.parent} -j ${j.chain}`)).toHaveLength(1);
    }
    // And so a container's connection from a low port is dockinit's to rewrite, not Docker's MASQUERADE's.
    expect(iptablesVerdict(tables[4], "nat", "POSTROUTING", outbound(4, "tcp", 33000), SETS)).toEqual({ kind: "masquerade", toPorts: TO });
  });

  it("nftables: every base chain of dockinit's table runs before Docker's and iptables' chains at its hook (a lower priority)", async () => {
    const calls = await applied("nftables");
    // iptables-nft's and Docker 29's chains: nat at dstnat (-100) and srcnat (100), filter at filter (0).
    const theirs: Record<string, number> = { prerouting: -100, output: -100, postrouting: 100, input: 0, forward: 0 };
    const base = [...nftLoaded(calls).chains.values()].filter((c) => c.hook);
    expect(base.map((c) => c.hook).sort()).toEqual(Object.keys(theirs).sort());
    for (const c of base) expect(c.priority, `${c.name} (hook ${c.hook})`).toBeLessThan(theirs[c.hook!]!);
  });

  it("nftables: the port forwards' accepts go first in DOCKER-USER, above Docker's RETURN and anything else there", async () => {
    const tables = tablesAfter(await applied("nftables"), DOCKER_SAVE);
    for (const family of [4, 6] as const) {
      const user = tables[family].get("filter")!.get("DOCKER-USER")!.rules;
      const accepts = user.filter((r) => r.includes("--comment dockinit-forward"));
      expect(accepts, `IPv${family} DOCKER-USER: ${user.join(" | ")}`).toHaveLength(1);
      expect(user[0]).toBe(accepts[0]);
      // A forwarded connection's packet is accepted there, before Docker's FORWARD drops it.
      const target = family === 4 ? "172.30.1.10" : "2001:db8:30::10";
      const p: Packet = { family, proto: "tcp", src: family === 4 ? "198.51.100.7" : "2001:db8:99::7", dst: target, dport: 80, iif: "eth0", oif: "eth0", ct: { state: "new", direction: "original", dnat: true, origDstPort: family === 4 ? 9000 : 9001, replySrc: target, replySrcPort: 80 } };
      expect(iptablesVerdict(tables[family], "filter", "FORWARD", p, SETS)).toEqual({ kind: "accept" });
    }
  });
});

describe.concurrent.each(BACKENDS)("%s backend: the DNS servers in use, outside egress_allow", (backend) => {
  it("a container reaches them on port 53, UDP and TCP, and on no other port (IPv4 and IPv6); apply fills their set", async () => {
    const calls = await applied(backend);
    const toDns = (family: 4 | 6, proto: "tcp" | "udp", dport: number): Packet => ({ ...outbound(family, proto, 50000), dst: family === 4 ? "169.254.169.253" : "2001:db8::53", dport });
    const verdict = (p: Packet): Verdict => {
      if (backend === "iptables") return iptablesVerdict(tablesAfter(calls, DOCKER_SAVE)[p.family], "filter", "FORWARD", p, SETS);
      const { chains } = nftLoaded(calls);
      return nftVerdict(chains, [...chains.values()].find((c) => c.hook === "forward")!.name, p, SETS);
    };
    for (const family of [4, 6] as const) {
      for (const proto of ["udp", "tcp"] as const) expect(verdict(toDns(family, proto, 53)).kind, `IPv${family} ${proto} 53`).not.toBe("drop");
      expect(verdict(toDns(family, "tcp", 443)).kind, `IPv${family} tcp 443`).toBe("drop");
      expect(verdict(toDns(family, "udp", 5353)).kind, `IPv${family} udp 5353`).toBe("drop");
    }
    // What fills the sets: ipset's swap (the literal ones and daemon.json's), or the table's own elements.
    if (backend === "iptables") {
      const input = calls.filter((c) => c.tool === "ipset" && c.args[0] === "restore").map((c) => c.stdin ?? "").join("");
      expect(input).toContain("add dockinit-dns4-new 169.254.169.253\n");
      expect(input).toContain("add dockinit-dns6-new 2001:db8::53\n");
      expect(input).not.toMatch(/add dockinit-egress\d-new (169\.254\.169\.253|2001:db8::53)/);
    } else {
      const loaded = calls.find((c) => c.tool === "nft" && c.args.includes("-f"))!.stdin ?? "";
      expect(loaded).toContain("set dns4 { type ipv4_addr; elements = { 169.254.169.253 }; }");
      expect(loaded).toContain("set dns6 { type ipv6_addr; elements = { 2001:db8::53 }; }");
    }
  });
});

describe.concurrent("each family's rules go to its own tool", () => {
  it("iptables backend: IPv4 rules to iptables-restore, IPv6 rules to ip6tables-restore, and each family gets its own", async () => {
    const calls = await applied("iptables");
    for (const c of [...restores(calls), ...restores(calls, { test: true })]) {
      const wrong = addressesIn(c.stdin ?? "").filter((a) => familyOf(a) !== familyOfTool(c.tool));
      expect(wrong, `${c.tool} ${c.args.join(" ")} was given addresses of the other family`).toEqual([]);
    }
    const loaded = (family: 4 | 6) => restores(calls).filter((c) => familyOfTool(c.tool) === family).map((c) => c.stdin).join("");
    expect(loaded(4)).toContain("169.254.169.254");
    expect(loaded(6)).toContain("fd00:ec2::254");
    // Each family's tables were read with its own save.
    for (const tool of ["iptables-save", "ip6tables-save"]) expect(calls.filter((c) => c.tool === tool).map((c) => c.args.join(" "))).toEqual(expect.arrayContaining(["-t nat", "-t filter"]));
  });

  it("nftables backend: each port forward's accept for iptables' FORWARD goes to its own family's iptables", async () => {
    const loads = restores(await applied("nftables"));
    expect(loads.map((c) => c.tool).sort()).toEqual(["ip6tables-restore", "iptables-restore"]);
    for (const c of loads) {
      const named = addressesIn(c.stdin ?? "");
      expect(named.length, c.stdin).toBeGreaterThan(0);
      expect(named.filter((a) => familyOf(a) !== familyOfTool(c.tool)), `${c.tool} was given:\n${c.stdin}`).toEqual([]);
    }
  });
});

describe.concurrent.each(BACKENDS)("%s backend: verdicts on the forward and docker-proxy paths", (backend) => {
  const published = (family: 4 | 6, src: string, direction: "original" | "reply", state: "new" | "established"): Packet =>
    direction === "original"
      ? { family, proto: "tcp", src, dst: family === 4 ? "172.17.0.2" : "2001:db8:1234::2", sport: 50123, dport: 80, iif: "eth0", oif: "docker0", ct: { state, direction, dnat: true, origDstPort: 8080 } }
      : { family, proto: "tcp", src: family === 4 ? "172.17.0.2" : "2001:db8:1234::2", dst: src, sport: 80, dport: 50123, iif: "docker0", oif: "eth0", ct: { state, direction, dnat: true, origDstPort: 8080 } };
  const rows = [
    { what: "a client outside the allow-list opening a connection to published port 8080", p: published(4, "198.51.100.7", "original", "new"), dropped: true },
    { what: "the same client on a connection opened before apply", p: published(4, "198.51.100.7", "original", "established"), dropped: true },
    { what: "a listed client", p: published(4, "203.0.113.5", "original", "new"), dropped: false },
    { what: "the container's replies to a listed client", p: published(4, "203.0.113.5", "reply", "established"), dropped: false },
    { what: "an IPv6 client outside the allow-list (Docker's own IPv6 DNAT)", p: published(6, "2001:db8:99::7", "original", "new"), dropped: true },
    { what: "a listed IPv6 client", p: published(6, "2001:db8:10::5", "original", "new"), dropped: false },
  ];
  for (const { what, p, dropped } of rows) {
    it(`forward: ${what}: ${dropped ? "dropped" : "not dropped"}`, async () => {
      const calls = await applied(backend);
      const v = backend === "iptables" ? iptablesVerdict(tablesAfter(calls, DOCKER_SAVE)[p.family], "filter", "FORWARD", p, SETS) : nftVerdict(nftLoaded(calls).chains, "forward", p, SETS);
      // Not dropped: Docker's own rules accept it (iptables), or dockinit's chain lets it go on to them (nftables).
      expect(v.kind).toBe(dropped ? "drop" : backend === "iptables" ? "accept" : "policy");
    });
  }

  const proxied = (src: string, dport: number): Packet => ({ family: 6, proto: "tcp", src, dst: "2001:db8:1::1", sport: 50123, dport, iif: "eth0", localDst: true, ct: { state: "new", direction: "original" } });
  const inputRows = [
    { what: "an IPv6 client outside the allow-list, to docker-proxy on 8080", p: proxied("2001:db8:99::7", 8080), dropped: true },
    { what: "a listed IPv6 client, to docker-proxy on 8080", p: proxied("2001:db8:10::5", 8080), dropped: false },
    { what: "anyone, to a host port no proxy listens on (22)", p: proxied("2001:db8:99::7", 22), dropped: false },
  ];
  for (const { what, p, dropped } of inputRows) {
    it(`input: ${what}: ${dropped ? "dropped" : "not dropped"}`, async () => {
      const calls = await applied(backend);
      const v = backend === "iptables" ? iptablesVerdict(tablesAfter(calls, DOCKER_SAVE)[6], "filter", "INPUT", p, SETS) : nftVerdict(nftLoaded(calls).chains, "input", p, SETS);
      expect(v.kind).toBe(dropped ? "drop" : "policy");
    });
  }
});

/** The tools that touch the tables while the lock is held, per backend (iptables releases the lock before asking Docker). */
const LOCKED_TOOLS: Record<Backend, string> = { iptables: "ip6?tables(-save|-restore)?|ipset", nftables: "nft" };

/**
 * Wait (up to 10 s) until a run tagged `other` has begun a call of a tool
 * matching `tools` (an extended regex): a hook's way to line two runs up
 * without guessing at timings.
 */
const waitForCall = (other: string, tools: string) =>
  `for _ in $(seq 500); do cat "$h"/calls/*.start 2>/dev/null | grep -qE "^(${tools}) ${other} " && break; sleep 0.02; done`;

const PROXY_ARGS = ["-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80"];

describe.concurrent.each(BACKENDS)("%s backend: the lock", (backend) => {
  it("two applies at once take turns: the second touches the tables only after the first is done", async () => {
    const h = host(backend);
    // A run's first table load waits until the other run either waits for
    // the lock (it called flock) or touches the tables too (nothing keeps
    // them apart): then the two overlap exactly when the lock is not there.
    const other = '$([ "$STUB_TAG" = A ] && echo B || echo A)';
    const lineUp = `${waitForCall(other, `flock|${LOCKED_TOOLS[backend]}`)}; sleep 0.2`;
    h.hook(backend === "iptables" ? "iptables-restore" : "nft", backend === "iptables" ? lineUp : `if [ "$reads" = 1 ]; then ${lineUp}; fi`);
    await Promise.all(["A", "B"].map((tag) => runOk(h, FIREWALL, ["apply"], { tag })));
    const span = (tag: string) => {
      const mine = h.calls().filter((c) => c.tag === tag && new RegExp(`^(${LOCKED_TOOLS[backend]})$`).test(c.tool));
      expect(mine.length, `run ${tag} touched the tables`).toBeGreaterThan(0);
      return { start: Math.min(...mine.map((c) => c.start)), end: Math.max(...mine.map((c) => c.end)) };
    };
    const [a, b] = [span("A"), span("B")].sort((x, y) => x.start - y.start);
    expect(b!.start, "the second apply began before the first was done").toBeGreaterThanOrEqual(a!.end);
  });

  it("dockinit-proxy waits while an apply holds the lock, then adds its port and starts docker-proxy", async () => {
    const h = host(backend);
    const held = join(h.root, "held");
    const release = join(h.root, "release");
    const released = join(h.root, "released");
    // What an apply does: hold the state directory's lock, here until the test says.
    const holder = spawn("flock", [join(h.state, "lock"), "bash", "-c", `: >${held}; until [ -e ${release} ]; do sleep 0.02; done; echo \${EPOCHREALTIME/./} >${released}`], { stdio: "ignore" });
    const holderDone = new Promise((resolve) => holder.on("close", resolve));
    for (let i = 0; i < 500 && !existsSync(held); i++) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(held), "the lock holder started").toBe(true);
    let exited = false;
    const proxy = runOk(h, PROXY, PROXY_ARGS, { parent: fakeDockerd(h), tag: "proxy" }).finally(() => (exited = true));
    // Until the proxy waits for the lock (it called flock), or is done without waiting.
    for (let i = 0; i < 500 && !exited && !h.calls().some((c) => c.tool === "flock" && c.tag === "proxy"); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(release, "");
    await Promise.all([proxy, holderDone]);
    const add = h.calls().find((c) => c.tool === (backend === "iptables" ? "ipset" : "nft") && c.args.includes("add"));
    expect(add, "the port was added").toBeDefined();
    expect(add!.start, "the port was added while the lock was held").toBeGreaterThanOrEqual(Number(readFileSync(released, "utf8")));
    expect(h.calls().some((c) => c.tool === "docker-proxy")).toBe(true);
  });
});

describe.concurrent.each(BACKENDS)("%s backend: dockinit-proxy and docker-proxy's port", (backend) => {
  const ARGS = PROXY_ARGS;
  const adds = (c: StubCall) => (backend === "iptables" ? c.tool === "ipset" && c.args[0] === "add" : c.tool === "nft" && c.args[0] === "add");

  it("adds the port to dockinit's set, then runs the real docker-proxy with the same arguments", async () => {
    const h = host(backend);
    await runOk(h, PROXY, ARGS, { parent: fakeDockerd(h) });
    const calls = h.calls();
    const add = calls.findIndex(adds);
    const proxy = calls.findIndex((c) => c.tool === "docker-proxy");
    expect(add, "the port was added").toBeGreaterThanOrEqual(0);
    expect(calls[add]!.args.join(" ")).toMatch(/\b8080\b/);
    expect(calls[add]!.args.join(" ")).toMatch(/proxy[-_]tcp/);
    expect(proxy, "docker-proxy started after the port was added").toBeGreaterThan(add);
    expect(calls[proxy]!.args).toEqual(ARGS);
  });

  it(backend === "nftables" ? "an SCTP port goes into its own set (proxy_sctp) before docker-proxy starts" : "refuses an SCTP proxy: no ipset bitmap:port matches SCTP packets, so no set of this backend could close the port", async () => {
    const h = host(backend);
    const sctp = ARGS.map((a) => (a === "tcp" ? "sctp" : a));
    const r = await h.run(PROXY, sctp, { parent: fakeDockerd(h) });
    if (backend === "nftables") {
      expect(r.code, r.stderr).toBe(0);
      const calls = h.calls();
      const add = calls.findIndex(adds);
      expect(calls[add]!.args.join(" ")).toBe("add element inet dockinit proxy_sctp { 8080 }");
      expect(calls.findIndex((c) => c.tool === "docker-proxy")).toBeGreaterThan(add);
    } else {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/cannot close sctp port 8080.*not starting the proxy/);
      expect(h.calls().filter((c) => adds(c) || c.tool === "docker-proxy")).toEqual([]);
    }
  });

  it("refuses to start docker-proxy when the port cannot be added to the set", async () => {
    const h = host(backend);
    h.hook(backend === "iptables" ? "ipset" : "nft", backend === "iptables" ? 'if [ "${1:-}" = add ]; then rc=1 handled=1; fi' : 'case " $* " in *" add "*) rc=1 handled=1 ;; esac');
    const r = await h.run(PROXY, ARGS, { parent: fakeDockerd(h) });
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/not starting the proxy/);
    expect(h.calls().filter(adds)).toHaveLength(1);
    expect(h.calls().filter((c) => c.tool === "docker-proxy")).toEqual([]);
  });
});

/**
 * Which processes apply takes for docker-proxies (DOCKINIT_PROC: a fake
 * /proc). Each look-alike differs from a real proxy in one thing only (its
 * executable, its mount namespace, its user, its port or protocol), and the
 * real ones beside them are counted: the control that the same scan does see
 * a process that passes.
 */
describe.concurrent.each(BACKENDS)("%s backend: the docker-proxies apply counts", (backend) => {
  const args = (proto: string, port: string, ip = "0.0.0.0") => ["-proto", proto, "-host-ip", ip, "-host-port", port, "-container-ip", "172.17.0.2", "-container-port", "80"];
  /** The ports apply loaded into the proxy sets, as "proto/port". */
  const loadedPorts = (calls: StubCall[]) => {
    const out: string[] = [];
    for (const c of calls) {
      const input = c.stdin ?? "";
      if (backend === "nftables" && c.tool === "nft") for (const m of input.matchAll(/^add element inet dockinit proxy_(\w+) \{ (\S+) \}$/gm)) out.push(`${m[1]}/${m[2]}`);
      if (backend === "iptables" && c.tool === "ipset") for (const m of input.matchAll(/^add dockinit-proxy-(\w+) (\S+)$/gm)) out.push(`${m[1]}/${m[2]}`);
    }
    return [...new Set(out)].sort();
  };
  function lookAlikeHost() {
    const h = host(backend);
    const exe = (dir: string, name: string) => {
      mkdirSync(join(h.root, dir), { recursive: true });
      const p = join(h.root, dir, name);
      writeFileSync(p, "#!/bin/sh\n");
      chmodSync(p, 0o755);
      return p;
    };
    const proxy = join(h.bin, "docker-proxy");
    const bash = join(h.bin, "bash");
    const processes: FakeProcess[] = [
      // Counted: a docker-proxy on PATH; one beside a running dockerd (the host's); one whose binary an upgrade replaced;
      // a dockinit-proxy about to exec docker-proxy (bash running the installed script), re-parented or not.
      { pid: 100, exe: proxy, argv: [proxy, ...args("tcp", "8080")] },
      { pid: 101, exe: proxy, argv: [proxy, ...args("udp", "5353")] },
      { pid: 50, exe: exe("engine", "dockerd"), comm: "dockerd", argv: ["dockerd"] },
      { pid: 102, exe: exe("engine", "docker-proxy"), argv: ["docker-proxy", ...args("tcp", "8081")] },
      { pid: 103, exe: `${proxy} (deleted)`, argv: [proxy, ...args("tcp", "8082")] },
      { pid: 104, exe: bash, argv: ["/bin/bash", HOST_PATHS.proxyScript, ...args("tcp", "8083")] },
      // Go's other flag forms, as dockinit-proxy reads them.
      { pid: 105, exe: proxy, argv: [proxy, "--proto=tcp", "-host-ip=0.0.0.0", "--host-port", "8084"] },
      // Not counted, and silently: loopback (dockinit-proxy leaves it out too).
      { pid: 106, exe: proxy, argv: [proxy, ...args("tcp", "8085", "127.0.0.1")] },
      // Look-alikes: each one thing away from pid 100.
      { pid: 200, exe: bash, argv: ["sh", "-c", "sleep 1d; :", "x", ...args("tcp", "22")] },
      { pid: 201, exe: proxy, mnt: "container", argv: [proxy, ...args("tcp", "23")] },
      { pid: 202, exe: proxy, uid: 1000, argv: [proxy, ...args("tcp", "24")] },
      { pid: 203, exe: proxy, uid: [1000, 0, 0, 0], argv: [proxy, ...args("tcp", "25")] },
      { pid: 204, exe: bash, argv: ["/bin/bash", "/tmp/dockinit-proxy", ...args("tcp", "26")] },
      { pid: 205, exe: bash, mnt: "container", argv: ["/bin/bash", HOST_PATHS.proxyScript, ...args("tcp", "27")] },
      { pid: 206, exe: join(h.root, "other", "docker-proxy (deleted)"), argv: [proxy, ...args("tcp", "28")] },
      // A container's "dockerd": the docker-proxy beside it is not the host's.
      { pid: 60, exe: exe("container", "dockerd"), comm: "dockerd", mnt: "container", argv: ["dockerd"] },
      { pid: 207, exe: exe("container", "docker-proxy"), argv: ["docker-proxy", ...args("tcp", "29")] },
      // The host's docker-proxy, with what no dockerd passes.
      ...["99999", "65536", "0", "abc", "080", "", "22 ; reboot"].map((port, i) => ({ pid: 300 + i, exe: proxy, argv: [proxy, ...args("tcp", port)] })),
      ...["icmp", "TCP", "tcp;", ""].map((proto, i) => ({ pid: 400 + i, exe: proxy, argv: [proxy, ...args(proto, "30")] })),
    ];
    return { h, proc: fakeProc(h, processes), processes };
  }

  it("apply counts the host's docker-proxies only, and skips each look-alike with a line saying why", async () => {
    const { h, proc, processes } = lookAlikeHost();
    const r = await runOk(h, FIREWALL, ["apply"], { env: { DOCKINIT_PROC: proc } });
    expect(loadedPorts(h.calls())).toEqual(["tcp/8080", "tcp/8081", "tcp/8082", "tcp/8083", "tcp/8084", "udp/5353"]);
    const skipped = [...r.stderr.matchAll(/^dockinit-firewall: skipping process (\d+)\b/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
    expect(skipped).toEqual(processes.filter((p) => p.pid >= 200).map((p) => p.pid));
    expect(r.stderr).toMatch(/skipping process 200 .*-host-port 22\).*not the host's docker-proxy/);
    expect(r.stderr).toMatch(/skipping process 201: not the host's root/);
    expect(r.stderr).toMatch(/skipping process 300 .*-host-port 99999\): port is not 1-65535/);
    expect(r.stderr).toMatch(/skipping process 400 .*-proto icmp .*protocol is not tcp, udp or sctp/);
    // What a container wrote reaches the log quoted, never raw.
    expect(r.stderr).toContain("-host-port 22\\ \\;\\ reboot");
  });

  it("logs at most 20 look-alikes one by one, then how many more (a container can start thousands)", async () => {
    const h = host(backend);
    const proxy = join(h.bin, "docker-proxy");
    const many: FakeProcess[] = Array.from({ length: 30 }, (_, i) => ({ pid: 1000 + i, exe: proxy, mnt: "container" as const, argv: [proxy, ...args("tcp", "22")] }));
    const proc = fakeProc(h, [...many, { pid: 100, exe: proxy, argv: [proxy, ...args("tcp", "8080")] }]);
    const r = await runOk(h, FIREWALL, ["apply"], { env: { DOCKINIT_PROC: proc } });
    expect(loadedPorts(h.calls())).toEqual(["tcp/8080"]);
    expect(r.stderr.match(/^dockinit-firewall: skipping process /gm)).toHaveLength(20);
    expect(r.stderr).toMatch(/^dockinit-firewall: skipping 10 more processes that are not docker-proxies$/m);
  });

  it("the units that run dockinit-firewall leave it in the host's mount namespace with the whole /proc (no sandboxing the scan would not see through)", () => {
    const units = render(backend).files.filter((f) => f.path.startsWith("/etc/systemd/system/") && String(f.content).includes(FIREWALL));
    expect(units.map((f) => f.path)).toContain(HOST_PATHS.firewallUnit);
    expect(units.map((f) => f.path)).toContain(HOST_PATHS.dockerDropIn);
    const sandbox = /^(PrivateTmp|PrivateMounts|PrivateDevices|ProtectSystem|ProtectHome|ProtectProc|ProcSubset|ProtectKernelTunables|ProtectKernelModules|ProtectKernelLogs|ProtectControlGroups|ProtectClock|ProtectHostname|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|ExecPaths|NoExecPaths|TemporaryFileSystem|BindPaths|BindReadOnlyPaths|RootDirectory|RootImage|MountFlags|MountAPIVFS|PrivateUsers|DynamicUser|User)=/m;
    for (const f of units) expect(String(f.content), f.path).not.toMatch(sandbox);
  });

  it("apply-policies too (docker.service's ExecStartPre: live-restore's proxies may be the only ones running)", async () => {
    const { h, proc } = lookAlikeHost();
    await runOk(h, FIREWALL, ["apply-policies"], { env: { DOCKINIT_PROC: proc } });
    expect(loadedPorts(h.calls())).toEqual(["tcp/8080", "tcp/8081", "tcp/8082", "tcp/8083", "tcp/8084", "udp/5353"]);
  });
});

describe.concurrent.each(BACKENDS)("%s backend: dockinit-proxy takes only what a real dockerd passes", (backend) => {
  const adds = (c: StubCall) => (backend === "iptables" ? c.tool === "ipset" && c.args[0] === "add" : c.tool === "nft" && c.args[0] === "add");
  const withPort = (proto: string, port: string) => ["-proto", proto, "-host-ip", "0.0.0.0", "-host-port", port, "-container-ip", "172.17.0.2", "-container-port", "80"];
  for (const [proto, port, why] of [
    ["tcp", "99999", /not a port from 1 to 65535/],
    ["tcp", "65536", /not a port from 1 to 65535/],
    ["tcp", "0", /not a port from 1 to 65535/],
    ["tcp", "080", /not a port from 1 to 65535/],
    ["icmp", "8080", /not tcp, udp or sctp/],
    ["", "8080", /not tcp, udp or sctp/],
  ] as const) {
    it(`refuses -proto ${proto || "(none)"} -host-port ${port}: nothing added, no docker-proxy`, async () => {
      const h = host(backend);
      const r = await h.run(PROXY, withPort(proto, port), { parent: fakeDockerd(h) });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(why);
      expect(h.calls().filter(adds)).toEqual([]);
      expect(h.calls().filter((c) => c.tool === "docker-proxy")).toEqual([]);
    });
  }
  it("takes the edges, 1 and 65535 (the control)", async () => {
    const h = host(backend);
    for (const port of ["1", "65535"]) await runOk(h, PROXY, withPort("udp", port), { parent: fakeDockerd(h) });
    expect(h.calls().filter(adds).map((c) => c.args.join(" "))).toEqual([expect.stringMatching(/proxy[-_]udp.*\b1\b/), expect.stringMatching(/proxy[-_]udp.*\b65535\b/)]);
    expect(h.calls().filter((c) => c.tool === "docker-proxy")).toHaveLength(2);
  });
});

describe.concurrent.each(BACKENDS)("%s backend: the lock's directory", (backend) => {
  it("an existing state directory open to all is made its owner's alone (0700), the lock 0600", async () => {
    const h = host(backend);
    chmodSync(h.state, 0o755);
    writeFileSync(join(h.state, "lock"), "");
    chmodSync(join(h.state, "lock"), 0o644);
    await runOk(h, FIREWALL, ["apply"]);
    expect(statSync(h.state).mode & 0o777).toBe(0o700);
    expect(statSync(join(h.state, "lock")).mode & 0o777).toBe(0o600);
  });

  it("a state directory that does not exist is created 0700, the lock 0600", async () => {
    const h = host(backend);
    const state = join(h.root, "fresh-state");
    await runOk(h, FIREWALL, ["apply"], { env: { DOCKINIT_STATE_DIR: state } });
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, "lock")).mode & 0o777).toBe(0o600);
  });

  it("a state directory that is a symlink is refused: nothing loaded", async () => {
    const h = host(backend);
    const link = join(h.root, "state-link");
    symlinkSync(h.state, link);
    const r = await h.run(FIREWALL, ["apply"], { env: { DOCKINIT_STATE_DIR: link } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is a symlink.*refusing to keep the lock there/);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(h.calls().filter((c) => c.tool === "flock" || /restore|nft/.test(c.tool))).toEqual([]);
  });
});

/**
 * docker.service's start as systemd runs it (systemd.service(5)): each
 * ExecStartPre= in order, and the start fails at the first one that fails,
 * unless its command carries the "-" prefix. An empty ExecStartPre= clears the
 * list. The drop-in's commands run from the installed bundle.
 */
async function dockerStarts(h: StubHost, dropIn: string): Promise<{ started: boolean; ran: string[] }> {
  let pre: string[] = [];
  let section = "";
  for (const raw of dropIn.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (/^\[.*\]$/.test(line)) section = line;
    else if (section === "[Service]" && line.startsWith("ExecStartPre=")) {
      const value = line.slice("ExecStartPre=".length).trim();
      pre = value === "" ? [] : [...pre, value];
    }
  }
  const ran: string[] = [];
  for (const cmd of pre) {
    const prefix = /^[-@:+!]*/.exec(cmd)![0];
    const [path, ...args] = cmd.slice(prefix.length).trim().split(/\s+/);
    ran.push(cmd);
    const r = await h.run(path!, args);
    if (r.code !== 0 && !prefix.includes("-")) return { started: false, ran };
  }
  return { started: true, ran };
}

describe.concurrent.each(BACKENDS)("%s backend: docker.service's drop-in", (backend) => {
  const dropIn = () => render(backend).files.find((f) => f.path === HOST_PATHS.dockerDropIn)!.content;

  it("Docker starts once the policies are in force, and they were loaded before it", async () => {
    const h = host(backend);
    const r = await dockerStarts(h, dropIn());
    expect(r.ran).toHaveLength(1);
    expect(r.started).toBe(true);
    const loaded = backend === "iptables" ? restores(h.calls()) : h.calls().filter((c) => c.tool === "nft" && c.args.includes("-f"));
    expect(loaded.length, "the policies were loaded").toBeGreaterThan(0);
  });

  it("Docker does not start when the policies cannot be loaded", async () => {
    const h = host(backend);
    h.hook(backend === "iptables" ? "iptables-restore" : "nft", "rc=1 handled=1");
    const r = await dockerStarts(h, dropIn());
    expect(r.ran, "the drop-in runs the policies before Docker").toHaveLength(1);
    expect(r.started).toBe(false);
  });
});

/**
 * The checker's decision (dockinit-firewall reassert, which the watch runs in
 * a fresh process on every change it hears): the same partial in both
 * backends, run here on the nftables one, whose stub keeps the loaded table
 * (a flush is the stub's table taken away). A config without port forwards:
 * their accepts live in iptables, which these stubs do not keep.
 */
describe.concurrent("the checker: re-apply on drift, record it, and not too often", () => {
  const CHECKER_CONFIG = "version: 1\nname: checker\nfirewall:\n  backend: nftables\n  published: { default: deny }\n  containers: { block: [198.51.100.0/24] }\n";
  const checkerHost = async (): Promise<StubHost> => {
    const { bundle, diagnostics } = renderBundle(loadConfigString(CHECKER_CONFIG));
    if (!bundle) throw new Error(JSON.stringify(diagnostics));
    const h = stubHost();
    hosts.push(h);
    h.install(bundle);
    await runOk(h, FIREWALL, ["apply"]);
    h.clearCalls();
    return h;
  };
  const flush = (h: StubHost) => rmSync(join(h.root, "nft-loaded"), { force: true });
  const loads = (h: StubHost) => h.calls().filter((c) => c.tool === "nft" && c.args.includes("-f"));
  const record = (h: StubHost) => (existsSync(join(h.state, "reapply")) ? readFileSync(join(h.state, "reapply"), "utf8") : undefined);
  // status's first line, its stable code first (the record keeps it too).
  const MISSING = "TABLE_MISSING nftables: table inet dockinit is missing";

  it("no drift: nothing is loaded, nothing recorded, nothing logged", async () => {
    const h = await checkerHost();
    const r = await runOk(h, FIREWALL, ["reassert"]);
    expect(loads(h)).toEqual([]);
    expect(record(h)).toBeUndefined();
    expect(r.stderr).toBe("");
  });

  it("drift (the table flushed): one apply, logged with status's first line, recorded as one line COUNT EPOCH REASON; status passes after it", async () => {
    const h = await checkerHost();
    flush(h);
    const before = Math.floor(Date.now() / 1000);
    const r = await runOk(h, FIREWALL, ["reassert"]);
    expect(r.stderr).toContain(`dockinit-firewall: re-applying: ${MISSING}\n`);
    expect(loads(h)).toHaveLength(1);
    expect(loads(h)[0]!.stdin).toMatch(/hook postrouting/); // the whole table, nat chains included
    const [count, epoch, ...reason] = record(h)!.replace(/\n$/, "").split(" ");
    expect(record(h)!.split("\n")).toHaveLength(2); // one line
    expect(count).toBe("1");
    expect(Number(epoch)).toBeGreaterThanOrEqual(before);
    expect(Number(epoch)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(reason.join(" ")).toBe(MISSING);
    expect((await h.run(FIREWALL, ["status", "--quiet"])).code).toBe(0);
    // Its own apply heard again: the next check finds nothing to do.
    h.clearCalls();
    await runOk(h, FIREWALL, ["reassert"]);
    expect(loads(h)).toEqual([]);
    // The next drift counts on.
    flush(h);
    await runOk(h, FIREWALL, ["reassert"]);
    expect(loads(h)).toHaveLength(1);
    expect(record(h)).toMatch(/^2 \d+ TABLE_MISSING nftables: table inet dockinit is missing\n$/);
    expect(readdirSync(h.state).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("after remove (or before any apply) there is nothing to keep: the rules stay gone, nothing recorded", async () => {
    const h = await checkerHost();
    await runOk(h, FIREWALL, ["remove"]);
    h.clearCalls();
    const r = await runOk(h, FIREWALL, ["reassert"]);
    expect(loads(h)).toEqual([]);
    expect(record(h)).toBeUndefined();
    expect(r.stderr).toBe("");
  });

  // 30: Docker creating networks one after another (each puts its MASQUERADE above dockinit's
  // jump on the iptables backend) is drift the checker must keep up with; a fight is not.
  it("at most 30 re-applies a minute: the 31st drift is logged once and left alone; once the minute has passed it re-applies again", async () => {
    const h = await checkerHost();
    const logs: string[] = [];
    for (let i = 0; i < 32; i++) {
      flush(h);
      logs.push((await runOk(h, FIREWALL, ["reassert"])).stderr);
    }
    expect(loads(h)).toHaveLength(30);
    expect(record(h)).toMatch(/^30 /);
    expect(logs[30]).toMatch(/not re-applying for now: 30 re-applies in 60 s; status fails: TABLE_MISSING nftables: table inet dockinit is missing/);
    expect(logs[31]).toBe("");
    expect((await h.run(FIREWALL, ["status", "--quiet"])).code, "the drift is still there for status to report").toBe(1);
    // The minute has passed (the recorded times made a minute older).
    const times = join(h.state, "reapply-times");
    writeFileSync(times, readFileSync(times, "utf8").replace(/\d+/g, (t) => String(Number(t) - 61)));
    h.clearCalls();
    expect((await runOk(h, FIREWALL, ["reassert"])).stderr).toContain(`re-applying: ${MISSING}`);
    expect(loads(h)).toHaveLength(1);
    expect(record(h)).toMatch(/^31 /);
  });

  it("Docker answers but its own rules are gone too: said once, with the way back (systemctl restart docker); Docker is not restarted", async () => {
    const h = await checkerHost();
    h.hook("docker", `if [ "\${1:-}" = info ]; then echo '{"ServerVersion":"29.7.2","FirewallBackend":{"Driver":"nftables"}}'; handled=1; fi`);
    const env = { DOCKER_HOST: "unix:///nonexistent.sock" };
    const logs: string[] = [];
    for (let i = 0; i < 2; i++) {
      flush(h);
      logs.push((await runOk(h, FIREWALL, ["reassert"], { env })).stderr);
    }
    expect(logs[0]).toMatch(/WARNING: Docker's own rules are gone .*systemctl restart docker/);
    expect(logs[1]).not.toMatch(/Docker's own rules/);
    expect(h.calls().filter((c) => c.tool === "systemctl")).toEqual([]);
    // Docker's table there: nothing said.
    const h2 = await checkerHost();
    h2.hook("docker", `if [ "\${1:-}" = info ]; then echo '{"ServerVersion":"29.7.2","FirewallBackend":{"Driver":"nftables"}}'; handled=1; fi`);
    h2.hook("nft", 'case " $* " in *" list table ip docker-bridges "*) handled=1 ;; esac');
    flush(h2);
    expect((await runOk(h2, FIREWALL, ["reassert"], { env })).stderr).not.toMatch(/Docker's own rules/);
  });

  it("a re-apply that fails (the kernel refuses the whole table): logged, and the policies alone are loaded, so the host stays closed", async () => {
    const h = await checkerHost();
    flush(h);
    // The full table (its nat chains in it) is refused; the policies alone load.
    h.hook("nft", 'if [ "$reads" = 1 ] && grep -q postrouting "$rec.stdin"; then echo "nft: refused" >&2; rc=1; handled=1; fi');
    // The watch's side of one check, as do_watch calls it: the script's functions, $0 the script.
    const script = h.file(FIREWALL);
    const wrapper = `${script}-reassert-once`;
    writeFileSync(wrapper, `#!/bin/bash\nBASH_ARGV0=${script}\nsource <(sed '$d' ${script})\nreassert\n`, { mode: 0o755 });
    const r = await runOk(h, `${FIREWALL}-reassert-once`, []);
    expect(r.stderr).toContain(`re-applying: ${MISSING}`);
    expect(r.stderr).toMatch(/nft failed to load the ruleset/);
    expect(r.stderr).toContain("re-apply failed (exit 1); loading the policies alone");
    const last = loads(h).at(-1)!;
    expect(last.stdin).toMatch(/hook forward/);
    expect(last.stdin).not.toMatch(/hook postrouting/);
    expect(record(h)).toMatch(/^1 \d+ TABLE_MISSING nftables: table inet dockinit is missing\n$/);
  });
});
