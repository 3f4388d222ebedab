#!/usr/bin/env node
// The compatibility table (Docker version × dockinit backend × feature) in
// docs/compatibility.md, generated from test results, never written by hand.
//
//   node scripts/compat.mjs            print the table from .cache/compat/results.json
//   node scripts/compat.mjs --write    put it between <!-- compat:begin --> and <!-- compat:end --> in docs/compatibility.md
//   node scripts/compat.mjs --check    exit 1 when docs/compatibility.md's table is not what the results say
//
// The results come from test/support/compat-reporter.ts (every vitest run
// that runs the system tests). Regenerate after a full-matrix run:
//   DOCKINIT_DOCKER_MATRIX=bookworm,docker-25.0,trixie,forky,docker-29.7,docker-29.7-nftables DOCKINIT_REQUIRE_SYSTEM_TESTS=1 npx vitest run --project system
//   node scripts/compat.mjs --write
// A cell is "✔" when every test mapped to it ran and passed (at least one),
// "✘" when any of them failed, "—" when none ran (or none exists). Tests a
// cell maps to may be skipped by design on some engines (their titles say
// why, or they are engine-specific checks): a cell needs one that ran. --check
// compares the rows of the engines the last run covered (its
// DOCKINIT_DOCKER_MATRIX) and takes the other rows as docs/compatibility.md has them.
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
    iptables: [["boot", /> seed fixture \(iptables backend/]],
    nftables: [["boot", /> nftables backend \(vpc DNS/]],
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
/** The engines CI boots a guest of (.ci/run's DOCKINIT_BOOT_MATRIX). */
export const CI_BOOTS = ["bookworm"];

function cell(results, row, specs) {
  if (specs.length === 0) return "—";
  const tests = results.tests.filter(
    (t) => t.name.startsWith(row.prefix) && specs.some(([file, re]) => t.file === `${file}.test.ts` && re.test(t.name)),
  );
  const ran = tests.filter((t) => t.state === "passed" || t.state === "failed");
  if (ran.length === 0) return "—";
  if (ran.some((t) => t.state === "failed")) return "✘";
  return "✔";
}

/** The row of dockinit's iptables backend beside Docker's nftables firewall: refused at render; forced, status warns. */
function refusedRow(results, row) {
  const warn = results.tests.find((t) => t.file === "firewall-docker.test.ts" && t.name.startsWith(row.prefix) && /iptables backend forced: status warns.* > apply loads its rules/.test(t.name));
  const forced = warn?.state === "passed" ? "forced anyway, `status` and `apply` warn ✔" : warn?.state === "failed" ? "forced anyway, the warning ✘" : "forced anyway: —";
  return `refused at render (DI058; auto chooses nftables); ${forced}`;
}

/** Entries a guest can boot (test/system/lib/engine.ts BOOT_ROOT, which a unit test compares); docker-25.0 boots nowhere. */
export const BOOTABLE = new Set(["bookworm", "trixie", "forky", "docker-29.7", "docker-29.7-nftables"]);

/** The boot test's entries of a run: DOCKINIT_BOOT_MATRIX, else its Docker matrix (test/system/lib/engine.ts bootMatrix). */
const bootRan = (results) => new Set((results.bootMatrix || results.matrix || "bookworm").split(",").map((e) => e.trim()));

/**
 * One row. `previous` (docs/compatibility.md's cells of that row) stands in for the boot
 * cell when the run booted no guest of that engine (CI boots bookworm only).
 */
export function renderRow(results, row, previous) {
  const runs = !CI_MATRIX.includes(row.entry) ? "full matrix" : CI_BOOTS.includes(row.entry) || !BOOTABLE.has(row.entry) ? "CI" : "CI; its boot: full matrix";
  if (row.firewall === "nftables" && row.backend === "iptables") {
    return `| ${row.docker} | ${row.firewall} | ${row.backend} | ${runs} | ${refusedRow(results, row)} |${" |".repeat(FEATURES.length - 1)}`;
  }
  const cells = FEATURES.map((f, i) => {
    if (f.title.startsWith("boot") && previous && BOOTABLE.has(row.entry) && !bootRan(results).has(row.entry)) return previous[4 + i];
    return cell(results, row, f[row.backend]);
  });
  return `| ${row.docker} | ${row.firewall} | ${row.backend} | ${runs} | ${cells.join(" | ")} |`;
}

export function renderTable(results, keep = () => undefined) {
  const lines = [
    `| Docker | Docker's firewall | dockinit backend | run by | ${FEATURES.map((f) => f.title).join(" | ")} |`,
    `| --- | --- | --- | --- | ${FEATURES.map(() => "---").join(" | ")} |`,
  ];
  for (const row of ROWS) lines.push(keep(row) ?? renderRow(results, row));
  return lines.join("\n");
}

export function section(results, keep) {
  return [
    BEGIN,
    "<!-- generated by scripts/compat.mjs from the system tests' results; do not edit by hand -->",
    "# Compatibility",
    "",
    "Which Docker engines each feature is proven on, generated from the results of the system tests.",
    `CI (\`bash .ci/run\`) runs the engines marked CI (\`DOCKINIT_DOCKER_MATRIX=${CI_MATRIX.join(",")}\`) and`,
    "checks that their rows match its own run; the full-matrix command in [How it is tested](testing.md#the-docker-matrix)",
    "runs every row, and `node scripts/compat.mjs --write` after it writes this table.",
    "",
    "✔ proven with real packets against that engine: 20.10 is this machine's docker.io; 25.0.16 and",
    "29.7.2 are `dockerd`/`docker-proxy` (and runc 1.3.6 for 29) built from moby's tagged source",
    "(`../shared/engines`), run on this machine's userland; 26.1 and 28.5 run chrooted from their Debian",
    "suites (test/system/lib/engine.ts). Boot: a booted Debian guest (systemd-nspawn) of the suite, and for",
    "29.7 a forky guest with 29.7.2's `dockerd`, `docker-proxy` and runc put over forky's docker.io; 25.0",
    "boots nowhere. ✘ failed; — not tested.",
    "",
    renderTable(results, keep),
    "",
    "Limits: under Docker's nftables firewall, a port forward to a container's own address would need",
    "Docker's `bridge-accept-fwmark`, which dockinit does not set. Amazon Linux 2023 is only partly covered: its Docker 25.0.16 engine runs here, but not",
    "its dnf package names, its cloud-init 22.2 or its `docker.service`; no row boots it.",
    END,
  ].join("\n");
}

function replaceSection(doc, text) {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${TABLE_NAME} has no ${BEGIN} … ${END} section`);
  return doc.slice(0, a) + text + doc.slice(b + END.length);
}

/** The command line: only when run as a script (the unit tests import CI_MATRIX and CI_BOOTS). */
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
  const docRows = doc.split("\n").filter((l) => l.startsWith("| "));
  const docRow = (row) => docRows.find((l) => l.startsWith(`| ${row.docker} | ${row.firewall} | ${row.backend} |`));
  const cellsOf = (line) => line?.slice(2, -2).split(" | ");
  // Boot cells of entries the run booted no guest of keep the table's value (CI boots bookworm only).
  const text = section(results, (row) => renderRow(results, row, cellsOf(docRow(row))));
  if (mode === "--write") {
    writeFileSync(TABLE_FILE, replaceSection(doc, text));
    console.log(`compat: ${TABLE_NAME} updated`);
  } else if (mode === "--check") {
    // Rows of engines this run did not cover (the full matrix's) are taken as the table has them.
    const ran = new Set((results.matrix || "bookworm").split(",").map((e) => e.trim()));
    const keep = (row) => (ran.has(row.entry) ? renderRow(results, row, cellsOf(docRow(row))) : docRow(row));
    const checked = section(results, keep);
    if (replaceSection(doc, checked) !== doc) {
      console.error(`compat: ${TABLE_NAME}'s compatibility table differs from the test results; run: node scripts/compat.mjs --write`);
      console.error(checked);
      process.exit(1);
    }
    console.log(`compat: ${TABLE_NAME}'s table matches the test results`);
  } else {
    console.log(text);
  }
}

// Node resolves symlinks in the main module's URL, not in argv[1].
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) main();
