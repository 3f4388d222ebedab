// npm run bench: every benchmark, rewritten into BENCHMARKS.md. Each measure
// is the median of repeated runs with min/max, next to a baseline measured in
// the same run (bare `node -e 0`, cloud-init's make-mime, one raw
// iptables-restore). Nothing here asserts; the numbers are for people.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const BIN = join(REPO, "bin", "dockinit.cjs");
const KITCHEN = join(REPO, "test", "fixtures", "kitchen-sink", "dockinit.yaml");
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const work = mkdtempSync(join(tmpdir(), "dockinit-bench-"));

const sections = [];

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1], n: s.length };
}

const ms = (x) => `${x.toFixed(1)} ms`;

/** Wall time of a command, in ms, over `runs` runs (after one warm-up). */
function timeCommand(cmd, args, runs = RUNS, opts = {}) {
  spawnSync(cmd, args, { stdio: "ignore", ...opts });
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: "ignore", ...opts });
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}`);
  }
  return stats(samples);
}

/** Peak RSS (KiB) of one run, from GNU time. */
function peakRss(cmd, args) {
  if (!existsSync("/usr/bin/time")) return undefined;
  const r = spawnSync("/usr/bin/time", ["-f", "%M", cmd, ...args], { encoding: "utf8" });
  return Number(r.stderr.trim().split("\n").pop());
}

function row(name, st, baseline) {
  return `| ${name} | ${ms(st.median)} | ${ms(st.min)} – ${ms(st.max)} | ${baseline ? `${(st.median / baseline.median).toFixed(2)}×` : "1.00×"} |`;
}

/**
 * Several commands timed in turn, round after round, so that a slow spell of
 * this (shared, virtual) machine falls on all of them alike and the ratios
 * hold. Each has one untimed warm-up; `before` runs untimed before each run.
 */
function timeInterleaved(commands, runs = RUNS) {
  const samples = commands.map(() => []);
  for (let round = -1; round < runs; round++) {
    commands.forEach((c, i) => {
      c.before?.();
      const t0 = process.hrtime.bigint();
      const r = spawnSync(c.cmd, c.args, { stdio: "ignore" });
      const took = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${c.cmd} ${c.args.join(" ")} exited ${r.status}`);
      if (round >= 0) samples[i].push(took);
    });
  }
  return samples.map(stats);
}

// ── CLI start-up ──────────────────────────────────────────────────────────
{
  const fresh = join(work, "fresh");
  const [node, render, renderFresh, check] = timeInterleaved([
    { cmd: process.execPath, args: ["-e", "0"] },
    { cmd: process.execPath, args: [BIN, "render", "-c", KITCHEN, "-o", join(work, "out")] },
    { cmd: process.execPath, args: [BIN, "render", "-c", KITCHEN, "-o", fresh], before: () => rmSync(fresh, { recursive: true, force: true }) },
    { cmd: process.execPath, args: [BIN, "check", "-c", KITCHEN] },
  ]);
  const lines = [
    "## CLI start-up (cold process, `kitchen-sink.yaml`)",
    "",
    `Median of ${RUNS} runs of each, taken in turn (one round of warm-up); ratio to bare \`node -e 0\` measured in the same rounds.`,
    "A render into an out/ that already holds the bundle reads it back and writes nothing; a render into a new directory writes every file.",
    "",
    "| command | median | min – max | ratio |",
    "| --- | --- | --- | --- |",
    row("`node -e 0`", node),
    row("`dockinit render` (out/ up to date)", render, node),
    row("`dockinit render` (new out/)", renderFresh, node),
    row("`dockinit check`", check, node),
  ];
  const seedCfg = join(work, "cloud-config.yaml");
  writeFileSync(seedCfg, "#cloud-config\nruncmd: [[true]]\n");
  const mimeCmd = "/usr/bin/cloud-init";
  if (existsSync(mimeCmd)) {
    const mime = timeCommand("/usr/bin/python3", [mimeCmd, "devel", "make-mime", "-a", `${seedCfg}:cloud-config`], Math.min(RUNS, 10));
    lines.push(row("`cloud-init devel make-mime` (reference)", mime, node));
  }
  const rssNode = peakRss(process.execPath, ["-e", "0"]);
  const rssRender = peakRss(process.execPath, [BIN, "render", "-c", KITCHEN, "-o", join(work, "out2")]);
  if (rssNode && rssRender) {
    lines.push("", `Peak memory (max RSS): \`dockinit render\` ${(rssRender / 1024).toFixed(1)} MiB, bare node ${(rssNode / 1024).toFixed(1)} MiB.`);
  }
  sections.push(lines.join("\n"));
}

// ── CLI start-up per Node version (scripts/bench-node.mjs) ────────────────
sections.push((await import("./bench-node.mjs")).nodeStartupSection({ runs: RUNS }));

// ── Library throughput ────────────────────────────────────────────────────
{
  const lib = await import(join(REPO, "dist", "index.js"));
  const source = readFileSync(KITCHEN, "utf8");
  const files = lib.directoryReader(join(REPO, "test", "fixtures", "kitchen-sink"));
  const renderOnce = (i) => {
    const loaded = lib.loadConfigString(source.replace("name: kitchen-sink", `name: kitchen-sink-${i}`), { files });
    const r = lib.renderBundle(loaded);
    if (!r.bundle) throw new Error("render failed");
    if (r.bundle.manifest.files.length === 0) throw new Error("no files"); // the manifest (and its hashes) is computed on first read
  };
  for (let i = 0; i < 50; i++) renderOnce(i); // warm-up: JIT, template compilation once
  const lines = [
    "## Library: configs rendered in one process",
    "",
    "`loadConfigString` + `renderBundle` of `kitchen-sink.yaml` (a distinct `name` each time); templates are compiled once per process.",
    "",
    "| configs | median of 10 runs | configs/s |",
    "| --- | --- | --- |",
  ];
  for (const n of [100, 300, 1000]) {
    const samples = [];
    for (let rep = 0; rep < 10; rep++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) renderOnce(i);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const st = stats(samples);
    lines.push(`| ${n} | ${ms(st.median)} | ${Math.round((n / st.median) * 1000)} |`);
  }
  lines.push("", "Linear growth shows as a constant configs/s down the table.");
  sections.push(lines.join("\n"));
}

// ── Firewall apply ────────────────────────────────────────────────────────
function canRunNamespaces() {
  if (process.getuid?.() !== 0) return "needs root";
  for (const c of ["ip", "iptables", "iptables-restore", "nsenter"]) {
    if (spawnSync("sh", ["-c", `command -v ${c}`]).status !== 0) return `needs ${c}`;
  }
  return undefined;
}

{
  const why = canRunNamespaces();
  const lines = ["## Firewall apply (iptables, nf_tables backend)", ""];
  if (why) {
    lines.push(`Skipped: ${why}.`);
  } else {
    const lib = await import(join(REPO, "dist", "index.js"));
    lines.push(
      "Rules loaded into a fresh network namespace. `dockinit apply` is the rendered script (preflight, one iptables-save,",
      "one iptables-restore); *re-apply* is a second apply of the unchanged set (one iptables-save, nothing to load); the",
      "baselines are one raw `iptables-restore --noflush` of the same rules and the naive one `iptables` call per rule.",
      "Medians of 11 runs (10 for the naive way), each in a fresh namespace.",
      "",
      "| rules | dockinit apply | re-apply | raw iptables-restore | naive iptables per rule | apply / raw | re-apply / raw |",
      "| --- | --- | --- | --- | --- | --- | --- |",
    );
    const cases = [
      ...[10, 100, 1000].map((n) => ({
        label: `${n} ephemeral-port rules (nat)`,
        table: "nat",
        // One MASQUERADE per source /32.
        yaml: `ephemeral_ports:\n  sources: [${Array.from({ length: n }, (_, i) => `172.17.${i >> 8}.${i & 255}/32`).join(", ")}]\nfirewall:\n  external_interface: lo\n  containers: { block_metadata: false }\n`,
      })),
      {
        label: "1000 published-port rules (filter)",
        table: "filter",
        // 1000 ports, each open to one network: a RETURN and a DROP per port.
        yaml: `ephemeral_ports: { enabled: false }\nfirewall:\n  external_interface: lo\n  containers: { block_metadata: false }\n  published:\n    rules: [${Array.from({ length: 1000 }, (_, i) => `{ port: ${10000 + i}, allow: [198.51.100.0/24] }`).join(", ")}]\n`,
      },
    ];
    for (const c of cases) {
      // The iptables backend by name: this measures apply against one raw
      // iptables-restore, and auto would choose nftables for these configs.
      const yaml = `version: 1\nname: bench\ndocker:\n  daemon:\n    dns: [amazon]\n${c.yaml.replace("firewall:\n", "firewall:\n  backend: iptables\n")}`;
      // The script alone: 1000 published ports make a user-data over EC2's
      // budget, but apply's cost is what is measured here.
      const { model } = lib.loadConfigString(yaml);
      const scriptText = lib.renderFirewallScript(model).content;
      const script = join(work, "fw");
      writeFileSync(script, scriptText, { mode: 0o755 });
      const rules = scriptText.match(/^-A DOCKINIT-\S+ .*$/gm).map((l) => l.replaceAll("@EXT_IF@", "lo"));
      const chains = [...new Set(rules.map((r) => r.split(" ")[1]))];
      const parent = c.table === "nat" ? "POSTROUTING" : "DOCKER-USER";
      const rawInput = [`*${c.table}`, ...(c.table === "filter" ? [":DOCKER-USER - [0:0]"] : []), ...chains.map((ch) => `:${ch} - [0:0]`), ...rules, ...chains.map((ch) => `-I ${parent} 1 -j ${ch}`), "COMMIT", ""].join("\n");
      const rawFile = join(work, "raw");
      writeFileSync(rawFile, rawInput);
      const ns = `di-bench-${process.pid}`;
      const inNs = (cmd) => ["--net=/run/netns/" + ns, "sh", "-c", cmd];
      const fresh = () => {
        spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
        execFileSync("ip", ["netns", "add", ns]);
        // IPv6 off: the rules are IPv4 only, like the raw baseline.
        execFileSync("nsenter", inNs("ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1"));
      };
      const env = { ...process.env, DOCKINIT_STATE_DIR: join(work, "state") };
      const runs = 11;
      const measure = (setup, cmd, count = runs) => {
        const samples = [];
        for (let i = 0; i < count; i++) {
          setup();
          const t0 = process.hrtime.bigint();
          const r = spawnSync("nsenter", inNs(cmd), { stdio: "ignore", env });
          samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (r.status !== 0) throw new Error(`${cmd} failed (${r.status})`);
        }
        return stats(samples);
      };
      const apply = measure(fresh, `bash ${script} apply`);
      const reapply = measure(() => {
        fresh();
        execFileSync("nsenter", inNs(`bash ${script} apply`), { env, stdio: "ignore" });
      }, `bash ${script} apply`);
      const raw = measure(fresh, `iptables-restore --noflush -w 10 < ${rawFile}`);
      const naiveFile = join(work, "naive");
      const naiveLines = [
        ...(c.table === "filter" ? ["iptables -w -N DOCKER-USER"] : []),
        ...chains.map((ch) => `iptables -w -t ${c.table} -N ${ch}`),
        ...rules.map((r) => `iptables -w -t ${c.table} ${r}`),
        ...chains.map((ch) => `iptables -w -t ${c.table} -I ${parent} 1 -j ${ch}`),
      ];
      writeFileSync(naiveFile, naiveLines.join("\n") + "\n");
      const naive = measure(fresh, `sh -e ${naiveFile}`, 10);
      spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      lines.push(`| ${c.label} | ${ms(apply.median)} | ${ms(reapply.median)} | ${ms(raw.median)} | ${ms(naive.median)} | ${(apply.median / raw.median).toFixed(2)}× | ${(reapply.median / raw.median).toFixed(2)}× |`);
    }
  }
  sections.push(lines.join("\n"));
}

rmSync(work, { recursive: true, force: true });
{
  // The size table renders the shared examples beside the clone; without them
  // the table already in BENCHMARKS.md stays (sizes.test.ts checks it where
  // they are).
  const { BEGIN, END, sizeSection } = await import("./sizes.mjs");
  if (existsSync(join(REPO, "..", "shared", "examples"))) sections.push(await sizeSection());
  else {
    const text = readFileSync(join(REPO, "BENCHMARKS.md"), "utf8");
    process.stderr.write("bench: ../shared/examples is missing beside the clone: the size table is kept as it was\n");
    sections.push(text.slice(text.indexOf(BEGIN), text.indexOf(END) + END.length));
  }
}

{
  // The boot figures come from booted guests (test/system/boot.test.ts's
  // "boot cost", DOCKINIT_BOOT_COST_RUNS=5), not from here: kept as they are.
  const text = existsSync(join(REPO, "BENCHMARKS.md")) ? readFileSync(join(REPO, "BENCHMARKS.md"), "utf8") : "";
  const [begin, end] = ["<!-- boot:begin -->", "<!-- boot:end -->"];
  if (text.includes(begin) && text.includes(end)) sections.push(text.slice(text.indexOf(begin), text.indexOf(end) + end.length));
}

const nodeVersion = process.version;
const header = [
  "# Benchmarks",
  "",
  "Written by `npm run bench` (scripts/bench.mjs); do not edit by hand.",
  "",
  `- date: ${new Date().toISOString().slice(0, 10)}`,
  `- machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB`,
  `- node: ${nodeVersion}`,
  `- iptables: ${spawnSync("iptables", ["-V"], { encoding: "utf8" }).stdout?.trim() ?? "n/a"}`,
  "",
].join("\n");
writeFileSync(join(REPO, "BENCHMARKS.md"), `${header}\n${sections.join("\n\n")}\n`);
process.stdout.write(`${header}\n${sections.join("\n\n")}\n`);
