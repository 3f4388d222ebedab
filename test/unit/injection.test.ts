// The injection corpus (test/support/injection-corpus.ts) in every string
// field of dockinit.yaml: each value is rejected with a coded diagnostic, or
// it is provably inert. Inert means here: dockinit's scripts and units are
// byte for byte those of the same config with a harmless value in that field
// (so the value reaches no shell code of dockinit's), and where the value is
// data by definition (daemon settings, file contents, runcmd: the user's own)
// it is carried verbatim and cloud-init's own YAML loader reads it back
// exactly. test/system/injection.test.ts runs the rendered scripts with the
// same corpus and a canary file.
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogue, hasErrors, loadConfig, loadConfigString, renderBundle, writeBundle, type Bundle } from "../../src/index.js";
import { runCli } from "../../src/cli/main.js";
import { shellQuote } from "../../src/render/templates.js";
import { CloudInitBatch } from "../support/bulk-checks.js";
import { expectedCloudConfig, type Input } from "../support/expected-cloud-config.js";
import { parse as parseYaml } from "yaml";
import { YAML_TRAPS } from "../support/config-arbitraries.js";
import { configWith, CORPUS_FILES, STRING_FIELDS, STRING_PAYLOADS, YAML_PAYLOADS, yamlString } from "../support/injection-corpus.js";
import { skipUnless } from "../support/system.js";
import { describeFailures, validateBundle, VALIDATOR_NEEDS } from "../support/validators.js";

const reader = { read: (p: string) => CORPUS_FILES[p] };

/** A value each field accepts, to compare a payload's render with. */
const BENIGN: Record<string, string> = {
  name: "web",
  "docker.daemon.dns[]": "amazon",
  "docker.daemon.dns_search[]": "internal.example",
  "ephemeral_ports.match": "32768-61000",
  "ephemeral_ports.to": "49152-61000",
  "ephemeral_ports.protocols[]": "tcp",
  "ephemeral_ports.sources[]": "any",
  "firewall.backend": "iptables",
  "firewall.external_interface": "benign0",
  "firewall.published.default": "allow",
  "firewall.published.rules[].protocol": "tcp",
  "firewall.published.rules[].allow[]": "any",
  "firewall.containers.block[]": "10.0.0.0/8",
  "firewall.containers.egress_allow[]": "10.0.0.0/8",
  "port_forwards[].to": "198.51.100.10:80",
  "port_forwards[].protocol": "tcp",
  "user_data.format": "auto",
  "user_data.gzip": "auto",
  "user_data.parts[].file": "parts/boot.sh",
  "user_data.parts[].type": "x-shellscript",
  "user_data.write_files[].path": "/etc/motd",
  "user_data.write_files[].permissions": "0644",
  "user_data.write_files[].owner": "root",
  "user_data.packages[]": "jq",
  "launch_template.name": "web",
  "launch_template.region": "eu-west-1",
  "launch_template.source_version": "$Latest",
};

/**
 * Fields whose value is also a word of the firewall's rules (an interface
 * name: `-o NAME`, `oifname "NAME"`), inside the script's quoted
 * here-documents, where no shell reads it: there it may stand as itself, and
 * anywhere else only as one quoted word (the sh helper's quoting of a name
 * the schema accepted is the name in single quotes).
 */
const RULE_WORDS = new Set(["firewall.external_interface"]);

interface Outcome {
  field: string;
  payload: string;
  yaml: string;
  bundle?: Bundle;
  problems: string[];
}

// The bundle id (a hash of every file, so it differs with any value) is set aside.
const ownText = (b: Bundle) =>
  b.files
    .filter((f) => f.origin === "dockinit" && !f.path.endsWith(".json"))
    .map((f) => `${f.path}\n${f.content.replaceAll(b.bundleId, "<bundle id>")}`)
    .join("\n");

function check(field: (typeof STRING_FIELDS)[number], payload: string, valueYaml: string, isString = true): Outcome {
  const yaml = configWith(field.yaml, valueYaml);
  const out: Outcome = { field: field.field, payload, yaml, problems: [] };
  let rendered: ReturnType<typeof renderBundle>;
  let loaded: ReturnType<typeof loadConfigString>;
  try {
    loaded = loadConfigString(yaml, { files: reader });
    rendered = renderBundle(loaded);
  } catch (e) {
    out.problems.push(`threw: ${String(e)}`);
    return out;
  }
  for (const d of rendered.diagnostics) {
    if (!(d.code in catalogue)) out.problems.push(`unknown code ${d.code}`);
    if (d.code !== "DI047" && d.code !== "DI055" && d.code !== "DI004" && !(d.line > 0 && d.col > 0)) out.problems.push(`${d.code} without a position`);
  }
  if (!rendered.bundle) {
    if (!hasErrors(rendered.diagnostics)) out.problems.push("no bundle and no error");
    return out;
  }
  out.bundle = rendered.bundle;
  // Inert for dockinit's own shell and units: identical to a harmless value's render.
  const benign = BENIGN[field.field];
  const reference = renderBundle(loadConfigString(configWith(field.yaml, yamlString(benign ?? "benign")), { files: reader })).bundle;
  if (!reference) out.problems.push("the harmless reference value did not render");
  // A value may reach dockinit's shell only as one word quoted by the sh helper.
  // The harmless value is distinctive, so the reference is rewritten (not the
  // render: a payload's quoted form, '' for the empty string, can occur in the
  // scripts by itself).
  else if ((payload.includes("\0") ? ownText(reference) : RULE_WORDS.has(field.field) ? ownText(reference).split(benign!).join(payload) : ownText(reference).split(shellQuote(benign ?? "benign")).join(shellQuote(payload))) !== ownText(rendered.bundle)) {
    out.problems.push("the value changed dockinit's own scripts or units other than as one quoted word");
  }
  if (!isString) return out;
  // Data fields carry the value verbatim.
  const model = loaded.model!;
  if (field.data === "daemon.json") {
    const daemon = rendered.bundle.files.find((f) => f.path === "/etc/docker/daemon.json")!.content;
    if (!JSON.stringify(JSON.parse(daemon)).includes(JSON.stringify(payload).slice(1, -1))) out.problems.push("daemon.json does not carry the value verbatim");
  }
  if (field.data === "write_files content" && model.userData.writeFiles[0]?.content !== payload) out.problems.push("the file content is not carried verbatim");
  if (field.data === "runcmd" && JSON.stringify(model.userData.runcmd).indexOf(JSON.stringify(payload)) < 0) out.problems.push("runcmd is not carried verbatim");
  return out;
}

describe("injection corpus in every string field: rejected, or inert and verbatim", () => {
  const scratch = mkdtempSync(join(tmpdir(), "dockinit-inject-"));
  const cloudInit = new CloudInitBatch(scratch);
  const outcomes: Outcome[] = [];
  const yamlOutcomes: Outcome[] = [];

  beforeAll(() => {
    for (const field of STRING_FIELDS) {
      for (const p of STRING_PAYLOADS) outcomes.push(check(field, p.value, yamlString(p.value)));
      for (const p of YAML_PAYLOADS) yamlOutcomes.push(check(field, p.yaml, p.yaml, false));
    }
    outcomes.forEach((o, id) => {
      if (o.bundle) {
        const loaded = loadConfigString(o.yaml, { files: reader });
        // The oracle reads the config's YAML itself, not dockinit's model or emitter.
        const expected = expectedCloudConfig(parseYaml(o.yaml, { version: "1.2" }) as Input, o.bundle, (path) => CORPUS_FILES[path]);
        cloudInit.add({ id, userData: o.bundle.userData, expected, parts: loaded.model!.userData.parts.map((p) => p.content.replace(/\n$/, "")), exact: true });
      }
    });
    cloudInit.flush();
  }, 300_000);

  afterAll(() => {
    const accepted = outcomes.filter((o) => o.bundle);
    const byField = STRING_FIELDS.map((f) => `${f.field} ${accepted.filter((o) => o.field === f.field).length}`).filter((l) => !l.endsWith(" 0"));
    console.log(
      `injection: ${STRING_PAYLOADS.length} string payloads + ${YAML_PAYLOADS.length} YAML payloads × ${STRING_FIELDS.length} fields = ${outcomes.length + yamlOutcomes.length} configs; ` +
        `${accepted.length} accepted (as data), ${outcomes.length + yamlOutcomes.length - accepted.length - yamlOutcomes.filter((o) => o.bundle).length} rejected\n  accepted per field: ${byField.join(", ")}`,
    );
    rmSync(scratch, { recursive: true, force: true });
  });

  const report = (list: Outcome[]) =>
    list
      .filter((o) => o.problems.length > 0)
      .slice(0, 10)
      .map((o) => `${o.field} ← ${JSON.stringify(o.payload).slice(0, 80)}: ${o.problems.join("; ")}`)
      .join("\n");

  it("every string payload in every field is rejected with a coded, positioned diagnostic or is inert for dockinit's scripts and units", () => {
    expect(outcomes.length).toBe(STRING_FIELDS.length * STRING_PAYLOADS.length);
    expect(report(outcomes)).toBe("");
  });

  it("only data fields (daemon settings, file contents, runcmd, $schema) accept shell payloads", () => {
    const shellish = STRING_PAYLOADS.filter((p) => p.value.includes("CANARY")).map((p) => p.value);
    const fields = new Set(outcomes.filter((o) => o.bundle && shellish.includes(o.payload)).map((o) => o.field));
    expect([...fields].sort()).toEqual(
      ["$schema", "docker.daemon.settings key", "docker.daemon.settings nested", "docker.daemon.settings value", "user_data.runcmd[]", "user_data.runcmd[][]", "user_data.write_files[].content"].sort(),
    );
  });

  it("anchors, aliases, alias bombs, merge keys, duplicate keys and tags are refused in every field (DI001/DI002/DI003)", () => {
    expect(report(yamlOutcomes)).toBe("");
    const structural = yamlOutcomes.filter((o) => !o.payload.startsWith("{\"k\"") && !o.payload.startsWith("'x"));
    for (const o of structural) {
      const codes = loadConfigString(o.yaml, { files: reader }).diagnostics.map((d) => d.code);
      expect(o.bundle, `${o.field} ← ${o.payload}`).toBeUndefined();
      expect(codes.some((c) => ["DI001", "DI002", "DI003"].includes(c)), `${o.field} ← ${o.payload}: ${codes.join(",")}`).toBe(true);
    }
  });

  it("a rejected payload writes nothing: the CLI exits 1 and leaves no out/", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-inject-cli-"));
    try {
      for (const [rel, text] of Object.entries(CORPUS_FILES)) {
        mkdirSync(dirname(join(dir, rel)), { recursive: true });
        writeFileSync(join(dir, rel), text);
      }
      const rejected = outcomes.filter((o) => !o.bundle && o.payload.includes("CANARY")).slice(0, 40);
      for (const o of rejected) {
        writeFileSync(join(dir, "dockinit.yaml"), o.yaml);
        const code = await runCli(["render", "-o", "out"], { stdout: () => undefined, stderr: () => undefined, cwd: dir, env: {} });
        expect(code, o.yaml).toBe(1);
        expect(existsSync(join(dir, "out")), o.yaml).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(skipUnless(VALIDATOR_NEEDS.cloudInit))("cloud-init's own loader reads every accepted payload back exactly as the config gave it", async () => {
    const r = await cloudInit.results();
    expect(r.checked).toBeGreaterThan(100);
    expect(r.failures.map((f) => `${outcomes[f.id]!.field} ← ${JSON.stringify(outcomes[f.id]!.payload).slice(0, 80)}: ${f.errors.join("; ")}`)).toEqual([]);
  }, 300_000);

  it.skipIf(skipUnless(VALIDATOR_NEEDS.all))("bundles holding the whole corpus in each data field pass every validator", () => {
    const values = STRING_PAYLOADS.filter((p) => p.value.length < 1000).map((p) => p.value);
    const configs = {
      settings: `version: 1\ndocker: { daemon: { settings: { ${values.map((v, i) => `${yamlString(`${i}${v}`)}: ${yamlString(v)}`).join(", ")} } } }\n`,
      files: `version: 1\nuser_data: { format: mime, parts: [{ file: parts/boot.sh, type: x-shellscript }], write_files: [${values.map((v, i) => `{ path: /etc/dockinit-corpus/${i}, content: ${yamlString(v)} }`).join(", ")}] }\n`,
      runcmd: `version: 1\nuser_data: { runcmd: [${values.map(yamlString).join(", ")}, [${values.map(yamlString).join(", ")}]] }\n`,
    };
    for (const [what, yaml] of Object.entries(configs)) {
      const r = renderBundle(loadConfigString(yaml, { files: reader }));
      expect(r.bundle, `${what}: ${JSON.stringify(r.diagnostics)}`).toBeDefined();
      const out = join(scratch, `all-${what}`);
      writeBundle(r.bundle!, out);
      const checks = validateBundle(out);
      expect(describeFailures(checks), what).toBe("");
    }
  }, 120_000);
});

describe("YAML 1.1 traps in the output: cloud-init reads each back as the user meant", () => {
  const scratch = mkdtempSync(join(tmpdir(), "dockinit-traps-"));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const traps = [...new Set([...YAML_TRAPS, "0x1F", "0o17", "012", "08", "-08", "1_2", "1e-3", "NaN", "Off", "oN", "yEs"])];
  const pkg = /^[A-Za-z0-9][A-Za-z0-9+.:=~_-]{0,127}$/;
  const owner = /^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/;

  it.skipIf(skipUnless(VALIDATOR_NEEDS.cloudInit))("as runcmd entries and arguments, file contents, paths, owners, modes and package names", async () => {
    const q = yamlString;
    const files = traps.map((t, i) => `{ path: ${q(`/etc/traps/${i}/${t.replace(/[/\0]/g, "_") || "_"}`)}, content: ${q(t)}, permissions: ${q(["0644", "644", "0755", "0600", "4755"][i % 5]!)}${owner.test(t) ? `, owner: ${q(t)}` : ""} }`);
    const yaml = [
      "version: 1",
      "user_data:",
      `  runcmd: [${traps.map(q).join(", ")}, [${traps.map(q).join(", ")}]]`,
      `  packages: [${traps.filter((t) => pkg.test(t)).map(q).join(", ")}]`,
      `  write_files: [${files.join(", ")}]`,
      "",
    ].join("\n");
    const loaded = loadConfigString(yaml, { files: reader });
    const r = renderBundle(loaded);
    expect(r.bundle, JSON.stringify(r.diagnostics)).toBeDefined();
    const model = loaded.model!;
    expect(model.userData.runcmd).toEqual([...traps, traps]);
    expect(model.userData.writeFiles.map((f) => f.content)).toEqual(traps);
    const batch = new CloudInitBatch(scratch);
    const expected = expectedCloudConfig(parseYaml(yaml, { version: "1.2" }) as Input, r.bundle!, () => undefined);
    batch.add({ id: 0, userData: r.bundle!.userData, expected, parts: [], exact: true });
    const res = await batch.results();
    expect(res.checked).toBe(1);
    expect(res.failures).toEqual([]);
    // And the document itself, through cloudinit_check.py (UserDataProcessor, strict schema).
    const out = join(scratch, "out");
    writeBundle(r.bundle!, out);
    expect(describeFailures(validateBundle(out).filter((c) => c.file === "user-data"))).toBe("");
  }, 120_000);
});

describe("limits: each with a clear message naming the limit", () => {
  const list = (n: number, item: (i: number) => string) => `[${Array.from({ length: n }, (_, i) => item(i)).join(", ")}]`;
  const cases: { name: string; yaml: string; code: string; says: RegExp }[] = [
    { name: "config file over 256 KiB", yaml: `version: 1\n#${"x".repeat(257 * 1024)}\n`, code: "DI004", says: /262144/ },
    { name: "4 DNS servers", yaml: "version: 1\ndocker: { daemon: { dns: [vpc, amazon, 1.1.1.1, 8.8.8.8] } }\n", code: "DI022", says: /at most 3/ },
    { name: "7 search domains", yaml: `version: 1\ndocker: { daemon: { dns_search: ${list(7, (i) => `d${i}.example`)} } }\n`, code: "DI015", says: /more than 6/ },
    { name: "10,001 ephemeral sources", yaml: `version: 1\nephemeral_ports: { sources: ${list(10_001, (i) => `10.${i >> 8 & 255}.${i & 255}.0/24`)} }\n`, code: "DI015", says: /more than 10000/ },
    { name: "2,001 published rules", yaml: `version: 1\nfirewall: { published: { rules: ${list(2_001, (i) => `{port: ${i + 1}, allow: [any]}`)} } }\n`, code: "DI015", says: /more than 2000/ },
    { name: "1,001 allowed networks on a rule", yaml: `version: 1\nfirewall: { published: { rules: [{ port: 80, allow: ${list(1_001, (i) => `10.${i >> 8}.${i & 255}.0/24`)} }] } }\n`, code: "DI015", says: /more than 1000/ },
    { name: "1,001 blocked networks", yaml: `version: 1\nfirewall: { containers: { block: ${list(1_001, (i) => `10.${i >> 8}.${i & 255}.0/24`)} } }\n`, code: "DI015", says: /more than 1000/ },
    { name: "10,001 egress networks", yaml: `version: 1\nfirewall: { containers: { egress_allow: ${list(10_001, (i) => `10.${i >> 8 & 255}.${i & 255}.0/24`)} } }\n`, code: "DI015", says: /more than 10000/ },
    { name: "1,001 port forwards", yaml: `version: 1\nport_forwards: ${list(1_001, (i) => `{listen: ${i + 1}, to: '198.51.100.10:80'}`)}\n`, code: "DI015", says: /more than 1000/ },
    { name: "51 parts", yaml: `version: 1\nuser_data: { parts: ${list(51, () => "{file: parts/boot.sh, type: x-shellscript}")} }\n`, code: "DI015", says: /more than 50/ },
    { name: "201 write_files", yaml: `version: 1\nuser_data: { write_files: ${list(201, (i) => `{path: /f${i}, content: x}`)} }\n`, code: "DI015", says: /more than 200/ },
    { name: "501 packages", yaml: `version: 1\nuser_data: { packages: ${list(501, (i) => `p${i}`)} }\n`, code: "DI015", says: /more than 500/ },
    { name: "501 runcmd entries", yaml: `version: 1\nuser_data: { runcmd: ${list(501, () => "'true'")} }\n`, code: "DI015", says: /more than 500/ },
    { name: "a value nested 40 levels deep", yaml: `version: 1\ndocker: { daemon: { settings: { a: ${"[".repeat(40)}${"]".repeat(40)} } } }\n`, code: "DI016", says: /more than 32 levels/ },
    { name: "a value nested 20,000 levels deep", yaml: `version: 1\ndocker: { daemon: { settings: { a: ${"[".repeat(20_000)}${"]".repeat(20_000)} } } }\n`, code: "DI001", says: /nests deeper than the parser can follow \(dockinit.yaml allows 32 levels\)/ },
    { name: "a 64-character name", yaml: `version: 1\nname: ${"a".repeat(64)}\n`, code: "DI017", says: /not a valid name/ },
    { name: "a 129-character launch template name", yaml: `version: 1\nlaunch_template: { name: ${"a".repeat(129)} }\n`, code: "DI016", says: /maximum 128/ },
    { name: "user-data over 16 KiB", yaml: `version: 1\nuser_data: { gzip: never, write_files: [{ path: /big, content: "${"x".repeat(16384)}" }] }\n`, code: "DI047", says: /16384/ },
    { name: "a 4097-byte path", yaml: `version: 1\nuser_data: { write_files: [{ path: /${"a/".repeat(2048)}b, content: x }] }\n`, code: "DI046", says: /4096-byte PATH_MAX/ },
    { name: "a 256-byte file name", yaml: `version: 1\nuser_data: { write_files: [{ path: /${"a".repeat(256)}, content: x }] }\n`, code: "DI046", says: /255-byte NAME_MAX/ },
  ];

  it.each(cases)("$name → $code", ({ yaml, code, says }) => {
    const t0 = Date.now();
    const r = renderBundle(loadConfigString(yaml, { files: reader }));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.bundle).toBeUndefined();
    const d = r.diagnostics.find((x) => x.code === code);
    expect(d, JSON.stringify(r.diagnostics.map((x) => [x.code, x.message]))).toBeDefined();
    expect(d!.message).toMatch(says);
    expect(d!.hint.length).toBeGreaterThan(10);
    if (code !== "DI004" && code !== "DI047") expect(d!.line).toBeGreaterThan(0);
  });

  it("a referenced file over 256 KiB is reported as too large, not as missing (DI054)", () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-limit-"));
    try {
      writeFileSync(join(dir, "big.txt"), "x".repeat(300 * 1024));
      writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nuser_data: { write_files: [{ path: /big, source: big.txt }] }\n");
      const r = loadConfig(join(dir, "dockinit.yaml"));
      expect(r.diagnostics.map((d) => [d.code, d.line, d.message])).toEqual([["DI054", 2, "big.txt is 307200 bytes; the limit is 262144"]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
