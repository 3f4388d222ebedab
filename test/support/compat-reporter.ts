// A vitest reporter that keeps the outcome of every system test the
// compatibility table (docs/compatibility.md) is built from (scripts/compat.mjs reads it): one entry
// per test, its full name (which names the engine, e.g. "Docker 28.5
// (forky)") and its state. Written to .cache/compat/results.json; a file that
// ran replaces all of its earlier entries, a file that was skipped as a whole
// (no root, say) keeps them.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Reporter, TestModule } from "vitest/node";

export const COMPAT_RESULTS = fileURLToPath(new URL("../../.cache/compat/results.json", import.meta.url));

/** The test files the table reads. */
const FILES = new Set(["firewall-docker.test.ts", "policies.test.ts", "closed-paths.test.ts", "boot.test.ts"]);

export interface CompatEntry {
  file: string;
  name: string;
  state: "passed" | "failed" | "skipped" | "pending";
}

export interface CompatResults {
  /** DOCKINIT_DOCKER_MATRIX of the last run that wrote any entry. */
  matrix: string;
  /** DOCKINIT_BOOT_MATRIX of that run ("" when unset: the boot test then follows the Docker matrix). */
  bootMatrix: string;
  tests: CompatEntry[];
}

export default class CompatReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const ran = new Map<string, CompatEntry[]>();
    for (const m of modules) {
      const file = basename(m.moduleId);
      if (!FILES.has(file)) continue;
      const entries = [...m.children.allTests()].map((t): CompatEntry => ({ file, name: t.fullName, state: t.result().state }));
      if (entries.some((e) => e.state === "passed" || e.state === "failed")) ran.set(file, entries);
    }
    if (ran.size === 0) return;
    let old: CompatResults = { matrix: "", bootMatrix: "", tests: [] };
    if (existsSync(COMPAT_RESULTS)) {
      try {
        old = JSON.parse(readFileSync(COMPAT_RESULTS, "utf8")) as CompatResults;
      } catch {
        /* unreadable: start over */
      }
    }
    const tests = [...old.tests.filter((t) => !ran.has(t.file)), ...[...ran.values()].flat()].sort((a, b) =>
      a.file === b.file ? a.name.localeCompare(b.name) : a.file.localeCompare(b.file),
    );
    mkdirSync(join(COMPAT_RESULTS, ".."), { recursive: true });
    const tmp = `${COMPAT_RESULTS}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ matrix: process.env.DOCKINIT_DOCKER_MATRIX ?? "", bootMatrix: process.env.DOCKINIT_BOOT_MATRIX ?? "", tests }, null, 2)}\n`);
    renameSync(tmp, COMPAT_RESULTS);
  }
}
