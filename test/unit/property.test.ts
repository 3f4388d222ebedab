// Property: every configuration fast-check can generate — valid ones with the
// nastiest values the schema admits, and near-valid ones a mutation away — is
// either rejected with coded diagnostics (no throw, a position for each, and
// the CLI writes nothing) or renders into a bundle that passes every
// validator: cloud-init reads the user-data back exactly as emitted, the
// kernel accepts every rule and iptables-save prints it back unchanged, and
// each distinct script and unit shape passes shellcheck, bash -n and
// systemd-analyze (see test/support/bulk-checks.ts for how ten thousand
// bundles are validated in a couple of minutes).
//
// Deterministic: fixed seeds (DOCKINIT_FUZZ_SEED to try others), a fixed count
// (DOCKINIT_FUZZ_RUNS, default 10,000). A failure prints the config's YAML;
// add it to REGRESSIONS below with what it found.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import fc from "fast-check";
import ipaddr from "ipaddr.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { catalogue, formatDiagnostic, hasErrors, loadConfigString, planFirewall, renderBundle, writeBundle, type Bundle, type Diagnostic } from "../../src/index.js";
import { runCli } from "../../src/cli/main.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import type { Model } from "../../src/model.js";
import { CloudInitBatch, RuleBatch, type CloudInitFailure, ShapeCache, checkScripts, quotedHeredocs, scratchDir, sortKeysDeep, type RuleFinding, type ScriptFinding } from "../support/bulk-checks.js";
import { configText, GENERATED_FILES, type GeneratedConfig } from "../support/config-arbitraries.js";
import { REPO } from "../support/fixtures.js";
import { expectedCloudConfig as expectedFromInput, type Input } from "../support/expected-cloud-config.js";
const expectedCloudConfig = (input: Input, bundle: Bundle) => expectedFromInput(input, bundle, (source) => GENERATED_FILES[source]);
import { skipUnless } from "../support/system.js";
import { describeFailures, validateBundle, VALIDATOR_NEEDS } from "../support/validators.js";

const RUNS = Number(process.env.DOCKINIT_FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.DOCKINIT_FUZZ_SEED ?? 0x8d0c_2024);
const CHUNK = 1_000;
/** Whole-bundle validateBundle() runs (about 2 s each), one per new class of units/boot script. */
const MAX_FULL_BUNDLES = 12;

/**
 * Configs that once failed, kept as regression cases (each also runs through
 * the same checks). Add the YAML a failure prints, and what it found.
 */
export const REGRESSIONS: { found: string; outcome: "rendered" | "rejected"; yaml: string }[] = [
  {
    found: "runcmd '=' and '<<' emitted plain: PyYAML resolves them to the value/merge tags SafeLoader cannot construct, and cloud-init drops the whole cloud-config",
    outcome: "rendered",
    yaml: "version: 1\nuser_data:\n  runcmd: ['=', '<<', [echo, '='], [echo, '<<']]\n  packages: ['1:20', '0x10', 'yes']\n  write_files: [{ path: /x, content: '<<' }, { path: /y, content: '=' }]\n",
  },
  {
    found: "daemon.json with DEL, NEL, C1, BOM or U+2028 (JSON keeps them raw) went into a block literal or the yaml package's double quotes raw: PyYAML refuses the stream or reads a line break",
    outcome: "rendered",
    yaml: 'version: 1\ndocker:\n  daemon:\n    settings: { "a\\x7fb": "c\\u2028d", "e": "f\\x85g\\x80h\\ufeff", "x\\u2029": 1 }\n',
  },
  {
    found: "multi-line strings in the yaml package's folded double quotes read back by PyYAML with extra spaces",
    outcome: "rendered",
    yaml: 'version: 1\nuser_data:\n  write_files: [{ path: /x, content: "a\\x1b\\n  b \\n\\n c\\t\\n" }]\n  runcmd: ["a\\nb", " lead", "trail ", "\\ttab"]\n',
  },
  {
    found: "egress_allow with IPv4 networks only: the IPv6 branch was `printf '%s\\n' ;;` (shellcheck SC2183), which prints an empty line that ipset restore refuses",
    outcome: "rendered",
    yaml: "version: 1\ndocker: { daemon: { dns: [amazon] } }\nfirewall:\n  containers:\n    egress_allow: [198.51.100.0/24]\n",
  },
  {
    found: "a /0 network was written as -s 0.0.0.0/0, which iptables-save leaves out: status reported the rule changed forever",
    outcome: "rendered",
    yaml: "version: 1\nephemeral_ports: { sources: [0.0.0.0/0, ::/0] }\nfirewall:\n  published: { rules: [{ port: 80, allow: [0.0.0.0/0, ::/0] }] }\n  containers: { block: [0.0.0.0/0] }\n",
  },
  {
    found: "IPv4-mapped and -compatible IPv6 networks written as ipaddr.js hex (::ffff:c000:201), printed by iptables-save as a dotted quad",
    outcome: "rendered",
    yaml: "version: 1\nfirewall:\n  containers: { block: ['::ffff:192.0.2.0/120', '::192.0.2.1', '::1.2.3.0/120'] }\n",
  },
  {
    found: "a tag on a scalar (!!python/object...) was accepted once the loader also visited scalars for lone surrogates",
    outcome: "rejected",
    yaml: "version: 1\nname: !!python/object/apply:os.system 'x'\n",
  },
  {
    found: "a file content of blanks only, or starting with a blank or a blank line, written as a block literal that PyYAML reads differently or refuses",
    outcome: "rendered",
    yaml: 'version: 1\nuser_data:\n  write_files:\n    - { path: /a, content: "  " }\n    - { path: /b, content: "  \\n \\n" }\n    - { path: /c, content: "\\tOFF\\n" }\n    - { path: /d, content: "\\n\\nx\\n" }\n    - { path: /e, content: " a\\n" }\n',
  },
  {
    found: "MIME parts were 8bit: cloud-init parses user-data as a str and Python's email package returns such parts raw-unicode-escaped, so every non-ASCII character reached the instance mangled",
    outcome: "rendered",
    yaml: "version: 1\nuser_data:\n  format: mime\n  write_files: [{ path: /etc/motd, content: \"Grüße — 😀\\n\" }]\n  runcmd: [echo é]\n",
  },
  {
    found: "a cloud-config part that is not a YAML mapping (cloud-init drops it with a warning)",
    outcome: "rejected",
    yaml: "version: 1\nuser_data:\n  parts: [{ file: parts/boot.sh, type: cloud-config }]\n",
  },
  { found: "an escaped lone surrogate became U+FFFD on the instance", outcome: "rejected", yaml: 'version: 1\nuser_data:\n  write_files: [{ path: /x, content: "a\\ud800b" }]\n' },
  { found: "an empty document's DI013 had no position (0:0)", outcome: "rejected", yaml: "# only a comment\n" },
  { found: "MIME-Version: near the top of a cloud-config made cloud-init parse it as a MIME message", outcome: "rendered", yaml: "version: 1\ndocker: { daemon: { settings: { x: 'MIME-Version: 1.0' } } }\n" },
  { found: "a write_files path that is a directory of dockinit's own files", outcome: "rejected", yaml: "version: 1\nuser_data:\n  write_files: [{ path: /etc/docker, content: x }]\n" },
  { found: "a merge_type with a line break wrote MIME headers of its own", outcome: "rejected", yaml: 'version: 1\nuser_data:\n  parts: [{ file: parts/boot.sh, type: x-shellscript, merge_type: "list(append)\\nContent-Type: text/cloud-boothook" }]\n' },
  { found: "a port forward to the metadata service let clients of the host port (containers too) reach the instance's credentials", outcome: "rejected", yaml: "version: 1\nport_forwards: [{ listen: 9000, to: '169.254.169.254:80' }]\n" },
];

/** Codes whose diagnostics have no place in the file (size, the rendered user-data). */
const POSITIONLESS = new Set(["DI004", "DI047", "DI055"]);

const reader = { read: (p: string) => GENERATED_FILES[p] };

interface Stats {
  total: number;
  valid: number;
  nearValid: number;
  rendered: number;
  rejected: number;
  renderedValidKind: number;
  codes: Map<string, number>;
  cliRuns: number;
  deterministic: number;
  ms: Record<string, number>;
}

interface Finding {
  id: number;
  problem: string;
}

/** daemon.json as the user's input says it must be. */
function expectedDaemonJson(input: Input): unknown {
  const d = input.docker?.daemon ?? {};
  const out: Record<string, unknown> = { ...(d.settings ?? {}) };
  const literals = (d.dns ?? ["vpc"]).filter((s) => s !== "vpc").map((s) => (s === "amazon" ? "169.254.169.253" : ipaddr.parse(s).toString()));
  if (literals.length > 0) out.dns = literals;
  if ((d.dns_search ?? []).length > 0) out["dns-search"] = d.dns_search;
  // Default deny: docker-proxy runs through dockinit's wrapper, unless the user turned the proxy off or chose another.
  const deny = (input.firewall as { published?: { default?: string } } | undefined)?.published?.default === "deny";
  if (deny && d.settings?.["userland-proxy"] !== false && d.settings?.["userland-proxy-path"] === undefined) out["userland-proxy-path"] = "/usr/local/sbin/dockinit-proxy";
  return out;
}

const SCRIPTS = new Set<string>([HOST_PATHS.firewallScript, HOST_PATHS.vpcDnsScript, HOST_PATHS.bootScript, HOST_PATHS.proxyScript]);

/** The iptables-restore payloads and the nft ruleset as the firewall script carries them in its here-documents. */
function embeddedRules(script: string): { payloads: Map<string, string>; nft: string | undefined; nftPolicies: string | undefined } {
  const payloads = new Map<string, string>();
  const docs = quotedHeredocs(script);
  const re = /^payload_(\d)_(nat|filter)\(\) \{$/gm;
  const names = [...script.matchAll(re)].map((m) => `${m[1]}/${m[2]}`);
  let p = 0;
  for (const d of docs) if (d.delimiter === "DOCKINIT_RULES") payloads.set(names[p++] ?? `?${p}`, d.body);
  // nft_ruleset prints the table around its parts: every part for apply, all
  // but the nat chains (the one part behind `[ "${1:-}" = filter ] ||`) for apply-policies.
  const parts = docs.filter((d) => d.delimiter === "DOCKINIT_NFT").map((d) => d.body);
  if (parts.length === 0) return { payloads, nft: undefined, nftPolicies: undefined };
  const nat = /\[ "\$\{1:-\}" = filter \] \|\| cat <<'DOCKINIT_NFT'\n([^]*?)DOCKINIT_NFT\n/.exec(script)?.[1];
  const table = (bodies: string[]) => `table inet dockinit {\n${bodies.map((b) => `${b}\n`).join("")}}`;
  return { payloads, nft: table(parts), nftPolicies: table(parts.filter((b) => `${b}\n` !== nat)) };
}

describe("property: generated configs are rejected with coded diagnostics or render into bundles every validator accepts", () => {
  const scratch = scratchDir("dockinit-prop-");
  const cliBase = mkdtempSync(join(tmpdir(), "dockinit-prop-cli-"));
  const yamls: string[] = [];
  const findings: Finding[] = [];
  const stats: Stats = { total: 0, valid: 0, nearValid: 0, rendered: 0, rejected: 0, renderedValidKind: 0, codes: new Map(), cliRuns: 0, deterministic: 0, ms: {} };
  const cloudInit = new CloudInitBatch(scratch.dir);
  const rules = new RuleBatch();
  const scripts = new ShapeCache();
  const units = new ShapeCache();
  const fullBundles: { id: number; bundle: Bundle }[] = [];
  const bundleClasses = new Set<string>();
  const cliChecks: Promise<void>[] = [];

  for (const [rel, text] of Object.entries(GENERATED_FILES)) {
    mkdirSync(dirname(join(cliBase, rel)), { recursive: true });
    writeFileSync(join(cliBase, rel), text);
  }

  /** Runs the CLI on the config: a rejected file writes nothing, a valid one writes exactly the bundle. */
  async function checkCli(id: number, yaml: string, bundle: Bundle | undefined, diags: Diagnostic[]): Promise<void> {
    const dir = join(cliBase, `c${id}`);
    mkdirSync(dir);
    for (const rel of Object.keys(GENERATED_FILES)) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), GENERATED_FILES[rel]!);
    }
    writeFileSync(join(dir, "dockinit.yaml"), yaml);
    let stderr = "";
    const code = await runCli(["render", "-c", "dockinit.yaml", "-o", "out"], { stdout: () => undefined, stderr: (t) => (stderr += t), cwd: dir, env: {} });
    stats.cliRuns++;
    if (bundle) {
      if (code !== 0) findings.push({ id, problem: `CLI exit ${code} for a config the library renders: ${stderr.slice(0, 500)}` });
      else if (!readFileSync(join(dir, "out", "user-data")).equals(bundle.userData)) findings.push({ id, problem: "CLI wrote different user-data than the library renders" });
    } else {
      if (code !== 1) findings.push({ id, problem: `CLI exit ${code} for a rejected config` });
      if (existsSync(join(dir, "out"))) findings.push({ id, problem: "CLI wrote out/ for a rejected config" });
      for (const d of diags.filter((x) => x.severity === "error")) if (!stderr.includes(d.code)) findings.push({ id, problem: `CLI did not print ${d.code}` });
    }
    rmSync(dir, { recursive: true, force: true });
  }

  function checkDiagnostics(id: number, yaml: string, diags: Diagnostic[]): void {
    const lines = yaml.split(/\r\n|\r|\n/).length;
    for (const d of diags) {
      const entry = (catalogue as Record<string, { severity: string }>)[d.code];
      if (!entry) findings.push({ id, problem: `code ${d.code} is not in the catalogue` });
      else if (entry.severity !== d.severity) findings.push({ id, problem: `${d.code} has severity ${d.severity}, catalogue says ${entry.severity}` });
      if (!d.message || !d.hint) findings.push({ id, problem: `${d.code} without message or hint` });
      if (d.file !== "dockinit.yaml") findings.push({ id, problem: `${d.code} names file ${String(d.file)}` });
      if (!POSITIONLESS.has(d.code) && !(d.line > 0 && d.col > 0 && d.line <= lines + 1)) {
        findings.push({ id, problem: `${d.code} at ${d.line}:${d.col} (${d.message}): no position in a ${lines}-line file` });
      }
      const text = formatDiagnostic(d, yaml, { color: false });
      if (!text.includes(d.code)) findings.push({ id, problem: `formatted ${d.code} does not name its code` });
    }
  }

  function checkBundle(id: number, yaml: string, model: Model, bundle: Bundle): void {
    const problem = (p: string) => findings.push({ id, problem: p });
    const input = parseYaml(yaml, { version: "1.2" }) as Input;
    if (bundle.userData.length > 16_384) problem(`user-data is ${bundle.userData.length} bytes`);
    // The output tree: paths that can all exist at once on the instance and under out/files.
    const paths = bundle.files.map((f) => f.path);
    for (const p of paths) {
      if (!p.startsWith("/") || p.endsWith("/") || p === "/" || posix.normalize(p) !== p) problem(`file path ${JSON.stringify(p)} is not a plain absolute path`);
      for (const q of paths) if (q !== p && q.startsWith(`${p}/`)) problem(`${p} is written as a file but is a directory of ${q}`);
    }
    // dockinit's own files: root-owned, 0644/0755, marked as generated.
    for (const f of bundle.files.filter((x) => x.origin === "dockinit")) {
      const want = SCRIPTS.has(f.path) ? "0755" : "0644";
      if (f.owner !== "root:root" || f.permissions !== want) problem(`${f.path} is ${f.owner} ${f.permissions}, want root:root ${want}`);
      if (!f.path.endsWith(".json") && !/^(#![^\n]*\n)?# generated by dockinit -- do not edit\n/.test(f.content)) problem(`${f.path} lacks the generated-by header`);
    }
    // daemon.json: exactly the user's settings plus DNS.
    const daemon = bundle.files.find((f) => f.path === HOST_PATHS.daemonJson)!;
    try {
      if (JSON.stringify(JSON.parse(daemon.content)) !== JSON.stringify(JSON.parse(JSON.stringify(sortKeysDeep(expectedDaemonJson(input)))))) problem("daemon.json differs from the input's settings and DNS");
    } catch (e) {
      problem(`daemon.json: ${String(e)}`);
    }
    JSON.parse(JSON.stringify(bundle.manifest));
    // The cloud-config the input asks for: cloud-init must read exactly this back from the user-data (below).
    const expected = expectedCloudConfig(input, bundle);
    const partsIn = (input.user_data?.parts ?? []).map((p) => GENERATED_FILES[p.file]!.replace(/\n$/, ""));
    stats.rendered++;
    cloudInit.add({ id, userData: bundle.userData, expected, parts: partsIn, exact: stats.rendered <= 200 || stats.rendered % 25 === 0 });
    // Firewall: the here-documents end where dockinit meant them to, and carry the planned rules.
    const fw = bundle.files.find((f) => f.path === HOST_PATHS.firewallScript)!;
    const plan = planFirewall(model);
    const { payloads, nft, nftPolicies } = embeddedRules(fw.content);
    for (const docs of quotedHeredocs(fw.content)) if (docs.body.includes("\u0000UNTERMINATED")) problem(`here-document ${docs.delimiter} is not terminated`);
    // Rules loaded only while Docker NATs IPv6 are loaded here too: the kernel must take them.
    const unmark = (text: string) => text.split("%NAT6%").join("");
    for (const fam of plan.iptables) {
      for (const t of fam.tables) {
        const body = payloads.get(`${fam.family}/${t.table}`);
        // The plan's chains and rules, with the bundle's id in a rule that only counts, first.
        const idRule = `-A ${t.chains[0]} -m comment --comment dockinit-bundle-${bundle.bundleId}`;
        const want = [...t.chains.map((c) => `:${c} - [0:0]`), idRule, ...t.rules].join("\n");
        if (body !== want) problem(`IPv${fam.family} ${t.table} payload in the script differs from the plan`);
        // (The id rule loads and prints back as it is: shown on a sample, each id is another distinct line.)
        rules.addRules(id, fam.family, t.table, [...(stats.rendered <= 20 ? [idRule] : []), ...t.rules].map(unmark));
      }
    }
    if (model.firewall.backend === "nftables") {
      if (nft !== plan.nft.replace(/\n$/, "")) problem("nft ruleset in the script differs from the plan");
      if (nftPolicies !== plan.nftPolicies.replace(/\n$/, "")) problem("nft policies ruleset in the script differs from the plan");
      if (plan.nftPolicies.includes("%NAT6%")) problem("the policies ruleset depends on Docker's IPv6 NAT");
      rules.addNft(id, unmark(plan.nft));
      rules.addNft(id, plan.nftPolicies);
    }
    // Shapes of the text artifacts; a new class of units or boot script gets a full validateBundle().
    const classKey: string[] = [];
    for (const f of bundle.files.filter((x) => x.origin === "dockinit")) {
      if (SCRIPTS.has(f.path)) {
        const key = scripts.add(f.path, f.content, model.name, id);
        if (f.path === HOST_PATHS.bootScript) classKey.push(key);
      } else if (f.path.endsWith(".service")) {
        classKey.push(units.add(f.path, f.content, model.name, id));
      }
    }
    classKey.push(bundle.manifest.userData.format, bundle.manifest.userData.encoding, String(bundle.manifest.parts.length > 0));
    const cls = classKey.sort().join("|");
    if (!bundleClasses.has(cls)) {
      bundleClasses.add(cls);
      if (fullBundles.length < MAX_FULL_BUNDLES) fullBundles.push({ id, bundle });
    }
  }

  function checkOne(id: number, gen: GeneratedConfig): void {
    stats.total++;
    if (gen.kind === "valid") stats.valid++;
    else stats.nearValid++;
    let loaded: ReturnType<typeof loadConfigString>;
    let rendered: ReturnType<typeof renderBundle>;
    try {
      loaded = loadConfigString(gen.yaml, { file: "dockinit.yaml", files: reader });
      rendered = renderBundle(loaded);
    } catch (e) {
      findings.push({ id, problem: `threw: ${e instanceof Error ? e.stack : String(e)}` });
      return;
    }
    checkDiagnostics(id, gen.yaml, rendered.diagnostics);
    if (!rendered.bundle) {
      stats.rejected++;
      if (!hasErrors(rendered.diagnostics)) findings.push({ id, problem: "no bundle and no error" });
      for (const d of rendered.diagnostics) if (d.severity === "error") stats.codes.set(d.code, (stats.codes.get(d.code) ?? 0) + 1);
      if (id % 50 === 0) cliChecks.push(checkCli(id, gen.yaml, undefined, rendered.diagnostics));
      return;
    }
    if (hasErrors(rendered.diagnostics)) findings.push({ id, problem: "a bundle despite errors" });
    if (gen.kind === "valid") stats.renderedValidKind++;
    try {
      checkBundle(id, gen.yaml, loaded.model!, rendered.bundle);
    } catch (e) {
      findings.push({ id, problem: `checking the bundle threw: ${e instanceof Error ? e.stack : String(e)}` });
    }
    if (id % 10 === 0) {
      stats.deterministic++;
      const again = renderBundle(loadConfigString(gen.yaml, { file: "dockinit.yaml", files: reader })).bundle;
      if (!again || !again.userData.equals(rendered.bundle.userData)) findings.push({ id, problem: "rendering twice gave different user-data" });
    }
    if (id % 50 === 0) cliChecks.push(checkCli(id, gen.yaml, rendered.bundle, rendered.diagnostics));
  }

  let ruleFindings: RuleFinding[] = [];
  let cloudInitCounts = { checked: 0, exact: 0 };
  let scriptFindings: ScriptFinding[] = [];

  beforeAll(async () => {
    const t0 = Date.now();
    REGRESSIONS.forEach((r) => {
      yamls.push(r.yaml);
      const before = stats.rendered;
      checkOne(yamls.length - 1, { kind: "valid", yaml: r.yaml });
      const got = stats.rendered > before ? "rendered" : "rejected";
      if (got !== r.outcome) findings.push({ id: yamls.length - 1, problem: `regression case ${got}, expected ${r.outcome}: ${r.found}` });
    });
    for (let chunk = 0; chunk * CHUNK < RUNS; chunk++) {
      const n = Math.min(CHUNK, RUNS - chunk * CHUNK);
      for (const gen of fc.sample(configText, { seed: SEED + chunk, numRuns: n })) {
        yamls.push(gen.yaml);
        checkOne(yamls.length - 1, gen);
      }
      cloudInit.flush(); // python reads this chunk back while the next one renders
    }
    await Promise.all(cliChecks);
    stats.ms.generateAndRender = Date.now() - t0;
  }, 900_000);

  afterAll(() => {
    const codes = [...stats.codes].sort().map(([c, n]) => `${c}:${n}`).join(" ");
    console.log(
      [
        `property: ${stats.total} configs (seed ${SEED}; ${stats.valid} generated valid, ${stats.nearValid} near-valid; ${REGRESSIONS.length} regression cases)`,
        `  rendered ${stats.rendered} (${stats.renderedValidKind} of the valid kind), rejected ${stats.rejected}; error codes: ${codes}`,
        `  CLI runs ${stats.cliRuns}, determinism re-renders ${stats.deterministic}`,
        `  script shapes ${scripts.shapes.size}, unit shapes ${units.shapes.size}, whole bundles validated ${fullBundles.length}, distinct rule lines ${rules.distinctRules}, nft rulesets ${rules.distinctNft}`,
        `  timings (ms): ${JSON.stringify(stats.ms)}`,
      ].join("\n"),
    );
    scratch.cleanup();
    rmSync(cliBase, { recursive: true, force: true });
  });

  const show = (list: { id: number; problem: string }[]) =>
    list
      .slice(0, 15)
      .map((f) => `config #${f.id}: ${f.problem}\n---\n${yamls[f.id]?.slice(0, 1500)}\n---`)
      .join("\n");

  it(`${RUNS} configs: no throw, coded diagnostics with positions, bundles as the input says, the CLI writes nothing on error`, () => {
    expect(stats.total).toBe(RUNS + REGRESSIONS.length);
    expect(findings, show(findings)).toEqual([]);
    // The generator must keep exercising both outcomes.
    expect(stats.rendered).toBeGreaterThan(stats.total * 0.35);
    expect(stats.rejected).toBeGreaterThan(stats.total * 0.2);
  });

  it.skipIf(skipUnless(VALIDATOR_NEEDS.cloudInit))("cloud-init reads every user-data back exactly as dockinit emitted it", async () => {
    const t0 = Date.now();
    const r = await cloudInit.results();
    stats.ms.cloudInit = Date.now() - t0;
    console.log(`cloud-init read back ${r.checked} distinct user-data blobs (${r.exact} with cloud-init's own loader and strict schema)`);
    cloudInitCounts = { checked: r.checked, exact: r.exact };
    expect(r.checked).toBeGreaterThan(0);
    const explain = (f: CloudInitFailure) => {
      const rendered = renderBundle(loadConfigString(yamls[f.id]!, { file: "dockinit.yaml", files: reader }));
      const expected = rendered.bundle ? expectedCloudConfig(parseYaml(yamls[f.id]!, { version: "1.2" }) as Input, rendered.bundle) : undefined;
      return `${f.errors.join("; ")}${f.got === null ? "" : `\n  first difference: ${firstDifference(expected, f.got)}`}`;
    };
    expect(r.failures, show(r.failures.map((f) => ({ id: f.id, problem: explain(f) })))).toEqual([]);
  }, 600_000);

  it.skipIf(skipUnless(["root", "ip", "nsenter", "ipset", "iptables-restore", "iptables-legacy-restore", "ip6tables-restore", "ip6tables-legacy-restore", "nft"]))(
    "every distinct rule line loads (nf_tables and legacy) and iptables-save prints it back unchanged; every nft ruleset passes nft -c",
    () => {
      const t0 = Date.now();
      ruleFindings = rules.run();
      stats.ms.rules = Date.now() - t0;
      expect(rules.distinctRules).toBeGreaterThan(0);
      expect(ruleFindings, show(ruleFindings.map((f) => ({ id: f.firstId, problem: `${f.where}: ${f.rule}\n  ${f.problem}` })))).toEqual([]);
    },
    600_000,
  );

  it.skipIf(skipUnless([...VALIDATOR_NEEDS.shellcheck, ...VALIDATOR_NEEDS.bash]))("every distinct script shape passes shellcheck and bash -n", async () => {
    const t0 = Date.now();
    scriptFindings = await checkScripts([...scripts.shapes.values()], join(scratch.dir, "shapes"));
    stats.ms.scripts = Date.now() - t0;
    expect(scriptFindings, show(scriptFindings.map((f) => ({ id: f.firstId, problem: `${f.tool} on ${f.kind}: ${f.output}` })))).toEqual([]);
  }, 600_000);

  it("docs/testing.md (How it is tested) states exactly this run's figures (fixed seed: they change only when the code does)", () => {
    const n = (x: number) => String(x).replace(/\B(?=(\d{3})+$)/g, ",");
    const codes = stats.codes.size;
    const sentence = [
      `- **Property tests** (fast-check, fixed seeds): ${n(RUNS)} generated configs`,
      `  and ${REGRESSIONS.length} regression cases, each either rejected with a coded`,
      `  diagnostic (${n(stats.rejected)}, ${codes} codes) or rendered (${n(stats.rendered)}) into output`,
      `  that passes the validators: ${n(cloudInitCounts.checked)} distinct user-data blobs read`,
      `  back by cloud-init's YAML rules (${n(cloudInitCounts.exact)} through its own loader and`,
      `  strict schema), ${n(rules.distinctRules)} distinct rule lines loaded into the kernel`,
      `  (nf_tables and legacy) and compared with \`iptables-save\`, ${n(rules.distinctNft)}`,
      `  nftables rulesets through \`nft -c\`, ${n(scripts.shapes.size)} distinct script shapes`,
      "  through shellcheck and `bash -n`.",
    ].join("\n");
    expect(cloudInitCounts.checked, "the cloud-init check ran first").toBeGreaterThan(0);
    expect(readFileSync(join(REPO, "docs", "testing.md"), "utf8"), `docs/testing.md should say:\n${sentence}`).toContain(sentence);
  });

  it.skipIf(skipUnless(VALIDATOR_NEEDS.all))("one bundle per class of units and boot script passes validateBundle (cloud-init, shellcheck, systemd-analyze, JSON, manifest)", () => {
    const t0 = Date.now();
    const failures: Finding[] = [];
    for (const { id, bundle } of fullBundles) {
      const out = join(scratch.dir, `bundle-${id}`);
      writeBundle(bundle, out);
      const checks = validateBundle(out);
      if (checks.some((c) => !c.ok)) failures.push({ id, problem: describeFailures(checks).slice(0, 3000) });
    }
    stats.ms.fullBundles = Date.now() - t0;
    expect(fullBundles.length).toBeGreaterThan(0);
    expect(failures, show(failures)).toEqual([]);
  }, 600_000);
});

/** Where two JSON-like values first differ, for failure messages. */
function firstDifference(want: unknown, got: unknown, path = ""): string {
  if (typeof want !== typeof got || Array.isArray(want) !== Array.isArray(got) || (want === null) !== (got === null)) {
    return `${path || "(root)"}: emitted ${JSON.stringify(want)?.slice(0, 300)}, read back ${JSON.stringify(got)?.slice(0, 300)}`;
  }
  if (want !== null && typeof want === "object") {
    const keys = new Set([...Object.keys(want), ...Object.keys(got as object)]);
    for (const k of keys) {
      const a = (want as Record<string, unknown>)[k];
      const b = (got as Record<string, unknown>)[k];
      if (JSON.stringify(a) !== JSON.stringify(b)) return firstDifference(a, b, `${path}/${k}`);
    }
    return "(none)";
  }
  return want === got ? "(none)" : `${path}: emitted ${JSON.stringify(want)?.slice(0, 300)}, read back ${JSON.stringify(got)?.slice(0, 300)}`;
}

