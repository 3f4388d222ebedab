import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { precompileHbs } from "./scripts/hbs-precompile.mjs";

// Tests import the TypeScript sources; .hbs templates are precompiled on the
// fly exactly as the esbuild build does.
const hbsPlugin = {
  name: "dockinit-hbs",
  transform(_code: string, id: string) {
    if (!id.endsWith(".hbs")) return undefined;
    return { code: precompileHbs(readFileSync(id, "utf8")), map: null };
  },
};

/** Only `vitest -u` may write golden files; a missing golden is a failure otherwise (see test/unit/fixtures.test.ts). */
const updating = process.argv.some((a) => a === "-u" || a === "--update" || a.startsWith("--update="));

declare module "vitest" {
  export interface ProvidedContext {
    updating: boolean;
  }
}

// Three projects: pure unit tests run in parallel; system tests build network
// namespaces, start dockerd and load iptables rules, so they run one file at a
// time with generous timeouts (every wait inside them is bounded on its own).
// They never overlap (groupOrder): the property test's CPU load and its use of
// the machine-wide xtables lock would stretch the system tests' timed windows.
// The unit files use every CPU (vitest's default is one worker fewer than
// CPUs: 1 on a 2-core machine, which left one core idle for the property
// test's 4-5 minutes). DOCKINIT_SYSTEM_FILES_IN_PARALLEL=1 (CI sets it) runs
// system files side by side, DOCKINIT_SYSTEM_WORKERS at a time (default 2): every file builds its own namespaces, daemons, temp dirs
// and guests under names that carry its pid, and most of their time is spent
// waiting for a dropped connection's timeout, not on the CPU. The two files
// that hold or take the machine-wide xtables lock run after them, alone.
// The version, put in as scripts/build.mjs's esbuild `define` does for the
// bundle (src/version.ts). Vite's own `define` becomes a global at run time in
// vitest, which a `typeof` check in the module does not see.
const version = JSON.stringify((JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version);
const versionPlugin = {
  name: "dockinit-version",
  // After TypeScript is stripped, so the `declare const` is gone.
  enforce: "post" as const,
  transform(code: string, id: string) {
    if (!id.endsWith("/src/version.ts")) return undefined;
    return { code: code.replaceAll("__DOCKINIT_VERSION__", version), map: null };
  },
};

const systemFilesInParallel = process.env.DOCKINIT_SYSTEM_FILES_IN_PARALLEL === "1";
const systemWorkers = Math.max(1, Number.parseInt(process.env.DOCKINIT_SYSTEM_WORKERS ?? "", 10) || 2);
/** System files that must run alone (see the system-serial project). */
const SERIAL_SYSTEM_FILES = ["test/system/firewall-engine.test.ts", "test/system/faults.test.ts"];

export default defineConfig({
  plugins: [hbsPlugin, versionPlugin],
  test: {
    provide: { updating },
    // The compatibility table's raw data (docs/compatibility.md, scripts/compat.mjs).
    reporters: ["default", "./test/support/compat-reporter.ts"],
    projects: [
      {
        plugins: [hbsPlugin, versionPlugin],
        // "dockinit" in a unit test (the README's snapshot example imports it
        // as a user would) is the source under test, not the last build: a
        // stale dist/ must not hide a change. The packed package is proven
        // from its tarball (test/system/package.test.ts, readme.test.ts).
        resolve: { alias: { dockinit: new URL("./src/index.ts", import.meta.url).pathname } },
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          sequence: { groupOrder: 0 },
          maxWorkers: Math.max(2, availableParallelism()),
          testTimeout: 60_000,
        },
      },
      {
        plugins: [hbsPlugin, versionPlugin],
        test: {
          name: "system",
          include: ["test/system/**/*.test.ts"],
          exclude: SERIAL_SYSTEM_FILES,
          sequence: { groupOrder: 1 },
          fileParallelism: systemFilesInParallel,
          ...(systemFilesInParallel ? { maxWorkers: systemWorkers } : {}),
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        plugins: [hbsPlugin, versionPlugin],
        test: {
          // Files that hold the machine-wide xtables lock on purpose or use
          // legacy iptables (which takes it, and fails at once without -w):
          // after the others, alone.
          name: "system-serial",
          include: SERIAL_SYSTEM_FILES,
          sequence: { groupOrder: 2 },
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
