// BENCHMARKS.md's start-up table per Node version: bare `node -e 0`, and
// `dockinit check` / `render --stdout` of kitchen-sink with no code cache,
// on a first run (which compiles and writes the cache, scripts/launcher.cjs)
// and from the cache. Node 20 is this machine's node unless DOCKINIT_NODE20
// names one; Node 22 and 24 are measured when DOCKINIT_NODE22 and
// DOCKINIT_NODE24 name their binaries (.ci/run installs them under
// /var/cache/dockinit-test/node<major>), and said not measured otherwise.
// `npm run bench` writes the section; `node scripts/bench-node.mjs` prints it.
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const KITCHEN = join(REPO, "test", "fixtures", "kitchen-sink", "dockinit.yaml");
export const MAJORS = [20, 22, 24];

/** The binary to measure for a Node major, or undefined. */
export function nodeFor(major) {
  const fromEnv = process.env[`DOCKINIT_NODE${major}`];
  if (fromEnv) return fromEnv;
  return process.versions.node.split(".")[0] === String(major) ? process.execPath : undefined;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(1)} ms`;

/** Medians of commands timed in turn, round after round (one warm-up round); `before` runs untimed. */
function timeInterleaved(commands, runs) {
  const samples = commands.map(() => []);
  for (let round = -1; round < runs; round++) {
    commands.forEach((c, i) => {
      c.before?.();
      const t0 = process.hrtime.bigint();
      const r = spawnSync(c.cmd, c.args, { stdio: "ignore", env: { ...process.env, ...c.env } });
      const took = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${c.cmd} ${c.args.join(" ")} exited ${r.status}`);
      if (round >= 0) samples[i].push(took);
    });
  }
  return samples.map(median);
}

export function nodeStartupSection({ runs = 30 } = {}) {
  const work = mkdtempSync(join(tmpdir(), "dockinit-bench-node-"));
  // bin/ without the shipped cache: what every Node but the building one meets.
  const bare = join(work, "bin");
  mkdirSync(bare);
  for (const f of ["dockinit.cjs", "dockinit-main.cjs"]) copyFileSync(join(REPO, "bin", f), join(bare, f));
  // A cache directory that cannot be made (it would be under a file).
  writeFileSync(join(work, "file"), "");
  const unwritable = { XDG_CACHE_HOME: join(work, "file", "cache") };

  const lines = [
    "## CLI start-up per Node version",
    "",
    `Median of ${runs} runs of each, taken in turn per Node (one round of warm-up); \`kitchen-sink.yaml\`.`,
    "*No cache*: the cache directory cannot be written, so every start compiles the bundle (what Node 22 and 24 paid",
    "before the cache per V8 version: the build's cache, made by Node 20, is rejected by their V8). *First run*: a Node",
    "with no cache yet compiles and, at exit, writes its cache (to `$XDG_CACHE_HOME/dockinit`). *Warm*: from the cache",
    "(for the Node that ran the build, the one shipped in bin/).",
    "",
    "| Node | `node -e 0` | command | no cache | first run | warm | warm − bare node | warm ÷ bare node |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const major of MAJORS) {
    const node = nodeFor(major);
    if (!node) {
      lines.push(`| ${major} | not measured (set \`DOCKINIT_NODE${major}\` to a Node ${major} binary) | | | | | | |`);
      continue;
    }
    const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
    if (!version.startsWith(`v${major}.`)) throw new Error(`DOCKINIT_NODE${major}=${node} is ${version}`);
    const cold = join(work, `cold-${major}`);
    const warm = { XDG_CACHE_HOME: join(work, `warm-${major}`) }; // written by the warm-up round
    const commands = [{ cmd: node, args: ["-e", "0"] }];
    for (const args of [["check", "-c", KITCHEN], ["render", "-c", KITCHEN, "--stdout"]]) {
      commands.push(
        { cmd: node, args: [join(bare, "dockinit.cjs"), ...args], env: unwritable },
        { cmd: node, args: [join(bare, "dockinit.cjs"), ...args], env: { XDG_CACHE_HOME: cold }, before: () => rmSync(cold, { recursive: true, force: true }) },
        { cmd: node, args: [join(REPO, "bin", "dockinit.cjs"), ...args], env: warm },
      );
    }
    const [nodeMs, ...rest] = timeInterleaved(commands, runs);
    ["`check`", "`render --stdout`"].forEach((name, i) => {
      const [none, first, hot] = rest.slice(i * 3, i * 3 + 3);
      lines.push(`| ${version} | ${ms(nodeMs)} | ${name} | ${ms(none)} | ${ms(first)} | ${ms(hot)} | ${ms(hot - nodeMs)} | ${(hot / nodeMs).toFixed(2)}× |`);
    });
  }
  rmSync(work, { recursive: true, force: true });
  return lines.join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${nodeStartupSection({ runs: Number(process.env.BENCH_RUNS ?? 30) })}\n`);
}
