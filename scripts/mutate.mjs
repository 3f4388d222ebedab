#!/usr/bin/env node
// Mutation check: break one behaviour on purpose, run the tests that claim to
// prove it, and require that the named test fails. A mutation its test does
// not notice is a hole in the proof; a mutation whose target text is gone
// (the code moved on) is a failure too, never a skip: update the mutation.
//
// Everything happens in a copy of the working tree under the system's temp
// directory (node_modules and .cache linked, ../shared linked beside it), so a
// mutation never appears in the tree you (or anyone else) are editing, and an
// interrupted run leaves nothing behind but that directory.
//
//   node scripts/mutate.mjs             the unit tests each mutation names (no root; about 2 minutes on 2 cores)
//   node scripts/mutate.mjs --system    also the system tests it names, where only packets show the break (root; about 6 minutes in all)
//   node scripts/mutate.mjs --only ID,ID   some mutations
//   node scripts/mutate.mjs --list      the mutations and the tests that must catch them
//   node scripts/mutate.mjs --keep      keep the copy (its path is printed)
//
// First the named tests run once unbroken: each must exist and pass, or the
// run fails (a renamed test would otherwise "catch" nothing forever). Then,
// per mutation, it is caught only when every test it names fails while some
// test of the same run still passes (a mutation that breaks the build proves
// nothing). Exit 0 only when every mutation is caught.
//
// The system part uses one Docker engine, the machine's (DOCKINIT_DOCKER_MATRIX
// =bookworm): a break that packets show once is shown.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const BEHAVIOUR = "test/unit/script-behaviour.test.ts";

/**
 * Each mutation: an id, what it breaks (in the words of a bug report), the
 * file and the exact text replaced (it must occur exactly once), its broken
 * version, and the tests that must fail: `unit` (run always) and `system`
 * (with --system; tests that show the break with real packets). A test is
 * named by its file and a part of its full name ("describe > test"); every
 * test named must fail. A system test may say `within`: the describe block
 * it needs (vitest -t), so a mutated run skips the file's other blocks.
 */
export const MUTATIONS = [
  {
    id: "lock-firewall",
    breaks: "the lock: two dockinit-firewall runs at once (flock's wait replaced by true)",
    file: "templates/firewall/partials/lock.sh.hbs",
    from: 'flock -w "$LOCK_WAIT" 9 || die',
    to: 'true || die',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the lock > two applies at once take turns" },
      { file: BEHAVIOUR, test: "nftables backend: the lock > two applies at once take turns" },
    ],
    system: [],
  },
  {
    id: "lock-proxy",
    breaks: "the lock: dockinit-proxy adds its port while an apply holds the lock",
    file: "templates/dockinit-proxy.sh.hbs",
    from: "&& flock -w 10 9; }",
    to: "&& true; }",
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the lock > dockinit-proxy waits while an apply holds the lock" },
      { file: BEHAVIOUR, test: "nftables backend: the lock > dockinit-proxy waits while an apply holds the lock" },
    ],
    system: [],
  },
  {
    id: "drop-in-failure-ignored",
    breaks: "docker.service's drop-in: Docker starts even when the policies fail (ExecStartPre=-...)",
    file: "src/render/units.ts",
    from: "ExecStartPre=${HOST_PATHS.firewallScript} apply-policies",
    to: "ExecStartPre=-${HOST_PATHS.firewallScript} apply-policies",
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: docker.service's drop-in > Docker does not start when the policies cannot be loaded" },
      { file: BEHAVIOUR, test: "nftables backend: docker.service's drop-in > Docker does not start when the policies cannot be loaded" },
    ],
    // With real systemd: test/system/boot.test.ts "a failed apply keeps Docker down" (a booted
    // guest, minutes per run: not repeated here).
    system: [],
  },
  {
    id: "iptables-jump-appended",
    breaks: "iptables backend: dockinit's jumps appended below Docker's rules instead of put first",
    file: "templates/firewall/iptables.sh.hbs",
    from: "printf -- '-I %s 1 -j %s\\n' \"$parent\" \"$chain\"",
    to: "printf -- '-A %s -j %s\\n' \"$parent\" \"$chain\"",
    unit: [{ file: BEHAVIOUR, test: "each backend's rules come first > iptables: after apply on a host where Docker runs" }],
    system: [{ file: "test/system/firewall-engine.test.ts", within: "iptables backend (nft): ephemeral-port fix", test: "status names a MASQUERADE inserted above the jump, the traffic proves it shadows" }],
  },
  {
    id: "nftables-nat-after-docker",
    breaks: "nftables backend: dockinit's source-port rewrite runs after Docker's NAT (priority srcnat + 10), which shadows it",
    file: "src/render/print-nft.ts",
    from: 'postrouting: "nat hook postrouting priority srcnat - 10"',
    to: 'postrouting: "nat hook postrouting priority srcnat + 10"',
    unit: [{ file: BEHAVIOUR, test: "each backend's rules come first > nftables: every base chain of dockinit's table runs before" }],
    system: [{ file: "test/system/firewall-engine.test.ts", within: "nftables backend: a chain at srcnat - 10", test: "a Docker-style MASQUERADE inserted at the top of nat POSTROUTING does not shadow it" }],
  },
  {
    id: "nftables-forward-accepts-appended",
    breaks: "nftables backend: the port forwards' accepts appended to DOCKER-USER, below Docker's RETURN",
    file: "templates/firewall/nftables.sh.hbs",
    from: 'sed -n "s/^$fam /-I $chain 1 /p" | tac',
    to: 'sed -n "s/^$fam /-A $chain /p"',
    unit: [{ file: BEHAVIOUR, test: "each backend's rules come first > nftables: the port forwards' accepts go first in DOCKER-USER" }],
    system: [{ file: "test/system/policies.test.ts", within: "nftables backend: policies against real Docker", test: "nftables backend: the forwards' accepts sit first in DOCKER-USER" }],
  },
  {
    id: "iptables-ipv6-with-iptables",
    breaks: "iptables backend: IPv6 rules loaded with iptables instead of ip6tables",
    file: "templates/firewall/iptables.sh.hbs",
    from: 'ipt_cmd() { if [ "$1" = 4 ]; then echo iptables; else echo ip6tables; fi; }',
    to: "ipt_cmd() { echo iptables; }",
    unit: [{ file: BEHAVIOUR, test: "each family's rules go to its own tool > iptables backend: IPv4 rules to iptables-restore, IPv6 rules to ip6tables-restore" }],
    system: [{ file: "test/system/firewall-engine.test.ts", within: "iptables backend (nft): ephemeral-port fix", test: "apply remaps TCP and UDP ports 33000/40000/45000 into 49152-61000, IPv4 and IPv6" }],
  },
  {
    id: "nftables-ipv6-forward-accept-with-iptables",
    breaks: "nftables backend: the IPv6 port forwards' accepts for FORWARD loaded with iptables instead of ip6tables",
    file: "templates/firewall/nftables.sh.hbs",
    from: '[ "$fam" = 4 ] || ipt=ip6tables',
    to: '[ "$fam" = 4 ] || ipt=iptables',
    unit: [{ file: BEHAVIOUR, test: "each family's rules go to its own tool > nftables backend: each port forward's accept for iptables' FORWARD goes to its own family's iptables" }],
    system: [{ file: "test/system/policies.test.ts", within: "nftables backend: policies against real Docker", test: "port forward: with iptables' FORWARD policy DROP (Docker's), a client outside and the host itself reach the target through host port 9000 (v4 and v6)" }],
  },
  {
    id: "proxy-starts-without-its-port-ipset",
    breaks: "dockinit-proxy (iptables backend) starts docker-proxy though its port could not be added to the ipset",
    file: "templates/dockinit-proxy.sh.hbs",
    from: '-exist || die "cannot add',
    to: '-exist || : "cannot add',
    unit: [{ file: BEHAVIOUR, test: "iptables backend: dockinit-proxy and docker-proxy's port > refuses to start docker-proxy when the port cannot be added" }],
    system: [],
  },
  {
    id: "proxy-starts-without-its-port-nft",
    breaks: "dockinit-proxy (nftables backend) starts docker-proxy though its port could not be added to the nft set",
    file: "templates/dockinit-proxy.sh.hbs",
    from: '"{ $host_port }" || die "cannot add',
    to: '"{ $host_port }" || : "cannot add',
    unit: [{ file: BEHAVIOUR, test: "nftables backend: dockinit-proxy and docker-proxy's port > refuses to start docker-proxy when the port cannot be added" }],
    system: [],
  },
  {
    id: "iptables-rewrite-upper-port-lost",
    breaks: "iptables backend: the rewrite's upper port one lower (--to-ports LOW-(HIGH-1))",
    file: "src/render/print-iptables.ts",
    from: '`-j MASQUERADE --to-ports ${portSpan(v.masquerade.toPorts, "-")}`',
    to: '`-j MASQUERADE --to-ports ${portSpan({ ...v.masquerade.toPorts, high: v.masquerade.toPorts.high - 1 }, "-")}`',
    unit: [{ file: BEHAVIOUR, test: "iptables backend: the source-port rewrite's range, edge to edge" }],
    system: [],
  },
  {
    id: "nftables-match-one-port-too-many",
    breaks: "nftables backend: the port after the matched range rewritten too (sport LOW-(HIGH+1))",
    file: "src/render/print-nft.ts",
    from: 'if ("sport" in m) return [`${m.proto} sport ${span(m.sport)}`];',
    to: 'if ("sport" in m) return [`${m.proto} sport ${span({ ...m.sport, high: m.sport.high + 1 })}`];',
    unit: [{ file: BEHAVIOUR, test: "nftables backend: the source-port rewrite's range, edge to edge" }],
    system: [],
  },
  {
    id: "forward-filter-direction",
    breaks: "a policy's direction: the forward filter passes what the client sends instead of the replies",
    file: "src/render/firewall-rules.ts",
    from: 'match: [{ ct: { direction: "reply" } }], verdict: { pass: true }, means: "replies: pass',
    to: 'match: [{ ct: { direction: "original" } }], verdict: { pass: true }, means: "replies: pass',
    // What a client outside the allow-list sends now reaches the container, and the
    // replies a listed client gets are dropped (as DNAT traffic) instead.
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: verdicts on the forward and docker-proxy paths > forward: a client outside the allow-list" },
      { file: BEHAVIOUR, test: "nftables backend: verdicts on the forward and docker-proxy paths > forward: a client outside the allow-list" },
      { file: BEHAVIOUR, test: "backend: verdicts on the forward and docker-proxy paths > forward: the container's replies to a listed client" },
    ],
    system: [{ file: "test/system/closed-paths.test.ts", within: "iptables backend: every path to a published port", test: "verdict table, a listed network" }],
  },
  {
    id: "checker-never-reapplies",
    breaks: "the checker: drift is found but nothing is applied (do_apply skipped)",
    file: "templates/firewall/partials/checker.sh.hbs",
    from: '  do_apply\n  why=$(do_status 2>&1) || log "status still fails',
    to: '  :\n  why=$(do_status 2>&1) || log "status still fails',
    unit: [{ file: BEHAVIOUR, test: "the checker: re-apply on drift, record it, and not too often > drift (the table flushed)" }],
    system: [{ file: "test/system/checker.test.ts", within: "nftables backend: the checker puts the rules back", test: "after `nft flush ruleset` the rules are back" }],
  },
  {
    id: "checker-no-rate-limit",
    breaks: "the checker: re-applies without limit (a fight with whatever undoes the rules never pauses)",
    file: "templates/firewall/partials/checker.sh.hbs",
    from: 'REAPPLY_MAX=30 REAPPLY_WINDOW=60',
    to: 'REAPPLY_MAX=500 REAPPLY_WINDOW=60',
    unit: [{ file: BEHAVIOUR, test: "the checker: re-apply on drift, record it, and not too often > at most 30 re-applies a minute" }],
    system: [],
  },
  {
    id: "proxy-any-process",
    breaks: "proxy_ports takes a container's process (another mount namespace) or another user's for docker-proxy",
    file: "templates/firewall/partials/proxyPorts.sh.hbs",
    from: '[[ $1/$2/ns/mnt -ef $1/self/ns/mnt ]] || return 1',
    to: 'return 0',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the docker-proxies apply counts > apply counts the host's docker-proxies only" },
      { file: BEHAVIOUR, test: "nftables backend: the docker-proxies apply counts > apply counts the host's docker-proxies only" },
    ],
    system: [{ file: "test/system/proxy-trust.test.ts", within: "nftables backend: only the host's docker-proxies reach the proxy sets", test: "look-alike containers" }],
  },
  {
    id: "proxy-any-executable",
    breaks: "proxy_ports takes any executable with docker-proxy's arguments for docker-proxy",
    file: "templates/firewall/partials/proxyPorts.sh.hbs",
    from: '[[ ! $proc/$p/exe -ef $x ]] || why=""',
    to: 'why=""',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the docker-proxies apply counts > apply counts the host's docker-proxies only" },
      { file: BEHAVIOUR, test: "nftables backend: the docker-proxies apply counts > apply counts the host's docker-proxies only" },
    ],
    system: [],
  },
  {
    id: "proxy-port-range",
    breaks: "proxy_ports passes a port above 65535 to nft/ipset (the whole load fails)",
    file: "templates/firewall/partials/proxyPorts.sh.hbs",
    from: '((port <= 65535))',
    to: 'true',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the docker-proxies apply counts > apply counts the host's docker-proxies only" },
      { file: BEHAVIOUR, test: "nftables backend: the docker-proxies apply counts > apply counts the host's docker-proxies only" },
    ],
    system: [],
  },
  {
    id: "proxy-wrapper-port-range",
    breaks: "dockinit-proxy adds a port above 65535 to the set",
    file: "templates/dockinit-proxy.sh.hbs",
    from: '[ "$host_port" -le 65535 ] ;;',
    to: 'true ;;',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: dockinit-proxy takes only what a real dockerd passes > refuses -proto tcp -host-port 99999" },
      { file: BEHAVIOUR, test: "nftables backend: dockinit-proxy takes only what a real dockerd passes > refuses -proto tcp -host-port 99999" },
    ],
    system: [],
  },
  {
    id: "lock-mode",
    breaks: "the lock: an existing state directory (0755) and lock (0644) stay open to every user",
    file: "templates/firewall/partials/lock.sh.hbs",
    from: 'chmod go= "$STATE_DIR" "$STATE_DIR/lock"',
    to: 'true',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the lock's directory > an existing state directory open to all" },
      { file: BEHAVIOUR, test: "nftables backend: the lock's directory > an existing state directory open to all" },
    ],
    system: [{ file: "test/system/proxy-trust.test.ts", within: "the lock: only root can open it", test: "as an older version left it" }],
  },
  {
    id: "lock-symlink",
    breaks: "the lock: a state directory that is a symlink is followed",
    file: "templates/firewall/partials/lock.sh.hbs",
    from: 'if [ -L "$STATE_DIR" ] || [ ! -d "$STATE_DIR" ]',
    to: 'if [ ! -d "$STATE_DIR" ]',
    unit: [
      { file: BEHAVIOUR, test: "iptables backend: the lock's directory > a state directory that is a symlink is refused" },
      { file: BEHAVIOUR, test: "nftables backend: the lock's directory > a state directory that is a symlink is refused" },
    ],
    system: [],
  },
  {
    id: "user-file-crlf",
    breaks: "user file contents rewritten (CRLF to LF) in the cloud-config",
    file: "src/render/cloud-config.ts",
    from: "      content: a.content,",
    to: '      content: a.content.replace(/\\r\\n/g, "\\n"),',
    unit: [{ file: "test/unit/injection.test.ts", test: "" }],
    system: [],
  },
];

/** Where a mutation's text is: an error message unless it occurs exactly once. */
export function locate(text, m) {
  const first = text.indexOf(m.from);
  if (first < 0) return { error: `${m.file} no longer contains ${JSON.stringify(m.from)}: the code moved on; update the mutation in scripts/mutate.mjs` };
  if (text.indexOf(m.from, first + 1) >= 0) return { error: `${m.file} contains ${JSON.stringify(m.from)} more than once: make the mutation's text unique` };
  return { at: first };
}

/** Top-level entries never copied: dependencies and caches are linked instead, git state is not needed. */
const NOT_COPIED = new Set(["node_modules", ".cache", ".git", ".scratch"]);

/** A copy of the working tree to mutate: sources copied, node_modules and .cache linked entry by entry (their own caches stay in the copy). */
function workCopy() {
  const top = mkdtempSync(join(tmpdir(), "dockinit-mutate-"));
  const copy = join(top, basename(REPO));
  cpSync(REPO, copy, { recursive: true, filter: (src) => !NOT_COPIED.has(relative(REPO, src).split("/")[0]) });
  for (const [dir, keep] of [
    ["node_modules", (n) => n !== ".vite" && n !== ".vitest"],
    // compat: the compatibility table's results must come from unmutated runs only.
    [".cache", (n) => n !== "compat"],
  ]) {
    mkdirSync(join(copy, dir), { recursive: true });
    if (!existsSync(join(REPO, dir))) continue;
    for (const n of readdirSync(join(REPO, dir))) if (keep(n)) symlinkSync(join(REPO, dir, n), join(copy, dir, n));
  }
  const shared = resolve(REPO, "..", "shared");
  if (existsSync(shared)) symlinkSync(shared, join(top, "shared"));
  return { top, copy };
}

/** vitest in the copy over some files: each test's full name ("describe > test") and state. */
function vitest(copy, files, projects, env = {}, extra = []) {
  const out = join(copy, ".mutate-report.json");
  rmSync(out, { force: true });
  const args = [join(copy, "node_modules/vitest/vitest.mjs"), "run", "--reporter=json", `--outputFile=${out}`, ...projects.flatMap((p) => ["--project", p]), ...extra, ...files];
  const started = Date.now();
  const r = spawnSync(process.execPath, args, { cwd: copy, encoding: "utf8", maxBuffer: 256 << 20, env: { ...process.env, ...env } });
  const seconds = (Date.now() - started) / 1000;
  if (!existsSync(out)) return { seconds, error: `vitest wrote no report (exit ${r.status}):\n${(r.stderr || r.stdout).slice(-2000)}`, tests: [] };
  const report = JSON.parse(readFileSync(out, "utf8"));
  const tests = report.testResults.flatMap((f) => {
    const file = relative(copy, f.name);
    // A file that failed to load has no tests, only a message.
    if (f.assertionResults.length === 0) return [{ file, name: "(the file itself)", state: f.status === "failed" ? "failed" : "skipped", message: f.message }];
    return f.assertionResults.map((a) => ({ file, name: [...a.ancestorTitles, a.title].join(" > "), state: a.status, message: (a.failureMessages ?? []).join("\n") }));
  });
  return { seconds, tests };
}

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** Tests of test/unit/script-behaviour.test.ts no mutation breaks: they pass in every mutated run unless the build itself is broken. */
const UNIT_SENTINELS = ["takes the edges, 1 and 65535 (the control)", "no drift: nothing is loaded, nothing recorded, nothing logged"];
const named = (tests, want) => tests.filter((t) => t.file === want.file && t.name.includes(want.test) && (!want.within || t.name.includes(want.within)));
const uniq = (xs) => [...new Set(xs)];

function parseArgs(argv) {
  const opts = { system: false, keep: false, list: false, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--system") opts.system = true;
    else if (a === "--keep") opts.keep = true;
    else if (a === "--list") opts.list = true;
    else if (a === "--only") opts.only = argv[++i]?.split(",");
    else if (a.startsWith("--only=")) opts.only = a.slice("--only=".length).split(",");
    else throw new Error(`unknown argument ${a} (see the comment at the top of scripts/mutate.mjs)`);
  }
  return opts;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  let chosen = MUTATIONS;
  if (opts.only) {
    const unknown = opts.only.filter((id) => !MUTATIONS.some((m) => m.id === id));
    if (unknown.length > 0) throw new Error(`no mutation ${unknown.join(", ")}; --list shows them`);
    chosen = MUTATIONS.filter((m) => opts.only.includes(m.id));
  }
  const catchers = (m) => [...m.unit, ...(opts.system ? m.system : [])];
  if (opts.list) {
    for (const m of chosen) {
      console.log(`${m.id}: ${m.breaks}\n  ${m.file}`);
      for (const t of m.unit) console.log(`  unit:   ${t.file} > ${t.test || "(any test)"}`);
      for (const t of m.system) console.log(`  system: ${t.file} > ${t.within ? `${t.within} ... > ` : ""}${t.test}`);
    }
    return 0;
  }
  const projects = { unit: ["unit"], system: ["system", "system-serial"] };
  // CI's rule for system tests: one that cannot run is a failure, not a skip.
  // One Docker engine (the machine's): a break shown with packets once is shown.
  const systemEnv = { DOCKINIT_REQUIRE_SYSTEM_TESTS: "1", DOCKINIT_DOCKER_MATRIX: "bookworm", DOCKINIT_BOOT_MATRIX: "bookworm" };
  const started = Date.now();
  const { top, copy } = workCopy();
  console.log(`mutating a copy of the working tree: ${copy}`);
  const problems = [];
  try {
    // Every target first: a vanished text fails the run before anything runs.
    for (const m of chosen) {
      const where = locate(readFileSync(join(copy, m.file), "utf8"), m);
      if (where.error) problems.push(`${m.id}: ${where.error}`);
    }
    // The named tests, unbroken: they exist and pass.
    const runParts = (wanted, label, { filter = false } = {}) => {
      const files = wanted.map((t) => t.file);
      const unitFiles = uniq(files.filter((f) => f.startsWith("test/unit/")));
      const system = wanted.filter((t) => t.file.startsWith("test/system/"));
      const parts = [];
      if (unitFiles.length > 0) {
        // Only the named tests and a sentinel or two (a mutation that breaks the
        // build fails them too, so "some test still passes" keeps its meaning):
        // each whole file would cost 15 s a mutation. A test named "" (any
        // test of the file) needs the whole file.
        const unitWanted = wanted.filter((t) => t.file.startsWith("test/unit/"));
        const titles = unitWanted.map((t) => t.test.split(" > ").pop());
        const only = filter && titles.every(Boolean) ? ["-t", uniq([...titles, ...UNIT_SENTINELS]).map(escapeRegExp).join("|")] : [];
        parts.push(vitest(copy, unitFiles, projects.unit, {}, only));
      }
      if (system.length > 0) {
        const within = filter && system.every((t) => t.within) ? ["-t", uniq(system.map((t) => escapeRegExp(t.within))).join("|")] : [];
        parts.push(vitest(copy, uniq(system.map((t) => t.file)), projects.system, systemEnv, within));
      }
      const seconds = parts.reduce((s, p) => s + p.seconds, 0);
      for (const p of parts) if (p.error) problems.push(`${label}: ${p.error}`);
      return { seconds, tests: parts.flatMap((p) => p.tests), broken: parts.some((p) => p.error) };
    };
    const allCatchers = chosen.flatMap(catchers);
    const baseline = runParts(allCatchers, "unbroken run", { filter: true });
    console.log(`\nunbroken: ${baseline.tests.length} tests in ${uniq(allCatchers.map((t) => t.file)).length} files, ${baseline.seconds.toFixed(1)} s`);
    for (const want of uniq(allCatchers.map((t) => JSON.stringify(t))).map((s) => JSON.parse(s))) {
      const found = named(baseline.tests, want);
      const label = `${want.file} > ${want.test || "(any test)"}`;
      if (found.length === 0) problems.push(`unbroken run: no test named ${label} (renamed? update scripts/mutate.mjs)`);
      for (const t of found) if (t.state !== "passed") problems.push(`unbroken run: ${t.file} > ${t.name} is ${t.state}, before any mutation${t.message ? `:\n${t.message.slice(0, 1500)}` : ""}`);
    }
    if (problems.length > 0) throw new Error("stopping: the unbroken run must pass first");

    for (const m of chosen) {
      const path = join(copy, m.file);
      const text = readFileSync(path, "utf8");
      const where = locate(text, m);
      if (where.error) continue; // reported above
      writeFileSync(path, text.slice(0, where.at) + m.to + text.slice(where.at + m.from.length));
      let r;
      try {
        r = runParts(catchers(m), m.id, { filter: true });
      } finally {
        writeFileSync(path, text);
      }
      const label = (want) => `${want.file} > ${want.test || "(any test)"}`;
      const failedFor = catchers(m).map((want) => ({ want, failed: named(r.tests, want).filter((t) => t.state === "failed") }));
      const caughtBy = failedFor.flatMap((c) => c.failed);
      const passing = r.tests.filter((t) => t.state === "passed").length;
      const otherFailures = r.tests.filter((t) => t.state === "failed" && !caughtBy.includes(t));
      console.log(`\n## ${m.id}: ${m.breaks}\n   ${m.file}; ${r.seconds.toFixed(1)} s`);
      if (r.broken) continue; // reported
      for (const { want, failed } of failedFor) console.log(`   ${failed.length > 0 ? "caught" : "NOT CAUGHT"} by ${label(want)}${failed.length > 1 ? ` (${failed.length} tests)` : ""}`);
      if (otherFailures.length > 0) console.log(`   also failing: ${otherFailures.slice(0, 4).map((t) => t.name).join("; ")}${otherFailures.length > 4 ? `; and ${otherFailures.length - 4} more` : ""}`);
      const missed = failedFor.filter((c) => c.failed.length === 0);
      if (missed.length > 0) problems.push(`${m.id}: NOT CAUGHT by ${missed.map((c) => label(c.want)).join("; ")}${otherFailures.length > 0 ? ` (other tests failed: ${otherFailures.map((t) => t.name).join("; ")})` : ""}`);
      if (passing === 0) {
        problems.push(`${m.id}: every test failed: the mutated code does not build or load, so it proves nothing; change the mutation`);
        console.log("   every test failed (the mutation breaks the build)");
      }
    }
  } catch (e) {
    if (!(e instanceof Error && e.message.startsWith("stopping:"))) throw e;
  } finally {
    if (opts.keep) console.log(`\nkept: ${copy}`);
    else rmSync(top, { recursive: true, force: true });
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  if (problems.length > 0) {
    console.error(`\nmutate: ${problems.length} problem(s) (${seconds} s):`);
    for (const p of problems) console.error(`- ${p}`);
    return 1;
  }
  console.log(`\nall ${chosen.length} mutations caught by their named tests${opts.system ? " (unit and system)" : " (unit)"}, ${seconds} s`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) process.exit(main());
