#!/usr/bin/env node
// Mutation check: break five things on purpose, one at a time, run the tests
// that should notice, and report which failed. A mutation no test notices is a
// hole in the proof. Every source file is restored afterwards, whatever happens.
//
//   node scripts/mutate.mjs            the unit tests (a few minutes, no root)
//   node scripts/mutate.mjs --system   also the namespace tests named per mutation (root)
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

const withSystem = process.argv.includes("--system");

/** Each: the file, the exact text replaced, its broken version, and the tests expected to notice. */
const MUTATIONS = [
  {
    name: "user file contents rewritten (CRLF to LF) in the cloud-config",
    file: "src/render/cloud-config.ts",
    from: "      content: a.content,",
    to: '      content: a.content.replace(/\\r\\n/g, "\\n"),',
    unit: ["test/unit/property.test.ts", "test/unit/injection.test.ts"],
    system: [],
  },
  {
    name: "a policy's direction: published-port rules judge replies instead of what the client sends",
    file: "src/render/firewall-rules.ts",
    from: 'const ORIG = "--ctdir ORIGINAL";',
    to: 'const ORIG = "--ctdir REPLY";',
    unit: ["test/unit/firewall-rules.test.ts", "test/unit/fixtures.test.ts"],
    system: ["test/system/closed-paths.test.ts"],
  },
  {
    name: "a port range bound: the rewrite's upper port one lower",
    file: "src/render/firewall-rules.ts",
    from: '--to-ports ${span(ep.to, "-")}',
    to: '--to-ports ${span({ low: ep.to.low, high: ep.to.high - 1 }, "-")}',
    unit: ["test/unit/firewall-rules.test.ts", "test/unit/fixtures.test.ts"],
    system: ["test/system/firewall-engine.test.ts"],
  },
  {
    name: "the jump position: dockinit's jumps appended instead of put first",
    file: "templates/dockinit-firewall.sh.hbs",
    from: "    printf -- '-I %s 1 -j %s\\n' \"$parent\" \"$chain\"",
    to: "    printf -- '-A %s -j %s\\n' \"$parent\" \"$chain\"",
    unit: ["test/unit/fixtures.test.ts"],
    system: ["test/system/firewall-engine.test.ts"],
  },
  {
    name: "the IPv6 family: ip6tables rules loaded with iptables",
    file: "templates/dockinit-firewall.sh.hbs",
    from: 'ipt_cmd() { if [ "$1" = 4 ]; then echo iptables; else echo ip6tables; fi; }',
    to: "ipt_cmd() { echo iptables; }",
    unit: ["test/unit/fixtures.test.ts"],
    system: ["test/system/policies.test.ts"],
  },
];

function vitest(files) {
  const r = spawnSync("npx", ["vitest", "run", "--reporter=json", ...files], { encoding: "utf8", maxBuffer: 256 << 20 });
  const start = r.stdout.indexOf("{");
  let failed = [];
  try {
    const report = JSON.parse(r.stdout.slice(start));
    failed = report.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === "failed").map((a) => `${f.name.replace(`${process.cwd()}/`, "")}: ${a.fullName}`));
  } catch {
    failed = [`(no JSON report; exit ${r.status})`];
  }
  return { code: r.status, failed };
}

const originals = new Map();
const restore = () => {
  for (const [file, text] of originals) writeFileSync(file, text);
};
process.on("SIGINT", () => {
  restore();
  process.exit(130);
});

let holes = 0;
try {
  for (const m of MUTATIONS) {
    const text = originals.get(m.file) ?? readFileSync(m.file, "utf8");
    originals.set(m.file, text);
    if (!text.includes(m.from)) throw new Error(`${m.name}: ${m.file} no longer contains ${JSON.stringify(m.from)}; update scripts/mutate.mjs`);
    writeFileSync(m.file, text.replace(m.from, m.to));
    const files = [...m.unit, ...(withSystem ? m.system : [])];
    const r = vitest(files);
    writeFileSync(m.file, text);
    console.log(`\n## ${m.name}\n   ${m.file}; ran ${files.join(", ")}`);
    if (r.failed.length === 0) {
      holes++;
      console.log("   NOT NOTICED: every test passed");
    } else {
      console.log(`   noticed by ${r.failed.length} failing test(s), e.g.:`);
      for (const f of r.failed.slice(0, 4)) console.log(`   - ${f}`);
    }
  }
} finally {
  restore();
}
console.log(`\n${MUTATIONS.length - holes} of ${MUTATIONS.length} mutations noticed`);
process.exit(holes === 0 ? 0 : 1);
