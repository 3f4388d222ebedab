// Validators for thousands of bundles at once, for the property tests.
//
// validateBundle() runs every real validator on one bundle in about two
// seconds; ten thousand generated configurations need another plan:
//
// * cloud-init: one python process per batch (cloudinit_batch.py) loads every
//   cloud-config with cloud-init's YAML rules and compares it, as canonical
//   JSON, with what dockinit meant to emit; a sample goes through cloud-init's
//   own pure-Python loader and strict schema as well.
// * iptables/nft: every distinct rule line of every bundle is loaded into a
//   throwaway network namespace in one iptables-restore per table and family,
//   with both iptables backends, then read back with iptables-save: each line
//   must be accepted by the kernel and come back in exactly the text dockinit
//   generated (status and the no-op re-apply compare the two line by line).
//   nftables rulesets go through `nft -c` the same way.
// * shellcheck, bash -n, systemd-analyze: run once per distinct *shape* of an
//   artifact. A shape is the artifact with what cannot change its parse
//   replaced by placeholders: the bodies of quoted here-documents (bash reads
//   them as literal text; that no body ends early is checked separately on
//   every bundle), single-quoted words on one line without $, ` or \\ (one
//   literal word whatever its letters), runs of digits, the words nat
//   and filter, the validated config name, runs of identical lines and
//   paragraphs identical to an earlier one (the same function once per family
//   and table). Every other byte is kept, so a value that reached shell code
//   unquoted would make a new shape and be checked.
import { spawn, spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SYSTEM_PYTHON } from "./validators.js";

export const sha256 = (data: string | Buffer): string => createHash("sha256").update(data).digest("hex");

/** A copy of a JSON value with every object's keys sorted (the tests' own, independent of src/render/daemon-json.ts). */
export function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeysDeep((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** JSON as Python's json.dumps(sort_keys=True, ensure_ascii=True, separators=(",", ":")) writes it. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value)).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

// ── cloud-init, in batches ─────────────────────────────────────────────────

const BATCH_PY = join(dirname(fileURLToPath(import.meta.url)), "cloudinit_batch.py");

export interface CloudInitItem {
  id: number;
  userData: Buffer;
  /** The cloud-config object dockinit meant cloud-init to read. */
  expected: unknown;
  /** Contents of the MIME parts after the cloud-config, in order. */
  parts: string[];
  /** Also use cloud-init's own (pure-Python) loader and its strict schema. */
  exact: boolean;
}

export interface CloudInitFailure {
  id: number;
  errors: string[];
  got: unknown;
}

/**
 * Streams items to a file; `flush()` hands the file to one python process
 * that runs while the caller goes on generating (two CPUs: node renders,
 * python reads back).
 */
export class CloudInitBatch {
  private fd: number | undefined;
  private file = "";
  private chunk = 0;
  private readonly pending: Promise<{ failures: CloudInitFailure[]; checked: number; exact: number }>[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly dir: string) {}

  add(item: CloudInitItem): void {
    const key = sha256(item.userData) + (item.exact ? "x" : "");
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.fd === undefined) {
      this.file = join(this.dir, `cloudinit-${this.chunk++}.ndjson`);
      this.fd = openSync(this.file, "w");
    }
    const line = { id: item.id, ud: item.userData.toString("base64"), sha: sha256(canonicalJson(item.expected)), parts: item.parts.map((p) => sha256(p)), exact: item.exact };
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
  }

  flush(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    const input = this.file;
    const output = `${input}.out`;
    this.pending.push(
      new Promise((resolve, reject) => {
        const child = spawn(SYSTEM_PYTHON, [BATCH_PY, input, output], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.once("error", reject);
        child.once("close", (code) => {
          if (code !== 0) return reject(new Error(`cloudinit_batch.py exited ${code}: ${stderr.slice(-2000)}`));
          const lines = readFileSync(output, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
          const summary = lines.pop()?.summary as { checked: number; exact: number } | undefined;
          if (!summary) return reject(new Error(`cloudinit_batch.py wrote no summary: ${stderr.slice(-2000)}`));
          resolve({ failures: lines as unknown as CloudInitFailure[], checked: summary.checked, exact: summary.exact });
        });
      }),
    );
  }

  async results(): Promise<{ failures: CloudInitFailure[]; checked: number; exact: number }> {
    this.flush();
    const all = await Promise.all(this.pending);
    return {
      failures: all.flatMap((r) => r.failures),
      checked: all.reduce((n, r) => n + r.checked, 0),
      exact: all.reduce((n, r) => n + r.exact, 0),
    };
  }
}

// ── shapes ─────────────────────────────────────────────────────────────────

/** Quoted here-documents as bash reads them: the body ends at the first line equal to the delimiter. */
export function quotedHeredocs(script: string): { delimiter: string; body: string }[] {
  const out: { delimiter: string; body: string }[] = [];
  const re = /<<-?'([A-Za-z_][A-Za-z0-9_]*)'[^\n]*\n/g;
  for (let m = re.exec(script); m; m = re.exec(script)) {
    const delimiter = m[1]!;
    const start = m.index + m[0].length;
    const lines = script.slice(start).split("\n");
    const end = lines.indexOf(delimiter);
    const body = end === -1 ? lines.join("\n") : lines.slice(0, end).join("\n");
    out.push({ delimiter, body: end === -1 ? `${body}\u0000UNTERMINATED` : body });
    re.lastIndex = start + body.length;
  }
  return out;
}

/** The shape of a generated text artifact (see the header comment). */
export function shapeOf(text: string, name: string): string {
  let s = text.split(`for "${name}"`).join('for "NAME"');
  s = s.replace(/(<<-?'([A-Za-z_][A-Za-z0-9_]*)'[^\n]*\n)([\s\S]*?)^\2$/gm, "$1BODY\n$2");
  // A whole single-quoted shell word (after a blank, '(' or '=') of literal characters.
  s = s.replace(/(?<=[\s(=])'[^'$`\\\n]*'(?=[\s);]|$)/gm, "'S'");
  s = s.replace(/'S'(?: 'S')+/g, "'S'");
  s = s.replace(/\d+/g, "N").replace(/(?<![A-Za-z])(nat|filter)(?![A-Za-z])/g, "T");
  // Runs of identical lines, and paragraphs (e.g. one function per family and table) identical to an earlier one.
  const lines = s.split("\n");
  s = lines.filter((l, i) => i === 0 || l !== lines[i - 1]).join("\n");
  const seen = new Set<string>();
  return s
    .split("\n\n")
    .filter((p) => {
      if (seen.has(p)) return false;
      seen.add(p);
      return true;
    })
    .join("\n\n");
}

export interface ShapeRepresentative {
  kind: string;
  key: string;
  content: string;
  firstId: number;
  count: number;
}

/** One representative artifact per shape. */
export class ShapeCache {
  readonly shapes = new Map<string, ShapeRepresentative>();

  /** Records an artifact; returns its shape key. */
  add(kind: string, content: string, name: string, id: number): string {
    const key = `${kind}:${sha256(shapeOf(content, name))}`;
    const known = this.shapes.get(key);
    if (known) known.count++;
    else this.shapes.set(key, { kind, key, content, firstId: id, count: 1 });
    return key;
  }

  ofKind(kind: string): ShapeRepresentative[] {
    return [...this.shapes.values()].filter((s) => s.kind === kind);
  }
}

export interface ScriptFinding {
  firstId: number;
  kind: string;
  tool: string;
  output: string;
}

/** shellcheck (as validators.shellcheck runs it, in batches of files) and bash -n on every representative script. */
/** A command's output and exit, without blocking the event loop (so batches run side by side). */
function runAsync(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/**
 * shellcheck (batches of 40 files, one batch per CPU at a time: 244 shapes
 * took 166 s one batch after another on 2 cores) and bash -n on every shape.
 */
export async function checkScripts(reps: ShapeRepresentative[], dir: string): Promise<ScriptFinding[]> {
  const findings: ScriptFinding[] = [];
  const files = reps.map((r, i) => {
    const f = join(dir, `shape-${i}-${basename(r.kind)}`);
    writeFileSync(f, r.content, { mode: 0o755 });
    return f;
  });
  const byFile = new Map(files.map((f, i) => [f, reps[i]!]));
  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += 40) batches.push(files.slice(i, i + 40));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let b = next++; b < batches.length; b = next++) {
      const r = await runAsync("shellcheck", ["-x", "--norc", "--color=never", "-f", "gcc", "-e", "SC1091", "--", ...batches[b]!], 300_000);
      for (const line of r.stdout.split("\n").filter(Boolean)) {
        const file = line.slice(0, line.indexOf(":"));
        const rep = byFile.get(file);
        findings.push({ firstId: rep?.firstId ?? -1, kind: rep?.kind ?? file, tool: "shellcheck", output: line });
      }
      if (r.status !== 0 && r.stdout.trim() === "") findings.push({ firstId: -1, kind: "shellcheck", tool: "shellcheck", output: r.stderr || `shellcheck exited ${String(r.status)}` });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(availableParallelism(), batches.length)) }, worker));
  for (const f of files) {
    const r = spawnSync("bash", ["-n", f], { encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0 || r.stderr.trim() !== "") findings.push({ firstId: byFile.get(f)!.firstId, kind: byFile.get(f)!.kind, tool: "bash -n", output: r.stderr });
  }
  return findings;
}

// ── iptables and nft, in a throwaway namespace ─────────────────────────────

export type Table = "nat" | "filter";

/** The chains dockinit's rules live in and the jumps that make the kernel check them in their hook. */
const TABLE_SETUP: Record<Table, { chains: string[]; jumps: string[] }> = {
  nat: {
    chains: ["DOCKINIT-PREROUTING", "DOCKINIT-OUTPUT", "DOCKINIT-POSTROUTING"],
    jumps: ["-A PREROUTING -j DOCKINIT-PREROUTING", "-A OUTPUT -j DOCKINIT-OUTPUT", "-A POSTROUTING -j DOCKINIT-POSTROUTING"],
  },
  filter: {
    chains: ["DOCKER-USER", "DOCKINIT-USER", "DOCKINIT-INPUT", "DOCKINIT-EGRESS", "DOCKINIT-DIRECT"],
    jumps: ["-A INPUT -j DOCKINIT-INPUT", "-A FORWARD -j DOCKER-USER", "-A DOCKER-USER -j DOCKINIT-USER"],
  },
};

export interface RuleFinding {
  firstId: number;
  where: string;
  rule: string;
  problem: string;
}

/** Distinct rule lines (interface already filled in) and nft rulesets of many bundles. */
export class RuleBatch {
  private readonly lines = new Map<string, Map<string, number>>();
  private readonly nft = new Map<string, number>();

  addRules(id: number, family: 4 | 6, table: Table, rules: string[]): void {
    const key = `${family}/${table}`;
    let m = this.lines.get(key);
    if (!m) this.lines.set(key, (m = new Map()));
    for (const r of rules) if (!m.has(r)) m.set(r, id);
  }

  addNft(id: number, ruleset: string): void {
    if (ruleset.trim() !== "" && !this.nft.has(ruleset)) this.nft.set(ruleset, id);
  }

  get distinctRules(): number {
    return [...this.lines.values()].reduce((n, m) => n + m.size, 0);
  }

  get distinctNft(): number {
    return this.nft.size;
  }

  /** Loads everything into a new network namespace; returns every line the kernel refused or iptables-save printed differently. */
  run(backends: ("nft" | "legacy")[] = ["nft", "legacy"]): RuleFinding[] {
    const ns = `di-${process.pid.toString(36)}${randomBytes(2).toString("hex")}-prop`;
    const dir = mkdtempSync(join(tmpdir(), "dockinit-rules-"));
    const sh = (cmd: string, args: string[], input?: string) =>
      spawnSync("nsenter", [`--net=/run/netns/${ns}`, "--", cmd, ...args], { input, encoding: "utf8", timeout: 300_000, maxBuffer: 256 << 20 });
    const findings: RuleFinding[] = [];
    const add = spawnSync("ip", ["netns", "add", ns], { encoding: "utf8" });
    if (add.status !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr}`);
    try {
      for (const fam of [4, 6] as const) {
        const set = fam === 4 ? "inet" : "inet6";
        const r = sh("ipset", ["create", `dockinit-egress${fam}`, "hash:net", "family", set]);
        if (r.status !== 0) throw new Error(`ipset create: ${r.stderr}`);
        const d = sh("ipset", ["create", `dockinit-dns${fam}`, "hash:ip", "family", set]);
        if (d.status !== 0) throw new Error(`ipset create: ${d.stderr}`);
      }
      for (const proto of ["tcp", "udp"]) {
        const r = sh("ipset", ["create", `dockinit-proxy-${proto}`, "bitmap:port", "range", "1-65535"]);
        if (r.status !== 0) throw new Error(`ipset create: ${r.stderr}`);
      }
      for (const backend of backends) {
        for (const [key, m] of this.lines) {
          const [famText, table] = key.split("/") as [string, Table];
          const fam = Number(famText) as 4 | 6;
          const base = fam === 4 ? "iptables" : "ip6tables";
          const tool = backend === "legacy" ? `${base}-legacy` : base;
          findings.push(...loadAndCompare(sh, tool, table, [...m.entries()], `${tool} ${table}`));
          // Without --noflush, a restore of an empty table block flushes it and deletes its chains.
          sh(`${tool}-restore`, [], `*${table}\nCOMMIT\n`);
        }
      }
      findings.push(...checkNft(sh, [...this.nft.entries()], dir));
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
      rmSync(dir, { recursive: true, force: true });
    }
    return findings;
  }
}

type NsRun = (cmd: string, args: string[], input?: string) => SpawnSyncReturns<string>;

function restoreInput(table: Table, rules: string[]): { text: string; firstRuleLine: number } {
  const setup = TABLE_SETUP[table];
  const head = [`*${table}`, ...setup.chains.map((c) => `:${c} - [0:0]`)];
  return { text: [...head, ...rules, ...setup.jumps, "COMMIT", ""].join("\n"), firstRuleLine: head.length + 1 };
}

/** Loads the rules (dropping, one by one, each the kernel refuses), then compares iptables-save with them. */
function loadAndCompare(sh: NsRun, tool: string, table: Table, entries: [string, number][], where: string): RuleFinding[] {
  const findings: RuleFinding[] = [];
  let rules = entries;
  for (let attempt = 0; ; attempt++) {
    const { text, firstRuleLine } = restoreInput(table, rules.map(([r]) => r));
    const r = sh(`${tool}-restore`, ["--noflush"], text);
    if (r.status === 0) break;
    const m = /Error occurred at line: (\d+)|line (\d+) failed/.exec(r.stderr);
    const idx = m ? Number(m[1] ?? m[2]) - firstRuleLine : -1;
    if (idx < 0 || idx >= rules.length || attempt > 200) {
      // No usable line number: find the culprits by halves with --test.
      const bad = bisect(sh, tool, table, rules);
      if (bad.length === 0) {
        findings.push({ firstId: -1, where, rule: "(whole batch)", problem: r.stderr.trim() });
        return findings;
      }
      for (const b of bad) findings.push({ firstId: b[1], where, rule: b[0], problem: testOne(sh, tool, table, b[0]) });
      const badSet = new Set(bad.map((b) => b[0]));
      rules = rules.filter(([x]) => !badSet.has(x));
      continue;
    }
    const [rule, id] = rules[idx]!;
    findings.push({ firstId: id, where, rule, problem: r.stderr.trim().split("\n")[0] ?? "" });
    rules = rules.filter((_, i) => i !== idx);
  }
  // Read back: each of dockinit's chains must hold exactly the lines loaded, in order.
  const saved = sh(`${tool}-save`, ["-t", table]).stdout ?? "";
  const byChain = new Map<string, string[]>();
  for (const line of saved.split("\n")) {
    const c = /^-A (DOCKINIT-\S+) /.exec(line)?.[1];
    if (c) byChain.set(c, [...(byChain.get(c) ?? []), line]);
  }
  const wanted = new Map<string, [string, number][]>();
  for (const e of rules) {
    const c = /^-A (\S+) /.exec(e[0])?.[1] ?? "";
    wanted.set(c, [...(wanted.get(c) ?? []), e]);
  }
  for (const [chain, want] of wanted) {
    const have = byChain.get(chain) ?? [];
    want.forEach(([rule, id], i) => {
      if (have[i] !== rule) findings.push({ firstId: id, where, rule, problem: `iptables-save prints it as: ${have[i] ?? "(nothing)"}` });
    });
  }
  return findings;
}

function testOne(sh: NsRun, tool: string, table: Table, rule: string): string {
  const r = sh(`${tool}-restore`, ["--noflush", "--test"], restoreInput(table, [rule]).text);
  return r.status === 0 ? "refused only together with other rules" : r.stderr.trim().split("\n")[0] ?? "";
}

function bisect(sh: NsRun, tool: string, table: Table, rules: [string, number][]): [string, number][] {
  if (rules.length === 0) return [];
  const r = sh(`${tool}-restore`, ["--noflush", "--test"], restoreInput(table, rules.map(([x]) => x)).text);
  if (r.status === 0) return [];
  if (rules.length === 1) return rules;
  const mid = rules.length >> 1;
  return [...bisect(sh, tool, table, rules.slice(0, mid)), ...bisect(sh, tool, table, rules.slice(mid))];
}

/**
 * Rulesets per `nft -c` batch. Each table hooks its base chains into the
 * kernel, which allows at most 1024 hook entries per hook: a batch of every
 * ruleset at once fails with E2BIG ("Argument list too long") past that.
 */
const NFT_BATCH = 250;

/** `nft -c` on every ruleset (each renamed to its own table), in batches, dropping each one nft refuses. */
function checkNft(sh: NsRun, entries: [string, number][], dir: string): RuleFinding[] {
  const findings: RuleFinding[] = [];
  for (let i = 0; i < entries.length; i += NFT_BATCH) findings.push(...checkNftBatch(sh, entries.slice(i, i + NFT_BATCH), dir));
  return findings;
}

function checkNftBatch(sh: NsRun, entries: [string, number][], dir: string): RuleFinding[] {
  const findings: RuleFinding[] = [];
  let sets = entries;
  for (let attempt = 0; sets.length > 0; attempt++) {
    const starts: number[] = [];
    let text = "";
    sets.forEach(([ruleset], i) => {
      starts.push(text.split("\n").length);
      text += ruleset.replace(/^table inet dockinit \{/m, `table inet dockinit_${i} {`);
    });
    const file = join(dir, "all.nft");
    writeFileSync(file, text);
    const r = sh("nft", ["-c", "-f", file]);
    if (r.status === 0) break;
    const line = Number(/all\.nft:(\d+):/.exec(r.stderr)?.[1] ?? -1);
    let idx = -1;
    starts.forEach((s, i) => {
      if (line >= s) idx = i;
    });
    if (idx < 0 || attempt > 100) {
      findings.push({ firstId: -1, where: "nft -c", rule: "(whole batch)", problem: r.stderr.trim() });
      break;
    }
    findings.push({ firstId: sets[idx]![1], where: "nft -c", rule: sets[idx]![0], problem: r.stderr.trim().split("\n").slice(0, 3).join(" / ") });
    sets = sets.filter((_, i) => i !== idx);
  }
  return findings;
}

/** A scratch directory for one test file's artifacts. */
export function scratchDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, "shapes"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
