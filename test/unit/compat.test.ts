// The compatibility table's pipeline without root: the reporter
// (test/support/compat-reporter.ts) fed vitest-like test modules, and
// scripts/compat.mjs rendering and checking docs/compatibility.md from
// results made up here.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import CompatReporter, { currentRun, mergeResults, type CompatEntry, type CompatResults, type CompatRun, type ModuleLike } from "../support/compat-reporter.js";

interface Compat {
  CI_MATRIX: string[];
  NOT_RECORDED: string;
  TABLE_FILE: string;
  write(results: CompatResults, doc: string): string;
  check(results: CompatResults, doc: string): { ok: boolean; expected: string };
  runName(run: CompatRun | undefined): string;
  runBy(row: { entry: string }, tests: string, boot: string): string;
  parseRunBy(text: string): { tests: string; boot: string };
}
const compat = (await import("../../scripts/compat.mjs" as string)) as Compat;

// ---------------------------------------------------------------- test data

type State = CompatEntry["state"];
const PREFIX: Record<string, string> = {
  bookworm: "Docker 20.10 (bookworm)",
  "docker-25.0": "Docker 25.0 (moby v25.0.16)",
  trixie: "Docker 26.1 (trixie)",
  forky: "Docker 28.5 (forky)",
  "docker-29.7": "Docker 29.7 (moby v29.7.2)",
  "docker-29.7-nftables": "Docker 29.7 (moby v29.7.2, nftables firewall)",
};
const ALL = Object.keys(PREFIX);
const CI = ["bookworm", "docker-25.0", "docker-29.7", "docker-29.7-nftables"];
/** The upstream cloud-init guests: the engine whose row they fill, and their cloud-init. */
const GUESTS: Record<string, [entry: string, cloudInit: string]> = { "cloud-init-22.2": ["docker-25.0", "22.2.2"], "cloud-init-26.2": ["docker-29.7", "26.2"] };
/** Every boot of a full-matrix run. */
const ALL_BOOTS = [...ALL.filter((e) => e !== "docker-25.0"), ...Object.keys(GUESTS)];
const CI_BOOTS = ["bookworm", "cloud-init-22.2"];
/** The cloud-init of each Debian guest. */
const DEBIAN_CLOUD_INIT: Record<string, string> = { bookworm: "22.4.2", trixie: "25.1", forky: "25", "docker-29.7": "25", "docker-29.7-nftables": "25" };

/** A booted guest's tests (`p` its describe prefix), as boot.test.ts names them. */
function bootTests(p: string, cloudInit: string, nftFirewall: boolean): [string, string][] {
  const g = `${p}: booted Debian guest configured only by dockinit's user-data`;
  const names: [string, string][] = [];
  if (!nftFirewall) names.push(["boot", `${g} > seed fixture (iptables backend, vpc DNS): remapped > files`], ["boot", `${g} > seed fixture (iptables backend, vpc DNS): remapped > the guest runs cloud-init ${cloudInit}`]);
  names.push(["boot", `${g} > nftables backend (vpc DNS, tcp+udp): remapped > files`], ["boot", `${g} > nftables backend (vpc DNS, tcp+udp): remapped > the guest runs cloud-init ${cloudInit}`]);
  return names;
}
/** An upstream cloud-init guest's boot tests, each in `state`. */
const guestTests = (guest: string, state: State): CompatEntry[] => {
  const [entry, cloudInit] = GUESTS[guest]!;
  return bootTests(`${PREFIX[entry]!} on cloud-init ${cloudInit}`, cloudInit, false).map(([f, name]) => ({ file: `${f}.test.ts`, name, state }));
};

/** One engine's tests, named as the system tests name them (one per column and backend), each in `state`. */
function engineTests(entry: string, state: State, files = ["firewall-docker", "policies", "closed-paths", "boot"]): CompatEntry[] {
  const p = PREFIX[entry]!;
  const nftFirewall = entry === "docker-29.7-nftables";
  const names: [string, string][] = [];
  for (const b of nftFirewall ? ["nftables"] : ["iptables", "nftables"]) {
    const pol = `${p}: ${b} backend: policies`;
    names.push(
      ["policies", `${pol} > published port with an allow-list`],
      ["policies", `${pol} > containers cannot reach instance metadata`],
      ["policies", `${pol} > egress_allow lets only the listed addresses out`],
      ["policies", `${pol} > port forward reaches the container`],
      ["policies", `${pol} > apply succeeds and status reports Docker's version`],
      ["closed-paths", `${p}: ${b} backend: every path to a published port > is closed`],
    );
  }
  names.push(
    ["firewall-docker", `${p}: iptables backend > after apply, ports 33000-61000 leave remapped`],
    ["firewall-docker", `${p}: iptables backend > the watch restores the fix`],
    ["firewall-docker", `${p}: nftables backend > remaps on the default bridge`],
    ["firewall-docker", `${p}: nftables backend > remaps on a network created later`],
  );
  if (nftFirewall) names.push(["firewall-docker", `${p}: iptables backend forced: status warns > apply loads its rules`]);
  if (entry !== "docker-25.0") names.push(...bootTests(p, DEBIAN_CLOUD_INIT[entry]!, nftFirewall));
  return names.filter(([f]) => files.includes(f)).map(([f, name]) => ({ file: `${f}.test.ts`, name, state }));
}

const run = (commit: string, date: string, matrix: string, bootMatrix = "", dirty = false): CompatRun => ({ commit, dirty, date, matrix, bootMatrix });
const FULL = run("0123456789abcdef0123456789abcdef01234567", "2026-05-04T10:11:12.000Z", ALL.join(","), ALL_BOOTS.join(","));
const CI_RUN = run("fedcba9876543210fedcba9876543210fedcba98", "2026-05-09T08:00:00.000Z", CI.join(","), CI_BOOTS.join(","));
const FILES = ["firewall-docker.test.ts", "policies.test.ts", "closed-paths.test.ts", "boot.test.ts"];

/** Results of one run over `engines` (boot: the guests it booted), every test in `state` unless `override` says otherwise. */
function results(r: CompatRun, engines: string[], boots: string[], override: (e: CompatEntry) => State | undefined = () => undefined): CompatResults {
  const tests = [
    ...engines.flatMap((e) => engineTests(e, "passed", boots.includes(e) ? undefined : ["firewall-docker", "policies", "closed-paths"])),
    ...boots.filter((b) => b in GUESTS).flatMap((b) => guestTests(b, "passed")),
  ].map((t) => ({ ...t, state: override(t) ?? t.state }));
  return { matrix: r.matrix, bootMatrix: r.bootMatrix, runs: Object.fromEntries(FILES.map((f) => [f, r])), tests };
}

const DOC = readFileSync(compat.TABLE_FILE, "utf8");
/** The "run by" cell and the cells of a row of a doc, by its first column's start and its backend. */
function row(doc: string, docker: string, backend: string): string[] {
  const line = doc.split("\n").find((l) => l.startsWith(`| ${docker}`) && l.split(" | ")[2] === backend);
  if (!line) throw new Error(`no row ${docker} ${backend}`);
  return line.split("|").slice(1, -1).map((c) => c.trim());
}
const BOOT = 11; // the boot column's index in a row's cells
const CLOUD_INIT = 12; // the cloud-init versions' column
/** `doc` with one edit, which must change it. */
function edit(doc: string, re: RegExp, to: string): string {
  const out = doc.replace(re, to);
  if (out === doc) throw new Error(`${re} matched nothing`);
  return out;
}

// ---------------------------------------------------------------- the reporter

/** A vitest TestModule as the reporter reads it. */
function mod(file: string, tests: [name: string, state: State][], state?: string): ModuleLike {
  const moduleState = state ?? (tests.some(([, s]) => s === "failed") ? "failed" : tests.every(([, s]) => s === "skipped") ? "skipped" : "passed");
  return {
    moduleId: `/work/main/test/system/${file}`,
    state: () => moduleState,
    children: { allTests: () => tests.map(([fullName, s]) => ({ fullName, result: () => ({ state: s }) })) },
  };
}

const OLD_RUN = run("1111111111111111111111111111111111111111", "2026-04-01T00:00:00.000Z", ALL.join(","));
const NEW_RUN = run("2222222222222222222222222222222222222222", "2026-05-01T00:00:00.000Z", "bookworm");
const OLD: CompatResults = {
  matrix: OLD_RUN.matrix,
  bootMatrix: "",
  runs: { "policies.test.ts": OLD_RUN, "boot.test.ts": OLD_RUN, "closed-paths.test.ts": OLD_RUN },
  tests: [
    { file: "boot.test.ts", name: "Docker 26.1 (trixie): boot > a", state: "passed" },
    { file: "closed-paths.test.ts", name: "Docker 26.1 (trixie): closed > a", state: "passed" },
    { file: "policies.test.ts", name: "Docker 26.1 (trixie): p > a", state: "passed" },
  ],
};

describe("the reporter keeps a file's entries only from a run in which one of its tests ran", () => {
  const cases: { what: string; modules: ModuleLike[]; files: Record<string, string[] | undefined>; runs: Record<string, CompatRun | undefined> }[] = [
    {
      what: "a file that ran replaces its entries and its run; files not in the run keep theirs",
      modules: [mod("policies.test.ts", [["Docker 20.10 (bookworm): p > b", "passed"], ["Docker 20.10 (bookworm): p > c", "failed"]])],
      files: { "policies.test.ts": ["Docker 20.10 (bookworm): p > b", "Docker 20.10 (bookworm): p > c"], "boot.test.ts": ["Docker 26.1 (trixie): boot > a"] },
      runs: { "policies.test.ts": NEW_RUN, "boot.test.ts": OLD_RUN },
    },
    {
      what: "a file whose every test was skipped drops its entries and its run (no root, say)",
      modules: [mod("policies.test.ts", [["Docker 20.10 (bookworm): p > b", "skipped"], ["Docker 20.10 (bookworm): p > c", "skipped"]])],
      files: { "policies.test.ts": undefined, "boot.test.ts": ["Docker 26.1 (trixie): boot > a"] },
      runs: { "policies.test.ts": undefined, "boot.test.ts": OLD_RUN },
    },
    {
      what: "a file skipped as a whole (no tests collected) drops them",
      modules: [mod("boot.test.ts", [], "skipped")],
      files: { "boot.test.ts": undefined, "policies.test.ts": ["Docker 26.1 (trixie): p > a"] },
      runs: { "boot.test.ts": undefined, "policies.test.ts": OLD_RUN },
    },
    {
      what: "a module marked skipped drops them even if its tests say otherwise",
      modules: [mod("boot.test.ts", [["Docker 26.1 (trixie): boot > a", "passed"]], "skipped")],
      files: { "boot.test.ts": undefined },
      runs: { "boot.test.ts": undefined },
    },
    {
      what: "a file that failed to load (no tests) drops them",
      modules: [mod("closed-paths.test.ts", [], "failed")],
      files: { "closed-paths.test.ts": undefined },
      runs: { "closed-paths.test.ts": undefined },
    },
    {
      what: "pending tests (an interrupted run) are no run either",
      modules: [mod("closed-paths.test.ts", [["Docker 26.1 (trixie): closed > a", "pending"]], "pending")],
      files: { "closed-paths.test.ts": undefined },
      runs: { "closed-paths.test.ts": undefined },
    },
    {
      what: "a file partly skipped (-t, an engine-specific skip) replaces its entries, the skipped ones as skipped",
      modules: [mod("boot.test.ts", [["Docker 26.1 (trixie): boot > a", "skipped"], ["Docker 20.10 (bookworm): boot > a", "passed"]])],
      files: { "boot.test.ts": ["Docker 20.10 (bookworm): boot > a", "Docker 26.1 (trixie): boot > a"] },
      runs: { "boot.test.ts": NEW_RUN },
    },
    {
      what: "a file split over two modules (two projects) is one file",
      modules: [mod("boot.test.ts", [["Docker 20.10 (bookworm): boot > a", "failed"]]), mod("boot.test.ts", [["Docker 20.10 (bookworm): boot > b", "passed"]])],
      files: { "boot.test.ts": ["Docker 20.10 (bookworm): boot > a", "Docker 20.10 (bookworm): boot > b"] },
      runs: { "boot.test.ts": NEW_RUN },
    },
  ];
  it.each(cases)("$what", ({ modules, files, runs }) => {
    const merged = mergeResults(OLD, modules, NEW_RUN)!;
    expect(merged.matrix).toBe("bookworm");
    for (const [file, names] of Object.entries(files)) {
      const got = merged.tests.filter((t) => t.file === file).map((t) => t.name);
      expect(got, file).toEqual(names ?? []);
    }
    for (const [file, r] of Object.entries(runs)) expect(merged.runs[file], file).toEqual(r);
    // Skipped entries never stand for a run: every file with a run has a test that ran.
    for (const file of Object.keys(merged.runs)) expect(merged.tests.some((t) => t.file === file && (t.state === "passed" || t.state === "failed"))).toBe(true);
  });

  it("a run without any of the table's files changes nothing", () => {
    expect(mergeResults(OLD, [mod("cli.test.ts", [["x", "passed"]])], NEW_RUN)).toBeUndefined();
    expect(mergeResults(undefined, [], NEW_RUN)).toBeUndefined();
  });

  it("results written before runs were recorded (no runs) merge", () => {
    const { runs: _runs, ...old } = OLD;
    const merged = mergeResults(old as CompatResults, [mod("policies.test.ts", [["Docker 20.10 (bookworm): p > b", "passed"]])], NEW_RUN)!;
    expect(merged.runs).toEqual({ "policies.test.ts": NEW_RUN });
    expect(merged.tests.map((t) => t.file)).toEqual(["boot.test.ts", "closed-paths.test.ts", "policies.test.ts"]);
  });
});

describe("the reporter as vitest calls it", () => {
  const dir = mkdtempSync(join(tmpdir(), "dockinit-compat-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "compat", "results.json");
  let now = NEW_RUN;
  const reporter = new CompatReporter({ file, run: () => now });
  const read = (): CompatResults => JSON.parse(readFileSync(file, "utf8")) as CompatResults;

  it("writes the run's entries and its run, then a skipped run of the same file removes them, and a run of other files leaves the file alone", () => {
    reporter.onTestRunEnd([mod("boot.test.ts", [["Docker 20.10 (bookworm): boot > a", "passed"]]), mod("policies.test.ts", [["Docker 20.10 (bookworm): p > a", "passed"]])]);
    expect(read().runs["boot.test.ts"]).toEqual(NEW_RUN);
    expect(read().tests).toHaveLength(2);

    now = { ...NEW_RUN, date: "2026-05-02T00:00:00.000Z" };
    reporter.onTestRunEnd([mod("boot.test.ts", [["Docker 20.10 (bookworm): boot > a", "skipped"]])]);
    expect(read().tests.map((t) => t.file)).toEqual(["policies.test.ts"]);
    expect(Object.keys(read().runs)).toEqual(["policies.test.ts"]);
    expect(read().runs["policies.test.ts"]).toEqual(NEW_RUN);

    const before = statSync(file).mtimeMs;
    const text = readFileSync(file, "utf8");
    reporter.onTestRunEnd([mod("cli.test.ts", [["x", "passed"]])]);
    expect(readFileSync(file, "utf8")).toBe(text);
    expect(statSync(file).mtimeMs).toBe(before);
  });

  it("this run is the checkout's commit, dirty when git status lists a change, and now", () => {
    const r = currentRun(new Date("2026-05-03T04:05:06.000Z"));
    const head = execFileSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" }).trim();
    expect(r.commit).toBe(head);
    expect(r.dirty).toBe(execFileSync("git", ["status", "--porcelain"], { encoding: "utf8" }).trim() !== "");
    expect(r.date).toBe("2026-05-03T04:05:06.000Z");
  });
});

// ---------------------------------------------------------------- scripts/compat.mjs

describe("compat.mjs names the run that filled each row CI does not run", () => {
  const written = compat.write(results(FULL, ALL, ALL_BOOTS), DOC);

  it.each([
    ["20.10 (Debian bookworm's docker.io)", "iptables", "CI"],
    ["25.0.16 (Amazon Linux 2023's version, built from moby)", "nftables", "CI"],
    ["26.1 (Debian trixie's docker.io)", "iptables", "full matrix (0123456789, 2026-05-04)"],
    ["28.5 (Debian forky's docker.io)", "nftables", "full matrix (0123456789, 2026-05-04)"],
    ["29.7.2 (Docker CE's version, built from moby)", "iptables", "CI; its boot: full matrix (0123456789, 2026-05-04)"],
    ["29.7.2 (built from moby)", "nftables", "CI; its boot: full matrix (0123456789, 2026-05-04)"],
  ])("after a full-matrix run: %s, %s backend: %s", (docker, backend, by) => {
    const cells = row(written, docker, backend);
    expect(cells[3]).toBe(by);
    expect(cells.filter((_, i) => i >= 4 && i !== CLOUD_INIT).every((c) => c === "✔")).toBe(true);
    // The cloud-init column names the versions booted: 25.0.16 on Amazon Linux 2023's, 29.7.2 (iptables) on forky's and on 26.2.
    const versions: Record<string, string> = { "20.10": "22.4.2", "25.0.16": "22.2.2", "26.1": "25.1", "28.5": "25", "29.7.2 (Docker CE's": "25, 26.2", "29.7.2 (built": "25" };
    expect(cells[CLOUD_INIT]).toBe(Object.entries(versions).find(([k]) => docker.startsWith(k))?.[1]);
  });

  it.each([
    ["+dirty when the tree had changes", () => compat.write(results({ ...FULL, dirty: true }, ALL, ALL_BOOTS), DOC), "full matrix (0123456789+dirty, 2026-05-04)"],
    [
      "its boot named apart when another run booted it",
      () => {
        const r = results(FULL, ALL, ALL_BOOTS);
        r.runs["boot.test.ts"] = run("abcdefabcdefabcdefabcdefabcdefabcdefabcd", "2026-05-06T00:00:00.000Z", "trixie");
        return compat.write(r, DOC);
      },
      "full matrix (0123456789, 2026-05-04); its boot: full matrix (abcdefabcd, 2026-05-06)",
    ],
    [
      "each run, oldest first, when its tests come from two",
      () => {
        const r = results(FULL, ALL, ALL_BOOTS);
        r.runs["policies.test.ts"] = run("abcdefabcdefabcdefabcdefabcdefabcdefabcd", "2026-05-01T00:00:00.000Z", ALL.join(","));
        return compat.write(r, DOC);
      },
      "full matrix (abcdefabcd, 2026-05-01 and 0123456789, 2026-05-04); its boot: full matrix (0123456789, 2026-05-04)",
    ],
    [
      "not run when the run covered the engine but none of its tests ran",
      () => compat.write(results(FULL, ALL.filter((e) => e !== "trixie"), ALL_BOOTS), DOC),
      "full matrix (not run)",
    ],
    [
      "kept as the table had it when the run did not cover the engine",
      () => compat.write(results(CI_RUN, CI, CI_BOOTS), written),
      "full matrix (0123456789, 2026-05-04)",
    ],
    ["run not recorded: the table written before runs were (the committed one)", () => DOC, "full matrix (run not recorded)"],
  ])("%s", (_what, doc, by) => {
    expect(row(doc(), "26.1 (Debian trixie's docker.io)", "iptables")[3]).toBe(by);
  });

  it("a run not covered keeps a row's cells too, and a row the table lacks is not tested", () => {
    const noTrixie = edit(written, /^\| 26\.1 .*\n/gm, "");
    const again = compat.write(results(CI_RUN, CI, CI_BOOTS), noTrixie);
    expect(row(again, "26.1 (Debian trixie's docker.io)", "nftables").slice(3)).toEqual(["full matrix (not run)", ...Array(10).fill("—")]);
    expect(row(again, "28.5 (Debian forky's docker.io)", "nftables").slice(3)).toEqual(row(written, "28.5 (Debian forky's docker.io)", "nftables").slice(3));
  });

  it.each([
    ["CI", { tests: "CI", boot: "CI" }],
    ["CI; its boot: full matrix (0123456789, 2026-05-04)", { tests: "CI", boot: "0123456789, 2026-05-04" }],
    ["full matrix (0123456789+dirty, 2026-05-04)", { tests: "0123456789+dirty, 2026-05-04", boot: "0123456789+dirty, 2026-05-04" }],
    ["full matrix (a, 2026-05-01 and b, 2026-05-02); its boot: full matrix (c, 2026-05-03)", { tests: "a, 2026-05-01 and b, 2026-05-02", boot: "c, 2026-05-03" }],
    // The table's cells before runs were recorded.
    ["full matrix", { tests: "run not recorded", boot: "run not recorded" }],
    ["CI; its boot: full matrix", { tests: "CI", boot: "run not recorded" }],
  ])("the run-by cell %j reads back", (text, parsed) => {
    expect(compat.parseRunBy(text)).toEqual(parsed);
  });

  it.each([
    [undefined, compat.NOT_RECORDED],
    [run("", "2026-05-04T00:00:00.000Z", ""), "unknown commit, 2026-05-04"],
    [run("0123456789abcdef", "2026-05-04T23:59:59.000Z", "", "", true), "0123456789+dirty, 2026-05-04"],
  ])("a run is named by its commit and day: %j", (r, name) => {
    expect(compat.runName(r)).toBe(name);
  });

  it("an engine that left CI keeps no \"CI\" provenance", () => {
    expect(compat.runBy({ entry: "trixie" }, "CI", "CI")).toBe("full matrix (run not recorded)");
  });
});

describe("compat.mjs --check: CI's rows against this run exactly, the others as the table has them", () => {
  const written = compat.write(results(FULL, ALL, ALL_BOOTS), DOC);
  const ciRun = (override?: (e: CompatEntry) => State | undefined): CompatResults => results(CI_RUN, CI, CI_BOOTS, override);
  const name = (e: CompatEntry, engine: string, re: RegExp): boolean => e.name.startsWith(PREFIX[engine]!) && re.test(e.name) && !(engine === "docker-29.7" && e.name.startsWith(PREFIX["docker-29.7-nftables"]!));

  const cases: { what: string; doc: string; results: CompatResults; ok: boolean; row?: [string, string, number, string] }[] = [
    { what: "a CI run that proves what the table says passes", doc: written, results: ciRun(), ok: true },
    { what: "the committed table (provenance not recorded) passes the same run", doc: DOC, results: ciRun(), ok: true },
    {
      what: "a CI row's test failing fails",
      doc: written,
      results: ciRun((e) => (name(e, "docker-25.0", /nftables backend: policies.* > egress_allow/) ? "failed" : undefined)),
      ok: false,
      row: ["25.0.16 (Amazon Linux 2023's version, built from moby)", "nftables", 9, "✘"],
    },
    {
      what: "a CI row's tests skipped (their file's entries dropped) fails: a skip keeps no ✔",
      doc: written,
      results: (() => {
        const { "closed-paths.test.ts": _dropped, ...runs } = ciRun().runs;
        return { ...ciRun(), tests: ciRun().tests.filter((t) => t.file !== "closed-paths.test.ts"), runs };
      })(),
      ok: false,
      row: ["20.10 (Debian bookworm's docker.io)", "iptables", 7, "—"],
    },
    {
      what: "CI's boot failing fails",
      doc: written,
      results: ciRun((e) => (name(e, "bookworm", /seed fixture/) ? "failed" : undefined)),
      ok: false,
      row: ["20.10 (Debian bookworm's docker.io)", "iptables", BOOT, "✘"],
    },
    {
      what: "the refused row's warning failing fails",
      doc: written,
      results: ciRun((e) => (name(e, "docker-29.7-nftables", /forced: status warns/) ? "failed" : undefined)),
      ok: false,
      row: ["29.7.2 (built from moby)", "iptables", 4, "refused at render (DI058; auto chooses nftables); forced anyway, the warning ✘"],
    },
    {
      what: "a table whose CI row says ✔ where the run proved nothing fails",
      doc: written,
      results: ciRun((e) => (name(e, "docker-29.7", /iptables backend > /) ? "skipped" : undefined)),
      ok: false,
      row: ["29.7.2 (Docker CE's version, built from moby)", "iptables", 4, "—"],
    },
    {
      what: "a CI row the table says ✘ that now passes fails (the table must be rewritten)",
      doc: edit(written, /^(\| 20\.10 .*? \| iptables \| iptables \| CI \| )✔/m, "$1✘"),
      results: ciRun(),
      ok: false,
      row: ["20.10 (Debian bookworm's docker.io)", "iptables", 4, "✔"],
    },
    {
      what: "rows CI does not run are taken as the table has them, ✘ and provenance included",
      doc: edit(written, /^(\| 26\.1 .*? \| iptables \| iptables \| )full matrix \(0123456789, 2026-05-04\) \| ✔/m, "$1full matrix (9999999999, 2026-01-01) | ✘"),
      results: ciRun(),
      ok: true,
    },
    {
      what: "the 29.7 boots CI does not run are taken as the table has them",
      doc: edit(written, /^(\| 29\.7\.2 \(Docker CE.*? \| iptables \| iptables \| CI; its boot: full matrix )\(0123456789, 2026-05-04\)((?: \| [^|]+){7}) \| ✔/m, "$1(8888888888, 2026-02-02)$2 | ✘"),
      results: ciRun(),
      ok: true,
    },
    {
      what: "a later full-matrix run proving the same cells passes and keeps the table's provenance",
      doc: written,
      results: results(run("3333333333333333333333333333333333333333", "2026-06-01T00:00:00.000Z", ALL.join(","), ALL_BOOTS.join(",")), ALL, ALL_BOOTS),
      ok: true,
    },
    {
      what: "a later full-matrix run in which a row CI does not run fails fails",
      doc: written,
      results: results(run("3333333333333333333333333333333333333333", "2026-06-01T00:00:00.000Z", ALL.join(","), ALL_BOOTS.join(",")), ALL, ALL_BOOTS, (e) => (name(e, "forky", /closed-paths|every path/) ? "failed" : undefined)),
      ok: false,
      row: ["28.5 (Debian forky's docker.io)", "iptables", 7, "✘"],
    },
  ];
  it.each(cases)("$what", ({ doc, results: r, ok, row: expectRow }) => {
    const got = compat.check(r, doc);
    expect(got.ok).toBe(ok);
    if (ok) expect(compat.write(r, doc) === doc || r.matrix === ALL.join(",")).toBe(true);
    if (expectRow) {
      const [docker, backend, i, value] = expectRow;
      expect(row(got.expected, docker, backend)[i]).toBe(value);
      expect(row(doc, docker, backend)[i]).not.toBe(value);
    }
  });

  it("a run whose table files were all skipped fails --check, however the table was filled", () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-compat-"));
    try {
      const file = join(dir, "results.json");
      new CompatReporter({ file, run: () => CI_RUN }).onTestRunEnd(
        FILES.map((f) => mod(f, ciRun().tests.filter((t) => t.file === f).map((t): [string, State] => [t.name, "passed"]))),
      );
      const full = JSON.parse(readFileSync(file, "utf8")) as CompatResults;
      expect(compat.check(full, written).ok).toBe(true);
      new CompatReporter({ file, run: () => CI_RUN }).onTestRunEnd(
        FILES.map((f) => mod(f, ciRun().tests.filter((t) => t.file === f).map((t): [string, State] => [t.name, "skipped"]))),
      );
      const skipped = JSON.parse(readFileSync(file, "utf8")) as CompatResults;
      expect(skipped.tests).toEqual([]);
      expect(compat.check(skipped, written).ok).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
