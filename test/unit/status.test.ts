// dockinit-firewall status, text and --json, on both backends, with stubbed
// kernel tools (test/support/stub-host.ts): every problem code status can
// report, each made by putting the kernel (the stubs' tables, nft's loaded
// table, the route) in the state that code names, and the bundle id that ties
// a loaded table to the bundle that loaded it. The same with the real kernel
// is test/system/bundle-id.test.ts.
import { buildSync } from "esbuild";
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfigString, renderBundle, type Bundle } from "../../src/index.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import { stubHost, type StubHost } from "../support/stub-host.js";

const REPO = join(import.meta.dirname, "../..");
const hosts: StubHost[] = [];
const tmpDirs: string[] = [];

type Backend = "iptables" | "nftables";
const BACKENDS: Backend[] = ["iptables", "nftables"];
const FIREWALL = HOST_PATHS.firewallScript;

/** Two configurations: A and B differ in one allow-list, as an in-place update would. */
const config = (backend: Backend, variant: "A" | "B" = "A", extra = "") => `version: 1
name: status-${backend}
docker: { daemon: { dns: [amazon] } }
ephemeral_ports: { match: 32768-60999, to: 40000-44999, protocols: [tcp] }
firewall:
  backend: ${backend}
  published:
    default: deny
    rules: [{ port: 8080, allow: [${variant === "A" ? "203.0.113.0/24" : "198.51.100.0/24"}] }]
port_forwards: [{ listen: 9000, to: 172.30.1.10:80 }]
${extra}`;

function render(yaml: string): Bundle {
  const { bundle, diagnostics } = renderBundle(loadConfigString(yaml));
  if (!bundle) throw new Error(JSON.stringify(diagnostics));
  return bundle;
}

/** The tables of a host where Docker (20.10-27, iptables firewall) runs. */
const DOCKER_SAVE: Record<4 | 6, Record<"nat" | "filter", string>> = {
  4: {
    nat: "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\nCOMMIT\n",
    filter:
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A FORWARD -o docker0 -j DOCKER\n-A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n-A DOCKER-USER -j RETURN\nCOMMIT\n",
  },
  6: {
    nat: "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n",
    filter: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\nCOMMIT\n",
  },
};

const HOST_IPV6 = existsSync("/proc/net/if_inet6") && readFileSync("/proc/sys/net/ipv6/conf/all/disable_ipv6", "utf8").trim() === "0";

/**
 * iptables(-restore) with state: each restore the script makes is applied
 * (test/support/rule-eval.ts's applyRestore, bundled once into one file node
 * runs) to the tables the stub's iptables-save prints, so what apply writes
 * down is what the next status reads, as on a kernel.
 */
const restoreTool = (() => {
  const dir = mkdtempSync(join(tmpdir(), "dockinit-restore-"));
  const entry = join(dir, "restore.ts");
  writeFileSync(
    entry,
    `import { readFileSync, writeFileSync } from "node:fs";
import { applyRestore, parseSave } from ${JSON.stringify(join(REPO, "test/support/rule-eval.ts"))};
const [dir, fam, input, noflush, test] = process.argv.slice(2);
const file = (t: string) => dir + "/tables/v" + fam + "-" + t;
const r = applyRestore(parseSave(readFileSync(file("nat"), "utf8") + readFileSync(file("filter"), "utf8")), readFileSync(input, "utf8"), { noflush: noflush === "1", test: test === "1" });
if (r.error) { console.error("restore: " + r.error); process.exit(1); }
if (test !== "1") for (const t of ["nat", "filter"]) {
  const chains = r.tables.get(t)!;
  const lines = ["*" + t, ...[...chains].map(([c, v]) => ":" + c + " " + v.policy + " [0:0]"), ...[...chains.values()].flatMap((v) => v.rules), "COMMIT"];
  writeFileSync(file(t), lines.join("\\n") + "\\n");
}
`,
  );
  buildSync({ entryPoints: [entry], bundle: true, platform: "node", format: "esm", outfile: join(dir, "restore.mjs"), logLevel: "error" });
  tmpDirs.push(dir);
  return join(dir, "restore.mjs");
})();

const restoreHook = (family: 4 | 6) => `if [ "$reads" = 1 ]; then
  nf=0 ts=0
  for a; do case $a in --noflush) nf=1 ;; --test) ts=1 ;; esac; done
  ${JSON.stringify(process.execPath)} ${JSON.stringify(restoreTool)} "$h" ${family} "$rec.stdin" "$nf" "$ts" || rc=1
  handled=1
fi`;

/** A stub host whose iptables tables follow the restores made on it. */
class Host {
  readonly h: StubHost = stubHost();
  constructor() {
    hosts.push(this.h);
    for (const f of [4, 6] as const) for (const t of ["nat", "filter"] as const) this.h.setTable(f, t, DOCKER_SAVE[f][t]);
    this.h.hook("iptables-restore", restoreHook(4));
    this.h.hook("ip6tables-restore", restoreHook(6));
  }
  save(f: 4 | 6, t: "nat" | "filter"): string {
    return readFileSync(join(this.h.root, "tables", `v${f}-${t}`), "utf8");
  }
  /** Change a table as someone else (Docker, an operator) would. */
  edit(f: 4 | 6, t: "nat" | "filter", change: (lines: string[]) => string[]) {
    this.h.setTable(f, t, change(this.save(f, t).split("\n")).join("\n"));
  }
  async run(bundle: Bundle, args: string[]) {
    this.h.install(bundle);
    const r = await this.h.run(FIREWALL, args);
    expect(r.stderr).not.toMatch(/command not found|No such file|syntax error|unbound variable|restore: /);
    return r;
  }
  /** The external interface the default route names from now on. */
  route(dev: string) {
    this.h.hook("ip", `case " $* " in *" -4 route show default "*) echo "default via 192.0.2.1 dev ${dev} proto static"; handled=1 ;; esac`);
  }
}

afterAll(() => {
  for (const h of hosts.splice(0)) h.cleanup();
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface StatusJson {
  version: number;
  ok: boolean;
  backend: string;
  backend_reason: string;
  bundle: string;
  loaded_bundle: string | null;
  problems: { code: string; message: string }[];
  docker: { version: string; firewall_backend: string };
  reapplied: { count: number; last: string | null; reason: string | null };
  checked_at: string;
}

async function statusJson(host: Host, bundle: Bundle): Promise<{ code: number | null; json: StatusJson; raw: string }> {
  const r = await host.run(bundle, ["status", "--json"]);
  expect(r.stdout.split("\n").filter(Boolean), "one line of JSON").toHaveLength(1);
  expect(r.stdout.length).toBeLessThanOrEqual(2501); // 2,500 and the newline
  return { code: r.code, json: JSON.parse(r.stdout) as StatusJson, raw: r.stdout };
}

const codes = (j: StatusJson) => [...new Set(j.problems.map((p) => p.code))].sort();

describe.skipIf(!HOST_IPV6).each(BACKENDS)("%s backend: status names what is missing or foreign", (backend) => {
  const A = render(config(backend, "A"));
  const B = render(config(backend, "B"));

  it("after apply: status passes, text and --json, and the kernel's rules carry this bundle's id", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    const text = await host.run(A, ["status"]);
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toContain(`dockinit-firewall: all rules in place (backend ${backend})`);
    expect(text.stdout).toContain(`bundle: ${A.bundleId}\n`);
    const { code, json } = await statusJson(host, A);
    expect(code).toBe(0);
    expect(json).toMatchObject({ version: 1, ok: true, backend, bundle: A.bundleId, loaded_bundle: A.bundleId, problems: [], docker: { version: "unknown", firewall_backend: "unknown" }, reapplied: { count: 0, last: null, reason: null } });
    expect(json.backend_reason).toBe(`firewall.backend: ${backend} (as firewall.backend asks)`);
    expect(json.checked_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Math.abs(Date.parse(json.checked_at) - Date.now())).toBeLessThan(120_000);
    const quiet = await host.run(A, ["status", "--quiet"]);
    expect([quiet.code, quiet.stdout]).toEqual([0, ""]);
  });

  it("nothing loaded: status fails (TABLE_MISSING / NAT_NOT_LOADED, CHAIN_MISSING), loaded_bundle null", async () => {
    const host = new Host();
    const { code, json } = await statusJson(host, A);
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(json.loaded_bundle).toBeNull();
    // (nftables: the port forwards' accepts for iptables' FORWARD are missing too.)
    if (backend === "nftables") expect(codes(json)).toEqual(["FORWARD_ACCEPTS", "TABLE_MISSING"]);
    else expect(codes(json)).toEqual(expect.arrayContaining(["CHAIN_MISSING", "NAT_NOT_LOADED", "JUMP_MISSING"]));
    const quiet = await host.run(A, ["status", "--quiet"]);
    expect([quiet.code, quiet.stdout]).toEqual([1, ""]);
  });

  it("another bundle's rules fail status (FOREIGN_BUNDLE, both ids named); apply-policies replaces them, then status wants apply (NAT_NOT_LOADED or FOREIGN_BUNDLE for the nat table); apply makes it pass", async () => {
    const host = new Host();
    expect(A.bundleId).not.toBe(B.bundleId);
    expect((await host.run(A, ["apply"])).code).toBe(0);
    let s = await statusJson(host, B);
    expect(s.code).toBe(1);
    expect(s.json.loaded_bundle).toBe(A.bundleId);
    expect(codes(s.json)).toContain("FOREIGN_BUNDLE");
    const foreign = s.json.problems.find((p) => p.code === "FOREIGN_BUNDLE")!;
    expect(foreign.message).toContain(A.bundleId);
    expect(foreign.message).toContain(B.bundleId);
    const text = await host.run(B, ["status"]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(foreign.message);
    expect(text.stdout).not.toContain("all rules in place");

    // B's apply-policies (before Docker, in its unit) loads B's policies: A's allow-list is gone.
    expect((await host.run(B, ["apply-policies"])).code).toBe(0);
    const policies = backend === "nftables" ? readFileSync(join(host.h.root, "nft-loaded"), "utf8") : host.save(4, "filter");
    expect(policies).toContain("198.51.100.0/24");
    expect(policies).not.toContain("203.0.113.0/24");
    expect(policies).toContain(B.bundleId);
    s = await statusJson(host, B);
    expect(s.code).toBe(1);
    if (backend === "nftables") expect(codes(s.json)).toEqual(["NAT_NOT_LOADED"]);
    else {
      // The filter table is B's now; the nat table (loaded by apply alone) is still A's.
      expect(codes(s.json)).toEqual(["FOREIGN_BUNDLE"]);
      expect(s.json.problems.every((p) => / nat: /.test(p.message))).toBe(true);
    }
    expect((await host.run(B, ["apply"])).code).toBe(0);
    s = await statusJson(host, B);
    expect([s.code, s.json.problems]).toEqual([0, []]);
    expect(s.json.loaded_bundle).toBe(B.bundleId);
  });

  it("apply-policies keeps this bundle's table (nothing reloaded) and replaces only another's", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    host.h.clearCalls();
    host.h.install(A);
    expect((await host.h.run(FIREWALL, ["apply-policies"])).code).toBe(0);
    const loads = (tool: RegExp) => host.h.calls().filter((c) => tool.test(c.tool) && (c.tool !== "nft" || c.args.includes("-f")));
    expect(loads(backend === "nftables" ? /^nft$/ : /^ip6?tables-restore$/)).toEqual([]);
    host.h.install(B);
    expect((await host.h.run(FIREWALL, ["apply-policies"])).code).toBe(0);
    expect(loads(backend === "nftables" ? /^nft$/ : /^ip6?tables-restore$/).length).toBeGreaterThan(0);
  });

  it("apply-policies, then a failed apply: status fails with NAT_NOT_LOADED (not 'all rules in place')", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply-policies"])).code).toBe(0);
    // apply fails: the kernel refuses the whole table (its nat chains in it), nothing is loaded.
    host.h.hook(backend === "nftables" ? "nft" : "iptables-restore", backend === "nftables" ? 'if [ "$reads" = 1 ] && grep -q postrouting "$rec.stdin"; then rc=1; handled=1; fi' : 'if grep -q "^\\*nat" "$rec.stdin"; then rc=1; handled=1; fi');
    expect((await host.run(A, ["apply"])).code).toBe(1);
    const { code, json } = await statusJson(host, A);
    expect(code).toBe(1);
    expect(codes(json)).toContain("NAT_NOT_LOADED");
    expect(json.problems.find((p) => p.code === "NAT_NOT_LOADED")!.message).toMatch(/apply has not run since apply-policies, or it failed/);
  });

  it("a rule of dockinit's changed since apply: TABLE_CHANGED", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    if (backend === "nftables") {
      const f = join(host.h.root, "nft-loaded");
      writeFileSync(f, readFileSync(f, "utf8").replace("203.0.113.0/24", "0.0.0.0/0"));
    } else host.edit(4, "filter", (l) => l.map((x) => x.replace("203.0.113.0/24", "0.0.0.0/0")));
    const { code, json } = await statusJson(host, A);
    expect(code).toBe(1);
    expect(codes(json)).toEqual(["TABLE_CHANGED"]);
  });

  it("the port forwards' accepts moved in DOCKER-USER: FORWARD_ACCEPTS (nftables) / JUMP_NOT_FIRST (iptables: DOCKINIT-USER no longer first)", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    // Someone's DROP above everything in DOCKER-USER.
    host.edit(4, "filter", (l) => {
      l.splice(l.findIndex((x) => x.startsWith("-A DOCKER-USER ")), 0, "-A DOCKER-USER -s 192.0.2.66/32 -j DROP");
      return l;
    });
    const { code, json } = await statusJson(host, A);
    expect(code).toBe(1);
    expect(codes(json)).toEqual([backend === "nftables" ? "FORWARD_ACCEPTS" : "JUMP_NOT_FIRST"]);
  });

  it.runIf(backend === "iptables")("status's own failure to read the kernel is a problem too (STATUS_ERROR), and --json still prints one object", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    host.h.hook("iptables-save", 'if [ "$table" = nat ]; then rc=1; handled=1; fi');
    const { code, json } = await statusJson(host, A);
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(json.problems).toContainEqual({ code: "STATUS_ERROR", message: expect.stringMatching(/cannot read the IPv4 nat table/) });
  });
});

describe.skipIf(!HOST_IPV6)("iptables backend: each jump problem has its code", () => {
  const A = render(config("iptables"));
  const applied = async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    expect((await statusJson(host, A)).code).toBe(0);
    return host;
  };
  const edit = (host: Host, fam: 4 | 6, table: "nat" | "filter", f: (lines: string[]) => string[]) => host.edit(fam, table, f);

  it("Docker's MASQUERADE above dockinit's jump: JUMP_NOT_FIRST, with the shadowing rule in its message", async () => {
    const host = await applied();
    edit(host, 4, "nat", (l) => {
      l.splice(l.findIndex((x) => x.startsWith("-A POSTROUTING")), 0, "-A POSTROUTING -s 172.18.0.0/16 ! -o br-1 -j MASQUERADE");
      return l;
    });
    const { json } = await statusJson(host, A);
    expect(json.problems).toEqual([{ code: "JUMP_NOT_FIRST", message: "IPv4 nat: the jump to DOCKINIT-POSTROUTING is not first in POSTROUTING; shadowed by:; -A POSTROUTING -s 172.18.0.0/16 ! -o br-1 -j MASQUERADE" }]);
    const text = await host.run(A, ["status"]);
    expect(text.stdout).toContain("IPv4 nat: the jump to DOCKINIT-POSTROUTING is not first in POSTROUTING; shadowed by:\n  -A POSTROUTING -s 172.18.0.0/16 ! -o br-1 -j MASQUERADE\n");
  });

  it("two jumps: JUMP_DUPLICATE; no jump: JUMP_MISSING; a jump to DOCKER-USER below Docker's accept: FORWARD_ORDER", async () => {
    const host = await applied();
    edit(host, 4, "nat", (l) => [...l.slice(0, -2), "-A POSTROUTING -j DOCKINIT-POSTROUTING", ...l.slice(-2)]);
    edit(host, 4, "filter", (l) => l.filter((x) => x !== "-A INPUT -j DOCKINIT-INPUT"));
    edit(host, 6, "filter", (l) => {
      l.splice(l.indexOf("-A FORWARD -j DOCKER-USER"), 0, "-A FORWARD -o docker0 -j ACCEPT");
      return l;
    });
    const { json } = await statusJson(host, A);
    expect(codes(json)).toEqual(["FORWARD_ORDER", "JUMP_DUPLICATE", "JUMP_MISSING"]);
    expect(json.problems).toContainEqual({ code: "FORWARD_ORDER", message: "IPv6 filter: FORWARD decides before its jump to DOCKER-USER: -A FORWARD -o docker0 -j ACCEPT" });
  });

  it("this configuration's rules were never loaded by apply (no record of it): RULES_NOT_LOADED", async () => {
    const host = await applied();
    unlinkSync(join(host.h.state, "v4-nat.want"));
    const { json } = await statusJson(host, A);
    expect(json.problems).toEqual([{ code: "RULES_NOT_LOADED", message: "IPv4 nat: this configuration's rules were not loaded by apply (or Docker's IPv6 NAT changed)" }]);
  });

  it("an ipset gone: SET_MISSING", async () => {
    const host = await applied();
    host.h.hook("ipset", 'if [ "${1:-}" = list ]; then rc=1; handled=1; fi');
    const { json } = await statusJson(host, A);
    expect(codes(json)).toEqual(["SET_MISSING"]);
  });
});

describe("ip_local_port_range not as configured: PORT_RANGE", () => {
  it.each(BACKENDS)("%s", async (backend) => {
    // A range this machine does not have; status only reads /proc (apply, which writes it, does not run here).
    const bundle = render(config(backend, "A").replace("to: 40000-44999", "to: 40001-44998, host_range: true"));
    const host = new Host();
    const { json } = await statusJson(host, bundle);
    expect(json.problems).toContainEqual({ code: "PORT_RANGE", message: expect.stringMatching(/^host: ip_local_port_range is \d+-\d+, expected 40001-44998$/) });
  });
});

describe.skipIf(!HOST_IPV6)("status --json: hostile strings, the re-apply record, the 2,500-character limit", () => {
  const A = render(config("iptables"));

  it("the re-apply record ($STATE_DIR/reapply: COUNT EPOCH REASON...) is read; absent or malformed: count 0", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    const file = join(host.h.state, "reapply");
    writeFileSync(file, "3 1700000000 nft monitor: table inet dockinit deleted\n");
    expect((await statusJson(host, A)).json.reapplied).toEqual({ count: 3, last: "2023-11-14T22:13:20Z", reason: "nft monitor: table inet dockinit deleted" });
    for (const bad of ["x 1700000000 why\n", "", "-1 5 no\n", "99999999999999 1 huge\n"]) {
      writeFileSync(file, bad);
      expect((await statusJson(host, A)).json.reapplied, JSON.stringify(bad)).toEqual({ count: 0, last: null, reason: null });
    }
    writeFileSync(file, "2 yesterday why\n");
    expect((await statusJson(host, A)).json.reapplied).toEqual({ count: 2, last: null, reason: "why" });
  });

  it("quotes, backslashes, control characters and bytes >= 0x80 from the kernel and the state files come out as valid JSON, kept", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    const hostile = `x"},"ok":true,"y":"\\u0000\\" \x01\x07\x1b[31m\x7f`;
    writeFileSync(join(host.h.state, "reapply"), Buffer.concat([Buffer.from(`1 1700000000 ${hostile}`), Buffer.from([0xff, 0xc3, 0xa9]), Buffer.from("\n")]));
    // A rule someone put above Docker's jump, with the same text in its comment.
    const rule = `-A FORWARD -m comment --comment "${hostile.replace(/"/g, '\\"')}" -j ACCEPT`;
    host.edit(4, "filter", (l) => l.flatMap((x) => (x === "-A FORWARD -j DOCKER-USER" ? [rule, x] : [x])));
    const { code, json, raw } = await statusJson(host, A);
    expect(code).toBe(1);
    expect(json.ok).toBe(false);
    expect(raw).toMatch(/^[\x20-\x7e]+\n$/); // plain ASCII: every other byte escaped
    expect(json.reapplied.reason).toBe(`${hostile}\u00ff\u00c3\u00a9`);
    expect(json.problems).toContainEqual({ code: "FORWARD_ORDER", message: `IPv4 filter: FORWARD decides before its jump to DOCKER-USER: ${rule}` });
    expect(Object.keys(json)).toEqual(["version", "ok", "backend", "backend_reason", "bundle", "loaded_bundle", "problems", "warnings", "docker", "reapplied", "checked_at"]);
  });

  it("a huge problem list is cut to fit 2,500 characters, the rest counted (MORE_PROBLEMS); text status lists them all", async () => {
    const host = new Host();
    expect((await host.run(A, ["apply"])).code).toBe(0);
    const accepts = Array.from({ length: 300 }, (_, i) => `-A FORWARD -s 192.0.2.${i % 250}/32 -m comment --comment "n${i}" -j ACCEPT`);
    host.edit(4, "filter", (l) => l.flatMap((x) => (x === "-A FORWARD -j DOCKER-USER" ? [...accepts, x] : [x])));
    writeFileSync(join(host.h.state, "reapply"), `7 1700000000 ${"\x01".repeat(500)}\n`);
    const { json, raw } = await statusJson(host, A);
    expect(raw.length - 1).toBeLessThanOrEqual(2500);
    expect(raw.length - 1).toBeGreaterThan(2000); // filled, not emptied
    const more = json.problems.at(-1)!;
    expect(more.code).toBe("MORE_PROBLEMS");
    const listed = json.problems.length - 1;
    expect(listed).toBeGreaterThan(0);
    expect(json.problems.slice(0, -1).every((p) => p.code === "FORWARD_ORDER")).toBe(true);
    expect(more.message).toBe(`${300 - listed} more problems not listed (status without --json lists them all)`);
    const text = await host.run(A, ["status"]);
    expect(text.stdout.split("\n").filter((l) => l.includes("FORWARD decides before")).length).toBe(300);
  });
});
