// A vitest reporter that keeps the outcome of every system test the
// compatibility table (docs/compatibility.md) is built from (scripts/compat.mjs reads it): one entry
// per test, its full name (which names the engine, e.g. "Docker 28.5
// (forky)") and its state, and per test file the run that produced its
// entries: the commit it tested (`git rev-parse HEAD`, dirty when the working
// tree had changes), when, and its Docker and boot matrices. Written to
// .cache/compat/results.json. A file in which at least one test ran (passed or
// failed) replaces all of its earlier entries; a file that was skipped (as a
// whole, or every test of it) or failed to load removes them: a skip never
// refreshes nor preserves a ✔. Files the run did not include keep theirs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Reporter } from "vitest/node";

export const COMPAT_RESULTS = fileURLToPath(new URL("../../.cache/compat/results.json", import.meta.url));
const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** The test files the table reads. */
export const COMPAT_FILES: ReadonlySet<string> = new Set(["firewall-docker.test.ts", "policies.test.ts", "closed-paths.test.ts", "boot.test.ts"]);

export interface CompatEntry {
  file: string;
  name: string;
  state: "passed" | "failed" | "skipped" | "pending";
}

/** The run that produced a file's entries. */
export interface CompatRun {
  /** `git rev-parse HEAD` of the tree tested ("" outside a git checkout). */
  commit: string;
  /** The working tree had changes (`git status --porcelain` printed something): the commit alone does not name the code tested. */
  dirty: boolean;
  /** When the run ended, ISO 8601 (UTC). */
  date: string;
  /** Its DOCKINIT_DOCKER_MATRIX ("" when unset). */
  matrix: string;
  /** Its DOCKINIT_BOOT_MATRIX ("" when unset: the boot test then follows the Docker matrix). */
  bootMatrix: string;
}

export interface CompatResults {
  /** DOCKINIT_DOCKER_MATRIX of the last run that wrote (the rows scripts/compat.mjs renders from these results). */
  matrix: string;
  /** DOCKINIT_BOOT_MATRIX of that run ("" when unset: the boot test then follows the Docker matrix). */
  bootMatrix: string;
  /** Per test file, the run its entries come from. */
  runs: Record<string, CompatRun>;
  tests: CompatEntry[];
}

/** What the reporter reads of a vitest TestModule (structural, so the unit tests can pass plain objects). */
export interface ModuleLike {
  moduleId: string;
  state(): string;
  children: { allTests(): Iterable<{ fullName: string; result(): { state: CompatEntry["state"] } }> };
}

const ran = (e: CompatEntry): boolean => e.state === "passed" || e.state === "failed";

/**
 * The results after a run: `old` (undefined: none yet) with the table's files
 * among `modules` replaced (at least one test ran) or removed (skipped, or no
 * test at all). Undefined when the run included none of the table's files:
 * nothing to write.
 */
export function mergeResults(old: CompatResults | undefined, modules: ReadonlyArray<ModuleLike>, run: CompatRun): CompatResults | undefined {
  const seen = new Map<string, CompatEntry[]>();
  for (const m of modules) {
    const file = basename(m.moduleId);
    if (!COMPAT_FILES.has(file)) continue;
    const entries = m.state() === "skipped" ? [] : [...m.children.allTests()].map((t): CompatEntry => ({ file, name: t.fullName, state: t.result().state }));
    seen.set(file, [...(seen.get(file) ?? []), ...entries]);
  }
  if (seen.size === 0) return undefined;
  const runs: Record<string, CompatRun> = {};
  for (const [file, r] of Object.entries(old?.runs ?? {})) if (!seen.has(file)) runs[file] = r;
  const fresh: CompatEntry[] = [];
  for (const [file, entries] of seen) {
    if (!entries.some(ran)) continue;
    runs[file] = run;
    fresh.push(...entries);
  }
  const tests = [...(old?.tests ?? []).filter((t) => !seen.has(t.file)), ...fresh].sort((a, b) =>
    a.file === b.file ? a.name.localeCompare(b.name) : a.file.localeCompare(b.file),
  );
  return { matrix: run.matrix, bootMatrix: run.bootMatrix, runs, tests };
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync("git", args, { cwd: REPO, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

/** This run: the checkout's commit and whether its tree has changes, now, and the matrices from the environment. */
export function currentRun(now = new Date()): CompatRun {
  return {
    commit: git(["rev-parse", "HEAD"])?.trim() ?? "",
    dirty: (git(["status", "--porcelain"]) ?? "").trim() !== "",
    date: now.toISOString(),
    matrix: process.env.DOCKINIT_DOCKER_MATRIX ?? "",
    bootMatrix: process.env.DOCKINIT_BOOT_MATRIX ?? "",
  };
}

export default class CompatReporter implements Reporter {
  private readonly file: string;
  private readonly run: () => CompatRun;

  /** `file` and `run` are for the unit tests; vitest passes neither. */
  constructor(options: { file?: string; run?: () => CompatRun } = {}) {
    this.file = options.file ?? COMPAT_RESULTS;
    this.run = options.run ?? (() => currentRun());
  }

  onTestRunEnd(modules: ReadonlyArray<ModuleLike>): void {
    if (!modules.some((m) => COMPAT_FILES.has(basename(m.moduleId)))) return;
    let old: CompatResults | undefined;
    if (existsSync(this.file)) {
      try {
        old = JSON.parse(readFileSync(this.file, "utf8")) as CompatResults;
      } catch {
        /* unreadable: start over */
      }
    }
    const results = mergeResults(old, modules, this.run());
    if (!results) return;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(results, null, 2)}\n`);
    renameSync(tmp, this.file);
  }
}
