#!/usr/bin/env node
// The README's compatibility table (Docker version × dockinit backend ×
// feature), generated from test results, never written by hand.
//
//   node scripts/compat.mjs            print the table from .cache/compat/results.json
//   node scripts/compat.mjs --write    put it between <!-- compat:begin --> and <!-- compat:end --> in README.md
//   node scripts/compat.mjs --check    exit 1 when README.md's table is not what the results say
//
// The results come from test/support/compat-reporter.ts (every vitest run
// that runs the system tests). Regenerate after a full-matrix run:
//   DOCKINIT_DOCKER_MATRIX=bookworm,trixie,forky DOCKINIT_REQUIRE_SYSTEM_TESTS=1 npx vitest run --project system
//   node scripts/compat.mjs --write
// A cell is "✔" when every test mapped to it ran and passed (at least one),
// "✘" when any of them failed, "—" when none ran (or none exists).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const RESULTS = fileURLToPath(new URL("../.cache/compat/results.json", import.meta.url));
const README = fileURLToPath(new URL("../README.md", import.meta.url));
const BEGIN = "<!-- compat:begin -->";
const END = "<!-- compat:end -->";

/** The policies test of one dockinit backend, by test-name pattern. */
const policies = (backend, re) => ["policies", new RegExp(`${backend} backend: policies.* > ${re.source}`)];

/**
 * Features (columns) and the tests that prove each, per dockinit backend on an
 * iptables Docker (`iptables`, `nftables`) and on Docker 29's nftables (`nft29`).
 * `nftNote` is shown after a passing nftables cell.
 */
const FEATURES = [
  {
    title: "ephemeral-port fix",
    iptables: [["firewall-docker", /iptables backend.* > after apply, ports 33000/]],
    nftables: [["firewall-docker", /nftables backend.* > remaps on the default bridge/]],
    nft29: [["docker29-nftables", /> ephemeral ports:/]],
  },
  {
    title: "kept first after network create / daemon restart",
    iptables: [["firewall-docker", /iptables backend.* > (the watch restores|after a dockerd restart the watch)/]],
    nftables: [["firewall-docker", /nftables backend.* > remaps (on a network|after a dockerd restart)/]],
    nft29: [["docker29-nftables", /> Docker re-creating its tables/]],
  },
  {
    title: "published-port allow-lists, default deny",
    iptables: [policies("iptables", /(published port with an allow-list|allow: \[any\]|allow: \[loopback\]|default: deny)/)],
    nftables: [policies("nftables", /(published port with an allow-list|allow: \[any\]|allow: \[loopback\]|default: deny)/)],
    nft29: [["docker29-nftables", /> (published port with an allow-list|allow: \[any\]|default: deny)/]],
  },
  {
    title: "metadata / block",
    iptables: [policies("iptables", /(containers cannot reach instance metadata|block: )/)],
    nftables: [policies("nftables", /(containers cannot reach instance metadata|block: )/)],
    nft29: [["docker29-nftables", /> containers: metadata/]],
  },
  {
    title: "egress allow-list",
    iptables: [policies("iptables", /egress_allow/)],
    nftables: [policies("nftables", /egress_allow/)],
    nft29: [["docker29-nftables", /> egress_allow/]],
  },
  {
    title: "port forwards",
    iptables: [policies("iptables", /port forward/)],
    nftables: [policies("nftables", /(port forward|nftables backend: with iptables' FORWARD policy DROP)/)],
    nft29: [["docker29-nftables", /> port forward/]],
    nftNote: " only while iptables' FORWARD policy is not DROP (`status` warns)",
  },
  {
    title: "boot (cloud-init)",
    iptables: [["boot", /> seed fixture \(iptables backend/]],
    nftables: [["boot", /> nftables backend \(vpc DNS/]],
    nft29: [],
  },
  {
    title: "`status` names Docker's version and firewall backend",
    iptables: [policies("iptables", /apply succeeds and status reports/)],
    nftables: [policies("nftables", /apply succeeds and status reports/)],
    nft29: [["docker29-nftables", /> apply succeeds, leaves Docker's tables alone, and status names/]],
    // The recreation has tables but no daemon: status can only say "docker: unknown, firewall backend nftables".
    nft29Note: ": the firewall backend only (no daemon to ask for a version)",
  },
];

/** Rows: an engine and dockinit's backend. `prefix` selects the tests of that engine by their full name. */
const ROWS = [
  { docker: "20.10 (bookworm)", firewall: "iptables", backend: "iptables", prefix: "Docker 20.10 (bookworm)", key: "iptables", proof: "real" },
  { docker: "20.10 (bookworm)", firewall: "iptables", backend: "nftables", prefix: "Docker 20.10 (bookworm)", key: "nftables", proof: "real" },
  { docker: "26.1 (trixie)", firewall: "iptables", backend: "iptables", prefix: "Docker 26.1 (trixie)", key: "iptables", proof: "real" },
  { docker: "26.1 (trixie)", firewall: "iptables", backend: "nftables", prefix: "Docker 26.1 (trixie)", key: "nftables", proof: "real" },
  { docker: "28.5 (forky)", firewall: "iptables", backend: "iptables", prefix: "Docker 28.5 (forky)", key: "iptables", proof: "real" },
  { docker: "28.5 (forky)", firewall: "iptables", backend: "nftables", prefix: "Docker 28.5 (forky)", key: "nftables", proof: "real" },
  { docker: "29 (recreated)", firewall: "nftables", backend: "nftables", prefix: "Docker 29 nftables backend", key: "nft29", proof: "recreated" },
];

function cell(results, row, specs) {
  if (specs.length === 0) return "—";
  const tests = results.tests.filter(
    (t) => t.name.startsWith(row.prefix) && specs.some(([file, re]) => t.file === `${file}.test.ts` && re.test(t.name)),
  );
  const ran = tests.filter((t) => t.state === "passed" || t.state === "failed");
  if (ran.length === 0) return "—";
  if (ran.some((t) => t.state === "failed")) return "✘";
  return row.proof === "real" ? "✔" : "✔ (recreated)";
}

export function renderTable(results) {
  const lines = [
    `| Docker (Debian suite) | Docker's firewall | dockinit backend | ${FEATURES.map((f) => f.title).join(" | ")} |`,
    `| --- | --- | --- | ${FEATURES.map(() => "---").join(" | ")} |`,
  ];
  for (const row of ROWS) {
    const cells = FEATURES.map((f) => {
      const c = cell(results, row, f[row.key]);
      if (c === "✔" && row.key === "nftables" && f.nftNote) return `${c}${f.nftNote}`;
      if (c === "✔ (recreated)" && row.key === "nft29" && f.nft29Note) return `${c}${f.nft29Note}`;
      return c;
    });
    lines.push(`| ${row.docker} | ${row.firewall} | ${row.backend} | ${cells.join(" | ")} |`);
  }
  // Docker 29's nftables with the iptables backend: not supported; the status test proves the warning.
  const warn = results.tests.find((t) => t.file === "docker29-nftables.test.ts" && /status of an iptables-backend config names Docker's nftables backend/.test(t.name));
  const warned = warn?.state === "passed" ? "not supported: `status` warns (✔ recreated)" : warn?.state === "failed" ? "not supported: `status` warning ✘" : "not supported";
  lines.push(`| 29 (recreated) | nftables | iptables | ${warned} |${" |".repeat(FEATURES.length - 1)}`);
  return lines.join("\n");
}

export function section(results) {
  return [
    BEGIN,
    "<!-- generated by scripts/compat.mjs from the system tests' results; do not edit by hand -->",
    "## Compatibility",
    "",
    "Which Docker engines each feature is proven on, generated from the results of the system tests",
    "(`DOCKINIT_DOCKER_MATRIX=bookworm,trixie,forky`, then `node scripts/compat.mjs --write`; CI checks",
    "that this table matches its own full-matrix run).",
    "",
    "✔ proven with real packets against that engine (20.10 is this machine's docker.io; 26.1 and 28.5 run",
    "chrooted from their Debian suites, test/system/lib/engine.ts; boot: a booted guest of the suite);",
    "✔ (recreated): against Docker 29's `ip/ip6 docker-bridges` tables recreated from moby's documentation",
    "(no Docker 29 package is reachable here); ✘ failed; — not tested.",
    "",
    renderTable(results),
    "",
    "Limits: with `firewall.backend: nftables`, port forwards need iptables' `FORWARD` policy to be",
    "ACCEPT (an nftables accept cannot override a DROP there; Docker's iptables backend sets DROP when it",
    "turns forwarding on, Docker 20.10 and 26.1 also for IPv6) and `status`/`apply` warn when it is",
    "not; a port forward to a container's own address under Docker 29 would need Docker's",
    "`--bridge-accept-fwmark`, which dockinit does not set. Under Docker 29's nftables firewall use",
    "`firewall.backend: nftables`: the iptables backend's rules are not ordered before Docker's.",
    END,
  ].join("\n");
}

function replaceSection(readme, text) {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  return readme.slice(0, a) + text + readme.slice(b + END.length);
}

const mode = process.argv[2] ?? "";
let results;
try {
  results = JSON.parse(readFileSync(RESULTS, "utf8"));
} catch {
  console.error(`compat: no results in ${RESULTS}; run the system tests first`);
  process.exit(1);
}
const text = section(results);
if (mode === "--write") {
  writeFileSync(README, replaceSection(readFileSync(README, "utf8"), text));
  console.log("compat: README.md updated");
} else if (mode === "--check") {
  const readme = readFileSync(README, "utf8");
  if (replaceSection(readme, text) !== readme) {
    console.error("compat: README.md's compatibility table differs from the test results; run: node scripts/compat.mjs --write");
    console.error(text);
    process.exit(1);
  }
  console.log("compat: README.md's table matches the test results");
} else {
  console.log(text);
}
