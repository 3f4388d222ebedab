#!/usr/bin/env node
// The compatibility table (Docker version × dockinit backend × feature) in
// docs/compatibility.md, generated from test results, never written by hand.
//
//   node scripts/compat.mjs            print the table from .cache/compat/results.json
//   node scripts/compat.mjs --write    put it between <!-- compat:begin --> and <!-- compat:end --> in docs/compatibility.md
//   node scripts/compat.mjs --check    exit 1 when docs/compatibility.md's table is not what the results say
//
// The results come from test/support/compat-reporter.ts (every vitest run
// that runs the system tests): each test's state, and per test file the run
// (commit, date, matrices) its entries come from. Regenerate after a full-matrix run:
//   DOCKINIT_DOCKER_MATRIX=bookworm,docker-25.0,trixie,forky,docker-29.7,docker-29.7-nftables \
//   DOCKINIT_BOOT_MATRIX=bookworm,trixie,forky,docker-29.7,docker-29.7-nftables,cloud-init-22.2,cloud-init-26.2 \
//   DOCKINIT_REQUIRE_SYSTEM_TESTS=1 npx vitest run --project system
//   node scripts/compat.mjs --write
// A cell is "✔" when every test mapped to it ran and passed (at least one),
// "✘" when any of them failed, "—" when none ran (or none exists). Tests a
// cell maps to may be skipped by design on some engines (their titles say
// why, or they are engine-specific checks): a cell needs one that ran.
//
// The results render the rows of the engines the last run covered (its
// DOCKINIT_DOCKER_MATRIX; a row's boot cell, the guests it booted, its
// DOCKINIT_BOOT_MATRIX); every other row, or boot cell, is taken as
// docs/compatibility.md has it. The "run by" column says "CI" for what CI
// runs (.ci/run checks it against its own run) and, for every other row or
// boot, the run that filled it: "full matrix (1a2b3c4d5e, 2026-05-04)", its
// commit's first 10 hex digits (+dirty when the tree had uncommitted changes)
// and its day (UTC). --write takes that from the results; --check compares
// the cells and keeps the table's provenance, so a CI run passes on a table a
// full-matrix run wrote.
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const RESULTS = fileURLToPath(new URL("../.cache/compat/results.json", import.meta.url));
/** Where the table lives (the README links it). */
export const TABLE_FILE = fileURLToPath(new URL("../docs/compatibility.md", import.meta.url));
const TABLE_NAME = "docs/compatibility.md";
const BEGIN = "<!-- compat:begin -->";
const END = "<!-- compat:end -->";

/** The policies test of one dockinit backend, by test-name pattern. */
const policies = (backend, re) => ["policies", new RegExp(`${backend} backend: policies.* > ${re.source}`)];
/** The closed-paths test of one dockinit backend. */
const closed = (backend) => ["closed-paths", new RegExp(`${backend} backend: every path to a published port`)];

/**
 * Features (columns) and the tests that prove each, per dockinit backend
 * (`iptables`, `nftables`). Every engine runs the same test files; an engine
 * whose own firewall is nftables runs dockinit's nftables backend only.
 */
const FEATURES = [
  {
    title: "ephemeral-port fix",
    iptables: [["firewall-docker", /iptables backend.* > after apply, ports 33000/]],
    nftables: [["firewall-docker", /nftables backend.* > remaps on the default bridge/]],
  },
  {
    title: "kept first after network create / daemon restart",
    iptables: [["firewall-docker", /iptables backend.* > (the watch restores|after a dockerd restart the watch)/]],
    nftables: [["firewall-docker", /nftables backend.* > remaps (on a network|after a dockerd restart)/], ["firewall-docker", /default backend .* none unremapped/]],
  },
  {
    title: "published-port allow-lists, default deny",
    iptables: [policies("iptables", /(published port with an allow-list|allow: \[any\]|allow: \[loopback\]|default: deny)/)],
    nftables: [policies("nftables", /(published port with an allow-list|allow: \[any\]|allow: \[loopback\]|default: deny)/)],
  },
  {
    title: "closed on every path (docker-proxy's IPv6, a direct route, a dockerd restart)",
    iptables: [closed("iptables")],
    nftables: [closed("nftables")],
  },
  {
    title: "metadata / block",
    iptables: [policies("iptables", /(containers cannot reach instance metadata|block: )/)],
    nftables: [policies("nftables", /(containers cannot reach instance metadata|block: )/)],
  },
  {
    title: "egress allow-list",
    iptables: [policies("iptables", /egress_allow/)],
    nftables: [policies("nftables", /egress_allow/)],
  },
  {
    title: "port forwards",
    iptables: [policies("iptables", /port forward/)],
    nftables: [policies("nftables", /(port forward|nftables backend: the forwards' accept)/)],
  },
  {
    title: "boot (cloud-init)",
    boot: true,
    iptables: [["boot", /> seed fixture \(iptables backend/]],
    nftables: [["boot", /> nftables backend \(vpc DNS/]],
  },
  {
    title: "cloud-init booted",
    boot: true,
    // The cell names the versions (the test's title carries it), not a check mark.
    versions: true,
    iptables: [["boot", /> seed fixture \(iptables backend.* > the guest runs cloud-init /]],
    nftables: [["boot", /> nftables backend \(vpc DNS.* > the guest runs cloud-init /]],
  },
  {
    title: "`status` names Docker's version and firewall backend",
    iptables: [policies("iptables", /apply succeeds and status reports/)],
    nftables: [policies("nftables", /apply succeeds and status reports/)],
  },
];

/**
 * Rows: an engine of the Docker matrix (test/system/lib/engine.ts) and
 * dockinit's backend. `prefix` selects the engine's tests by their full name
 * (engineLabel); `entry` is its DOCKINIT_DOCKER_MATRIX name.
 */
const ENGINES = [
  { entry: "bookworm", docker: "20.10 (Debian bookworm's docker.io)", prefix: "Docker 20.10 (bookworm)", firewall: "iptables" },
  { entry: "docker-25.0", docker: "25.0.16 (Amazon Linux 2023's version, built from moby)", prefix: "Docker 25.0 (moby v25.0.16)", firewall: "iptables" },
  { entry: "trixie", docker: "26.1 (Debian trixie's docker.io)", prefix: "Docker 26.1 (trixie)", firewall: "iptables" },
  { entry: "forky", docker: "28.5 (Debian forky's docker.io)", prefix: "Docker 28.5 (forky)", firewall: "iptables" },
  { entry: "docker-29.7", docker: "29.7.2 (Docker CE's version, built from moby)", prefix: "Docker 29.7 (moby v29.7.2)", firewall: "iptables" },
  { entry: "docker-29.7-nftables", docker: "29.7.2 (built from moby)", prefix: "Docker 29.7 (moby v29.7.2, nftables firewall)", firewall: "nftables" },
];
const ROWS = ENGINES.flatMap((e) => (e.firewall === "nftables" ? ["nftables", "iptables"] : ["iptables", "nftables"]).map((backend) => ({ ...e, backend })));

/** The engines CI runs (.ci/run's DOCKINIT_DOCKER_MATRIX); the others run in the full-matrix command. */
export const CI_MATRIX = ["bookworm", "docker-25.0", "docker-29.7", "docker-29.7-nftables"];
/** The guests CI boots (.ci/run's DOCKINIT_BOOT_MATRIX). */
export const CI_BOOTS = ["bookworm", "cloud-init-22.2"];

/** Docker-matrix entries a Debian guest of their own can boot (test/system/lib/engine.ts BOOT_ROOT, which a unit test compares). */
export const BOOTABLE = new Set(["bookworm", "trixie", "forky", "docker-29.7", "docker-29.7-nftables"]);
/** Guests with upstream cloud-init, and the Docker-matrix entry whose row their boot fills (engine.ts CLOUD_INIT_GUESTS, compared by the same test). */
export const BOOT_GUESTS = { "cloud-init-22.2": "docker-25.0", "cloud-init-26.2": "docker-29.7" };
/** The boot-matrix entries that boot a row's engine. */
const bootEntriesOf = (row) => [...(BOOTABLE.has(row.entry) ? [row.entry] : []), ...Object.keys(BOOT_GUESTS).filter((g) => BOOT_GUESTS[g] === row.entry)];
const bootable = (row) => bootEntriesOf(row).length > 0;

/** The provenance of a row filled before runs were recorded (or by a run the table cannot name). */
export const NOT_RECORDED = "run not recorded";
/** The provenance of a row no run filled. */
const NOT_RUN = "not run";

const ran = (t) => t.state === "passed" || t.state === "failed";

/** The row's tests a column maps to. */
const testsOf = (results, row, specs) => results.tests.filter((t) => t.name.startsWith(row.prefix) && specs.some(([file, re]) => t.file === `${file}.test.ts` && re.test(t.name)));

function cell(results, row, specs) {
  if (specs.length === 0) return "—";
  const done = testsOf(results, row, specs).filter(ran);
  if (done.length === 0) return "—";
  if (done.some((t) => t.state === "failed")) return "✘";
  return "✔";
}

/** The cloud-init versions the row's boots ran (from the passed tests' titles), "✘" when one failed, "—" for none. */
function versionsCell(results, row, specs) {
  const done = testsOf(results, row, specs).filter(ran);
  if (done.length === 0) return "—";
  if (done.some((t) => t.state === "failed")) return "✘";
  const versions = new Set(done.map((t) => /the guest runs cloud-init (\S+)$/.exec(t.name)?.[1]).filter(Boolean));
  return [...versions].sort((a, b) => a.localeCompare(b, "en", { numeric: true })).join(", ");
}

/** The row of dockinit's iptables backend beside Docker's nftables firewall: refused at render; forced, status warns. */
function refusedRow(results, row) {
  const warn = results.tests.find((t) => t.file === "firewall-docker.test.ts" && t.name.startsWith(row.prefix) && /iptables backend forced: status warns.* > apply loads its rules/.test(t.name));
  const forced = warn?.state === "passed" ? "forced anyway, `status` and `apply` warn ✔" : warn?.state === "failed" ? "forced anyway, the warning ✘" : "forced anyway: —";
  return `refused at render (DI058; auto chooses nftables); ${forced}`;
}

const entries = (list) => new Set((list || "bookworm").split(",").map((e) => e.trim()));
/** The Docker-matrix entries the last run covered: its DOCKINIT_DOCKER_MATRIX (test/system/lib/engine.ts dockerMatrix). */
const matrixRan = (results) => entries(results.matrix);
/** The boot test's entries of that run: DOCKINIT_BOOT_MATRIX, else its Docker matrix (test/system/lib/engine.ts bootMatrix). */
const bootRan = (results) => entries(results.bootMatrix || results.matrix);

/** The test files of the boot column, and of every other column (the refused row's warning test among them). */
const BOOT_FILES = new Set(FEATURES.filter((f) => f.boot).flatMap((f) => [...f.iptables, ...f.nftables].map(([file]) => `${file}.test.ts`)));
const TEST_FILES = new Set(["firewall-docker.test.ts", ...FEATURES.filter((f) => !f.boot).flatMap((f) => [...f.iptables, ...f.nftables].map(([file]) => `${file}.test.ts`))]);

/** How the table names a run: its commit's first 10 hex digits (+dirty: the tree had uncommitted changes) and its day, UTC. */
export function runName(run) {
  if (!run?.date) return NOT_RECORDED;
  return `${run.commit ? run.commit.slice(0, 10) : "unknown commit"}${run.dirty ? "+dirty" : ""}, ${run.date.slice(0, 10)}`;
}

/** The runs that filled a row's cells of `files` (the runs of the files with a test of that engine that ran), oldest first. */
function filledBy(results, row, files) {
  const names = new Map();
  for (const t of results.tests) {
    if (!files.has(t.file) || !t.name.startsWith(row.prefix) || !ran(t)) continue;
    const run = results.runs?.[t.file];
    names.set(runName(run), run?.date ?? "");
  }
  if (names.size === 0) return NOT_RUN;
  return [...names].sort((a, b) => a[1].localeCompare(b[1]) || a[0].localeCompare(b[0])).map(([name]) => name).join(" and ");
}

const inCI = (row) => CI_MATRIX.includes(row.entry);
const bootInCI = (row) => !bootable(row) || (inCI(row) && bootEntriesOf(row).every((e) => CI_BOOTS.includes(e)));
const label = (provenance) => `full matrix (${provenance})`;

/** The "run by" cell: "CI" for what CI runs, else the run that filled it. */
export function runBy(row, tests, boot) {
  const named = (p) => (p === "CI" ? NOT_RECORDED : p);
  if (inCI(row)) return bootInCI(row) ? "CI" : `CI; its boot: ${label(named(boot))}`;
  return !bootable(row) || named(boot) === named(tests) ? label(named(tests)) : `${label(named(tests))}; its boot: ${label(named(boot))}`;
}

/** A "run by" cell read back: the provenance of the row's tests and of its boot ("CI", or a run's name). */
export function parseRunBy(text) {
  const [a, b] = text.split("; its boot: ");
  const provenance = (s) => (s.trim() === "CI" ? "CI" : (/^full matrix \((.*)\)$/.exec(s.trim())?.[1] ?? NOT_RECORDED));
  const tests = provenance(a);
  return { tests, boot: b === undefined ? tests : provenance(b) };
}

const split = (line) => line.split("|").slice(1, -1).map((c) => c.trim());
const keyOf = (cells) => cells.slice(0, 3).join(" | ");

/** The table's rows as docs/compatibility.md (`doc`) has them: by "Docker | firewall | backend", the provenance and the cells by column title. */
export function parseTable(doc) {
  const lines = doc.split("\n");
  const head = lines.findIndex((l) => l.startsWith("| Docker |"));
  const rows = new Map();
  if (head < 0) return rows;
  const titles = split(lines[head]);
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith("|")) break;
    const cells = split(line);
    const byTitle = new Map(titles.map((t, i) => [t, cells[i] ?? ""]));
    rows.set(keyOf(cells), { runBy: parseRunBy(byTitle.get("run by") ?? ""), cells: byTitle });
  }
  return rows;
}

/**
 * One row. What the last run covered (its Docker matrix; its boot matrix for
 * the boot cell) comes from `results`; the rest from `previous` (the table's
 * row, parseTable), "—" without one. `keepProvenance` (--check) keeps the
 * table's provenance of a row or boot the run covered, and compares its cells.
 */
export function renderRow(results, row, previous, { keepProvenance = false } = {}) {
  const prev = previous ?? { runBy: { tests: NOT_RUN, boot: NOT_RUN }, cells: new Map() };
  const testsCovered = matrixRan(results).has(row.entry);
  // A row's boot cells are the run's when it booted every guest of that engine (a CI run that boots one of two keeps the table's).
  const bootCovered = bootable(row) ? bootEntriesOf(row).every((e) => bootRan(results).has(e)) : testsCovered;
  const tests = testsCovered && !(keepProvenance && previous) ? filledBy(results, row, TEST_FILES) : prev.runBy.tests;
  const boot = bootCovered && !(keepProvenance && previous) ? filledBy(results, row, BOOT_FILES) : prev.runBy.boot;
  const by = runBy(row, tests, boot);
  if (row.firewall === "nftables" && row.backend === "iptables") {
    const refused = testsCovered ? refusedRow(results, row) : (prev.cells.get(FEATURES[0].title) ?? refusedRow(results, row));
    return `| ${row.docker} | ${row.firewall} | ${row.backend} | ${by} | ${refused} |${" |".repeat(FEATURES.length - 1)}`;
  }
  const cells = FEATURES.map((f) => ((f.boot ? bootCovered : testsCovered) ? (f.versions ? versionsCell : cell)(results, row, f[row.backend]) : (prev.cells.get(f.title) ?? "—")));
  return `| ${row.docker} | ${row.firewall} | ${row.backend} | ${by} | ${cells.join(" | ")} |`;
}

/** The table: `doc` (docs/compatibility.md's text, "" for none) gives the rows and boots the results do not cover. */
export function renderTable(results, doc = "", options = {}) {
  const previous = parseTable(doc);
  const lines = [
    `| Docker | Docker's firewall | dockinit backend | run by | ${FEATURES.map((f) => f.title).join(" | ")} |`,
    `| --- | --- | --- | --- | ${FEATURES.map(() => "---").join(" | ")} |`,
  ];
  for (const row of ROWS) lines.push(renderRow(results, row, previous.get(`${row.docker} | ${row.firewall} | ${row.backend}`), options));
  return lines.join("\n");
}

export function section(results, doc = "", options = {}) {
  return [
    BEGIN,
    "<!-- generated by scripts/compat.mjs from the system tests' results; do not edit by hand -->",
    "# Compatibility",
    "",
    "Which Docker engines each feature is proven on, generated from the results of the system tests.",
    `CI (\`bash .ci/run\`) runs the engines marked CI (\`DOCKINIT_DOCKER_MATRIX=${CI_MATRIX.join(",")}\`) and`,
    "checks on each run that their rows match its own results; the full-matrix command in [How it is tested](testing.md#the-docker-matrix)",
    "runs every row, and `node scripts/compat.mjs --write` after it writes this table.",
    "A row CI does not run, and a boot CI does not run, names the run that filled it: \"full matrix (1a2b3c4d5e, 2026-05-04)\"",
    "is the commit that run tested (its first 10 hex digits; +dirty when the working tree had uncommitted changes)",
    `and the day it ran (UTC); "${NOT_RECORDED}": filled before the table recorded runs.`,
    "",
    "✔ proven with real packets against that engine: 20.10 is this machine's docker.io; 25.0.16 and",
    "29.7.2 are `dockerd`/`docker-proxy` (and runc 1.3.6 for 29) built from moby's tagged source",
    "(`../shared/engines`), run on this machine's userland; 26.1 and 28.5 run chrooted from their Debian",
    "suites (test/system/lib/engine.ts). Boot: a booted Debian guest (systemd-nspawn) of the suite, and for",
    "29.7 a forky guest with 29.7.2's `dockerd`, `docker-proxy` and runc put over forky's docker.io; 25.0.16",
    "boots on upstream cloud-init 22.2.2 (Amazon Linux 2023's) in CI, and 29.7.2 on 26.2 in the full matrix (its cells",
    "show it once such a run is recorded): bookworm's userland, the engine started by moby's own units (`docker.socket`,",
    "`Restart=always`), nft installed at boot on 22.2.2 (test/support/cloud-init-guest.ts). \"cloud-init booted\": the",
    "versions whose boots passed. ✘ failed; — not tested.",
    "",
    renderTable(results, doc, options),
    "",
    "Limits: under Docker's nftables firewall, a port forward to a container's own address would need",
    "Docker's `bridge-accept-fwmark`, which dockinit does not set. Amazon Linux 2023 is reproduced in part: its Docker 25.0.16 and",
    "its cloud-init 22.2.2 (upstream's, without Amazon's patches) boot here, on Debian's userland; not dnf itself (the guest installs",
    "nft and ipset with apt, from a local package source; dockinit-boot's dnf names are checked only as text), not AL2023's own",
    "`docker.service` (moby's units stand in), not its kernel or SELinux.",
    END,
  ].join("\n");
}

function replaceSection(doc, text) {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${TABLE_NAME} has no ${BEGIN} … ${END} section`);
  return doc.slice(0, a) + text + doc.slice(b + END.length);
}

/** docs/compatibility.md (`doc`) as --write leaves it. */
export function write(results, doc) {
  return replaceSection(doc, section(results, doc));
}

/** --check: the table matches the results (CI's rows exactly; the others' cells where the run covered them, their provenance as the table has it). */
export function check(results, doc) {
  const expected = section(results, doc, { keepProvenance: true });
  return { ok: replaceSection(doc, expected) === doc, expected };
}

/** The command line: only when run as a script (the unit tests import this module). */
function main() {
  const mode = process.argv[2] ?? "";
  let results;
  try {
    results = JSON.parse(readFileSync(RESULTS, "utf8"));
  } catch {
    console.error(`compat: no results in ${RESULTS}; run the system tests first`);
    process.exit(1);
  }
  const doc = readFileSync(TABLE_FILE, "utf8");
  if (mode === "--write") {
    writeFileSync(TABLE_FILE, write(results, doc));
    console.log(`compat: ${TABLE_NAME} updated`);
  } else if (mode === "--check") {
    const { ok, expected } = check(results, doc);
    if (!ok) {
      console.error(`compat: ${TABLE_NAME}'s compatibility table differs from the test results; run: node scripts/compat.mjs --write`);
      console.error(expected);
      process.exit(1);
    }
    console.log(`compat: ${TABLE_NAME}'s table matches the test results`);
  } else {
    console.log(section(results, doc));
  }
}

// Node resolves symlinks in the main module's URL, not in argv[1].
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) main();
