// `check`/`render --cloud-init TARGET` (and user_data.cloud_init): the
// cloud-config dockinit renders, and the user's own cloud-config parts,
// checked against the schema of the cloud-init the instances run, and
// against the table of the version each top-level key first appeared in
// (cloud-init-schemas/keys.json, derived from the shipped schemas).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, loadConfigString, renderBundle } from "../../src/api.js";
import { bundleDocuments, checkCloudInitTarget, readKeyTable } from "../../src/bundle/cloud-init/check.js";
import { OS_TARGETS, resolveTarget } from "../../src/bundle/cloud-init/target.js";
import { runCli } from "../../src/cli/main.js";
import { fixtureCases, FIXTURES, REPO, SHARED_EXAMPLES } from "../support/fixtures.js";
import { nonEmpty, sharedExamplesPresent } from "../support/system.js";

interface KeyScript {
  readShippedSchemas(): { tag: string; version: string; file: string; schema: Record<string, unknown> }[];
  deriveKeyTable(shipped: unknown): unknown;
  keyTableText(table: unknown): string;
  SCHEMA_DIR: string;
}
const keyScript = (await import("../../scripts/cloud-init-keys.mjs" as string)) as KeyScript;

const SCHEMAS = join(REPO, "cloud-init-schemas");
const table = readKeyTable(SCHEMAS);
const SHIPPED = table.schemas.map((s) => s.version);

// ── The shipped schemas and the key table derived from them ──────────────

describe("the shipped schemas", () => {
  // cloud-init's own files, unchanged: the NOTICE says so (and names the tags and commits).
  it.each([
    ["22.2.2.json", "c233d83873b9b2d6"],
    ["22.4.2.json", "b0c5c64d33e23c61"],
    ["25.1.json", "3f9687f852dc01cc"],
    ["26.2.json", "a2923d8886201b54"],
  ])("%s is upstream's schema-cloud-config-v1.json of its tag, byte for byte (sha256 %s…)", (file, sha) => {
    expect(createHash("sha256").update(readFileSync(join(SCHEMAS, file))).digest("hex").slice(0, 16)).toBe(sha);
    const notice = readFileSync(join(SCHEMAS, "NOTICE"), "utf8");
    expect(notice).toContain(file);
    expect(notice).toMatch(/Apache License, Version\s+2\.0/);
  });

  it("ships the Apache-2.0 text the NOTICE names, and lists every schema in keys.json", () => {
    expect(readFileSync(join(SCHEMAS, "LICENSE-Apache2.0"), "utf8")).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    const files = readdirSync(SCHEMAS).filter((f) => /^\d.*\.json$/.test(f));
    expect(table.schemas.map((s) => s.file).sort()).toEqual(files.sort());
    expect(SHIPPED).toEqual(["22.2", "22.4", "25.1", "26.2"]);
  });

  it("keys.json is exactly what scripts/cloud-init-keys.mjs derives from them (node scripts/cloud-init-keys.mjs --write)", () => {
    const derived = keyScript.keyTableText(keyScript.deriveKeyTable(keyScript.readShippedSchemas()));
    expect(readFileSync(join(SCHEMAS, "keys.json"), "utf8")).toBe(derived);
  });

  it("agrees with a second, plainer recomputation: each schema's keys are its allOf definitions' properties", () => {
    // Independent of the script's walk: read the files again, list keys per version, take first and last.
    const perVersion = keyScript.readShippedSchemas().map(({ version, schema }) => {
      const defs = (schema.$defs ?? {}) as Record<string, { properties?: Record<string, unknown> }>;
      const allOf = (schema.allOf ?? []) as { $ref: string }[];
      const keys = new Set([...Object.keys((schema.properties ?? {}) as object), ...allOf.flatMap((r) => Object.keys(defs[r.$ref.replace("#/$defs/", "")]?.properties ?? {}))]);
      return { version, keys };
    });
    const all = new Set(perVersion.flatMap((v) => [...v.keys]));
    expect(Object.keys(table.keys).sort()).toEqual([...all].sort());
    for (const key of all) {
      const having = perVersion.filter((v) => v.keys.has(key)).map((v) => v.version);
      expect(table.keys[key]!.first, key).toBe(having[0]);
      expect(table.keys[key]!.last, key).toBe(having[having.length - 1] === "26.2" ? undefined : having[having.length - 1]);
    }
  });

  // What cloud-init's history says (checked against every upstream tag from
  // 22.2 to 26.2): module keys came with their module; core keys were read
  // by cloud-init long before its schema described them.
  it.each([
    ["runcmd", "22.2", undefined, false],
    ["write_files", "22.2", undefined, false],
    ["bootcmd", "22.2", undefined, false],
    ["packages", "22.2", undefined, false],
    ["wireguard", "22.4", undefined, false], // new in 22.3, which dockinit ships no schema of
    ["ansible", "22.4", undefined, false],
    ["ubuntu_pro", "25.1", undefined, false], // new in 24.1
    ["rpi", "26.2", undefined, false], // new in 25.2
    ["debug", "22.2", "22.2", false], // cc_debug removed in 22.3
    ["merge_how", "25.1", undefined, true], // read by 22.2.2's cloudinit/mergers, described from 23.4
    ["reporting", "22.4", undefined, true],
    ["system_info", "25.1", undefined, true],
  ] as const)("%s: first %s, last %s, core %s", (key, first, last, core) => {
    const h = table.keys[key]!;
    expect(h.first).toBe(first);
    expect(h.last).toBe(last);
    expect(h.core === true).toBe(core);
  });
});

// ── Targets ──────────────────────────────────────────────────────────────

describe("a target names a cloud-init version, or an OS whose images carry one", () => {
  it.each([
    ["22.2", "22.2", "22.2.2", undefined],
    ["22.2.2", "22.2", "22.2.2", undefined],
    ["22.4", "22.4", "22.4.2", undefined],
    ["25.1", "25.1", "25.1", undefined],
    ["26.2", "26.2", "26.2", undefined],
    // Between shipped schemas: the newest not newer checks it; the next tells keys that may be newer.
    ["22.3", "22.3", "22.2.2", "22.4"],
    ["24.1", "24.1", "22.4.2", "25.1"],
    ["26.1", "26.1", "25.1", "26.2"],
    // A string: "22.10" is 22.10 (after 22.4), never 22.1.
    ["22.10", "22.10", "22.4.2", "25.1"],
    ["al2023", "22.2", "22.2.2", undefined],
    ["AL2023", "22.2", "22.2.2", undefined],
    ["debian-12", "22.4", "22.4.2", undefined],
    ["debian-13", "25.1", "25.1", undefined],
    ["ubuntu-24.04", "24.1", "22.4.2", "25.1"],
  ])("%s → cloud-init %s, checked with the schema of %s (next shipped: %s)", (asked, version, tag, next) => {
    const { target, problem } = resolveTarget(asked, table.schemas);
    expect(problem).toBeUndefined();
    expect(target!.version).toBe(version);
    expect(target!.schema.tag).toBe(tag);
    expect(target!.next?.version).toBe(next);
  });

  it.each([
    ["22.1", "DI091", /older than 22\.2/],
    ["21.4", "DI091", /older than 22\.2/],
    ["26.3", "DI091", /newer than 26\.2/],
    ["27.1", "DI091", /newer than 26\.2/],
    ["al2", "DI091", /Amazon Linux 2\) carries cloud-init 19\.3, older than 22\.2/],
    ["ubuntu-22.04", "DI091", /carries cloud-init 22\.1, older than 22\.2/],
    ["banana", "DI090", /"banana" is neither a cloud-init version nor an OS name/],
    ["", "DI090", /neither/],
    ["22", "DI090", /neither/],
    ["v22.2", "DI090", /neither/],
  ])("%s is refused: %s", (asked, code, message) => {
    const { target, problem } = resolveTarget(asked, table.schemas);
    expect(target).toBeUndefined();
    expect(problem!.code).toBe(code);
    expect(problem!.message).toMatch(message);
  });

  it("every OS name resolves or is refused as too old, never as unknown", () => {
    for (const os of OS_TARGETS) {
      const r = resolveTarget(os.name, table.schemas);
      expect(r.target !== undefined || r.problem.code === "DI091", os.name).toBe(true);
    }
  });
});

describe("user_data.cloud_init names the target once, as a string", () => {
  it("an unquoted 22.10 is refused: YAML reads it as the number 22.1", () => {
    const r = loadConfigString('version: 1\nuser_data:\n  cloud_init: 22.10\n');
    expect(r.model).toBeUndefined();
    expect(r.diagnostics).toEqual([expect.objectContaining({ code: "DI011", path: ["user_data", "cloud_init"], line: 3, col: 15, hint: 'quote it to keep it as written: "22.10"' })]);
  });

  it('a quoted "22.10" is carried as written, and checked as 22.10 (with 22.4\'s schema), not as 22.1 (refused as too old)', () => {
    const loaded = loadConfigString('version: 1\nuser_data:\n  cloud_init: "22.10"\n');
    expect(loaded.model!.userData.cloudInit).toBe("22.10");
    const r = checkCloudInitTarget({ model: loaded.model!, file: loaded.file, source: loaded.source }, renderBundle(loaded).bundle!, undefined, SCHEMAS);
    expect(r.diagnostics).toEqual([]);
    expect(r.target).toMatchObject({ version: "22.10", schema: { tag: "22.4.2" } });
  });

  it("an unknown one is refused at its line, and --cloud-init overrides it", () => {
    const loaded = loadConfigString('version: 1\nuser_data:\n  cloud_init: "21.4"\n');
    const bundle = renderBundle(loaded).bundle!;
    const fromFile = checkCloudInitTarget({ model: loaded.model!, file: loaded.file, source: loaded.source }, bundle, undefined, SCHEMAS);
    expect(fromFile.usage).toBe(false);
    expect(fromFile.diagnostics).toEqual([expect.objectContaining({ code: "DI091", path: ["user_data", "cloud_init"], line: 3, col: 15 })]);
    const fromFlag = checkCloudInitTarget({ model: loaded.model!, file: loaded.file, source: loaded.source }, bundle, "26.2", SCHEMAS);
    expect(fromFlag.diagnostics).toEqual([]);
    expect(fromFlag.target!.version).toBe("26.2");
  });
});

// ── Every shared example, every target ───────────────────────────────────

const examples = [
  ...(sharedExamplesPresent(SHARED_EXAMPLES) ? readdirSync(SHARED_EXAMPLES).filter((f) => f.endsWith(".yaml")).map((f) => join(SHARED_EXAMPLES, f)) : []),
  ...fixtureCases().map((c) => join(FIXTURES, c, "dockinit.yaml")),
];
const TARGETS = [...SHIPPED, "22.3", "24.1", ...OS_TARGETS.map((o) => o.name).filter((n) => resolveTarget(n, table.schemas).target)];

describe.each(nonEmpty(examples, "examples"))("%s", (file) => {
  const loaded = loadConfig(file);
  const rendered = renderBundle(loaded);
  it.each(TARGETS)("passes --cloud-init %s without a word", (target) => {
    expect(rendered.bundle, JSON.stringify(rendered.diagnostics)).toBeDefined();
    const r = checkCloudInitTarget({ model: loaded.model!, file: loaded.file, source: loaded.source }, rendered.bundle!, target, SCHEMAS);
    expect(r.diagnostics).toEqual([]);
  });
});

// ── A user's cloud-config part ───────────────────────────────────────────

describe("a user's cloud-config part", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dockinit-cloud-init-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A config with one cloud-config part holding `part`, checked against `target`. */
  function checkPart(part: string, target: string) {
    writeFileSync(join(dir, "extra.yaml"), `#cloud-config\n${part}`);
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: parts\nuser_data:\n  parts:\n    - { file: extra.yaml, type: cloud-config }\n");
    const loaded = loadConfig(join(dir, "dockinit.yaml"));
    expect(loaded.diagnostics).toEqual([]);
    return checkCloudInitTarget({ model: loaded.model!, file: loaded.file, source: loaded.source }, renderBundle(loaded).bundle!, target, SCHEMAS).diagnostics;
  }

  const WIREGUARD = "wireguard:\n  interfaces:\n    - name: wg0\n      config_path: /etc/wireguard/wg0.conf\n      content: |\n        [Interface]\n";

  it("with wireguard: (new in 22.3) is refused for 22.2, naming the key, the target and the version that has it, at the part", () => {
    const diags = checkPart(WIREGUARD, "22.2");
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatchObject({ code: "DI093", severity: "error", path: ["user_data", "parts", 0, "file"], line: 5, col: 15 });
    expect(diags[0]!.message).toBe('extra.yaml: key "wireguard" is newer than cloud-init 22.2: it is not in cloud-init 22.2\'s schema; the first cloud-init whose schema dockinit ships with it is 22.4');
  });

  it.each(["22.4", "25.1", "26.2", "debian-12"])("with wireguard: passes %s", (target) => {
    expect(checkPart(WIREGUARD, target)).toEqual([]);
  });

  it("with wireguard: is only a warning for 22.3, which dockinit has no schema of", () => {
    expect(checkPart(WIREGUARD, "22.3")).toEqual([expect.objectContaining({ code: "DI094", severity: "warning", message: expect.stringMatching(/"wireguard" may be newer than cloud-init 22\.3/) })]);
  });

  it("with wireguard: is refused for al2023, named as such", () => {
    expect(checkPart(WIREGUARD, "al2023")).toEqual([expect.objectContaining({ code: "DI093", message: expect.stringContaining("newer than cloud-init 22.2 of al2023") })]);
  });

  it.each([
    // [part, target, code, message]
    ["runcmd: ls\n", "22.2", "DI092", 'extra.yaml: runcmd: expected a list, got the string "ls" (cloud-init 22.2\'s schema)'],
    ["runcmd: ls\n", "26.2", "DI092", 'extra.yaml: runcmd: expected a list, got the string "ls" (cloud-init 26.2\'s schema)'],
    ["write_files:\n  - { path: /etc/x, defer: yes }\n", "26.2", undefined, undefined], // YAML 1.1: yes is true, as PyYAML reads it
    ["write_files:\n  - { path: /etc/x, defer: maybe }\n", "22.2", "DI092", 'extra.yaml: write_files[0].defer: expected a boolean, got the string "maybe" (cloud-init 22.2\'s schema)'],
    ["write_files:\n  - { content: x }\n", "25.1", "DI092", 'extra.yaml: write_files[0]: missing required key "path" (cloud-init 25.1\'s schema)'],
    ["package_update: sometimes\n", "22.4", "DI092", 'extra.yaml: package_update: expected a boolean, got the string "sometimes" (cloud-init 22.4\'s schema)'],
    ["runcmd: [ls]\nruncmds: [ls]\n", "22.2", "DI096", 'extra.yaml: key "runcmds" is in no cloud-config schema dockinit ships (22.2, 22.4, 25.1, 26.2); cloud-init 22.2 ignores it'],
    ["runcmd: [ls]\nruncmds: [ls]\n", "26.2", "DI092", 'extra.yaml: key "runcmds" is not a cloud-config key: cloud-init 26.2\'s schema refuses keys it does not list'],
    ["debug: { verbose: true }\n", "22.2", undefined, undefined],
    ["debug: { verbose: true }\n", "22.4", "DI095", 'extra.yaml: key "debug" was removed from cloud-init after 22.2 (22.4\'s schema does not have it): cloud-init 22.4 ignores it'],
    ["debug: { verbose: true }\n", "26.2", "DI095", 'extra.yaml: key "debug" was removed from cloud-init after 22.2 (22.4\'s schema does not have it): cloud-init 26.2\'s schema refuses it'],
    ["rpi: {}\n", "24.1", "DI093", 'extra.yaml: key "rpi" is newer than cloud-init 24.1: it is not in cloud-init 22.4\'s schema, the nearest dockinit ships not newer than 24.1, nor is it in 25.1\'s; the first cloud-init whose schema dockinit ships with it is 26.2'],
    ["ubuntu_pro: { token: x }\n", "ubuntu-24.04", "DI094", 'extra.yaml: key "ubuntu_pro" may be newer than cloud-init 24.1 of ubuntu-24.04: cloud-init 22.4\'s schema does not have it, 25.1\'s does, and dockinit ships none between'],
    // Core keys: cloud-init read them before its schema described them.
    ["merge_how: dict(recurse_array)+list(append)\n", "22.2", undefined, undefined],
    ["merge_how: dict(recurse_array)+list(append)\n", "26.2", undefined, undefined],
  ])("%j for %s: %s", (part, target, code, message) => {
    const diags = checkPart(part, target);
    if (code === undefined) expect(diags).toEqual([]);
    else expect(diags).toEqual([expect.objectContaining({ code, message, path: ["user_data", "parts", 0, "file"] })]);
  });

  it("a jinja template is left alone (what it renders to depends on the instance)", () => {
    expect(checkPart("rpi: {}\n", "22.2")).toHaveLength(1);
    writeFileSync(join(dir, "extra.yaml"), "## template: jinja\n#cloud-config\nrpi: {}\n");
    const loaded = loadConfig(join(dir, "dockinit.yaml"));
    expect(checkCloudInitTarget({ model: loaded.model!, file: loaded.file, source: loaded.source }, renderBundle(loaded).bundle!, "22.2", SCHEMAS).diagnostics).toEqual([]);
  });
});

describe("the rendered cloud-config's user values point back at dockinit.yaml", () => {
  it("packages, runcmd and write_files entries map to user_data's, dockinit's own entries to nothing", () => {
    const loaded = loadConfigString(
      "version: 1\nuser_data:\n  packages: [jq, htop]\n  runcmd: [echo one, [echo, two]]\n  write_files:\n    - { path: /etc/a, content: a }\n    - { path: /etc/b, content: b }\n",
    );
    const bundle = renderBundle(loaded).bundle!;
    const [rendered] = bundleDocuments(loaded.model!, bundle);
    const own = bundle.files.length - 2;
    expect(rendered!.configPath(["packages", 1])).toEqual(["user_data", "packages", 1]);
    expect(rendered!.configPath(["runcmd", 0])).toEqual([]); // dockinit's boot script
    expect(rendered!.own!(["runcmd", 0])).toBe(true);
    expect(rendered!.configPath(["runcmd", 2, 1])).toEqual(["user_data", "runcmd", 1]);
    expect(rendered!.configPath(["write_files", own - 1, "content"])).toEqual([]);
    expect(rendered!.configPath(["write_files", own + 1, "path"])).toEqual(["user_data", "write_files", 1]);
    expect(rendered!.own!(["write_files", own + 1])).toBe(false);
    expect((rendered!.value as { write_files: { path: string }[] }).write_files[own + 1]!.path).toBe("/etc/b");
  });
});

// ── The command line ─────────────────────────────────────────────────────

async function cli(cwd: string, ...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, { stdout: (t) => (stdout += typeof t === "string" ? t : Buffer.from(t).toString("latin1")), stderr: (t) => (stderr += t), cwd, env: {} });
  return { code, stdout, stderr };
}

describe("check and render --cloud-init", () => {
  const KITCHEN = join(FIXTURES, "kitchen-sink", "dockinit.yaml");

  it("check says which cloud-init and schema it checked against", async () => {
    const r = await cli(REPO, "check", "-c", KITCHEN, "--cloud-init", "22.2");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: ok; user-data: .* bytes.*; valid for cloud-init 22\.2 \(schema 22\.2\.2\)\n$/);
    const j = await cli(REPO, "check", "-c", KITCHEN, "--cloud-init", "ubuntu-24.04", "--json");
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, cloudInit: "cloud-init 24.1 of ubuntu-24.04 (schema 22.4.2, the nearest not newer)" });
  });

  it("without a target, check says nothing of cloud-init", async () => {
    const r = await cli(REPO, "check", "-c", KITCHEN);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/cloud-init/);
    expect(JSON.parse((await cli(REPO, "check", "-c", KITCHEN, "--json")).stdout)).not.toHaveProperty("cloudInit");
  });

  it.each([
    ["21.4", "DI091"],
    ["27.1", "DI091"],
    ["banana", "DI090"],
  ])("--cloud-init %s is a usage error (exit 2, %s)", async (target, code) => {
    const r = await cli(REPO, "check", "-c", KITCHEN, "--cloud-init", target);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error ${code}: --cloud-init ${target}: `);
  });

  it("user_data.cloud_init is checked by check and render; a refused part writes nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-cloud-init-cli-"));
    try {
      writeFileSync(join(dir, "wg.yaml"), "#cloud-config\nwireguard: { interfaces: [{ name: wg0, config_path: /etc/wireguard/wg0.conf, content: x }] }\n");
      writeFileSync(join(dir, "dockinit.yaml"), 'version: 1\nuser_data:\n  cloud_init: "22.2"\n  parts:\n    - { file: wg.yaml, type: cloud-config }\n');
      const check = await cli(dir, "check");
      expect(check.code).toBe(1);
      expect(check.stderr).toMatch(/^dockinit\.yaml:5:15: error DI093: wg\.yaml: key "wireguard" is newer than cloud-init 22\.2/m);
      const render = await cli(dir, "render", "-o", "out");
      expect(render.code).toBe(1);
      expect(existsSync(join(dir, "out"))).toBe(false);
      // The flag wins over the file.
      const newer = await cli(dir, "render", "-o", "out", "--cloud-init", "26.2");
      expect(newer.stderr).toBe("");
      expect(newer.code).toBe(0);
      expect(newer.stdout).toMatch(/valid for cloud-init 26\.2 \(schema 26\.2\)\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ── Lazy loading, proven on the built binary ─────────────────────────────

describe("the schemas and the validator are loaded by a target only", () => {
  // `npm test` builds bin/dockinit.cjs first.
  const bin = join(REPO, "bin", "dockinit.cjs");
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dockinit-cloud-init-lazy-"));
    // Records the validator's require (external to the bundle) and every file read from cloud-init-schemas/.
    writeFileSync(
      join(dir, "trace.cjs"),
      `const Module = require("node:module"); const fs = require("node:fs"); const seen = { modules: [], files: [] };
const load = Module._load;
Module._load = function (request, ...rest) { if (request === "jsonschema") seen.modules.push(request); return load.call(this, request, ...rest); };
const read = fs.readFileSync;
fs.readFileSync = function (p, ...rest) { if (String(p).includes("cloud-init-schemas")) seen.files.push(require("node:path").basename(String(p))); return read.call(this, p, ...rest); };
process.on("exit", () => fs.writeFileSync(process.env.TRACE_OUT, JSON.stringify(seen)));\n`,
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function traced(args: string[]) {
    const out = join(dir, "seen.json");
    rmSync(out, { force: true });
    const r = spawnSync(process.execPath, ["--require", join(dir, "trace.cjs"), bin, ...args], { cwd: dir, encoding: "utf8", env: { PATH: process.env.PATH, TRACE_OUT: out }, timeout: 30_000 });
    return { status: r.status, stderr: r.stderr, ...(JSON.parse(readFileSync(out, "utf8")) as { modules: string[]; files: string[] }) };
  }

  it.skipIf(!existsSync(bin)).each([["check"], ["render", "--stdout"]])("%s without a target loads neither", (...args) => {
    const r = traced([...args, "-c", join(FIXTURES, "kitchen-sink", "dockinit.yaml")]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.modules).toEqual([]);
    expect(r.files).toEqual([]);
  });

  it.skipIf(!existsSync(bin))("check --cloud-init 22.2 loads the validator, keys.json and 22.2's schema alone", () => {
    const r = traced(["check", "-c", join(FIXTURES, "kitchen-sink", "dockinit.yaml"), "--cloud-init", "22.2"]);
    expect(r.status, `${r.stderr}(exit 2 "unknown option"? bin/dockinit.cjs is stale: npm run build)`).toBe(0);
    expect(r.modules).toEqual(["jsonschema"]);
    expect(r.files.sort()).toEqual(["22.2.2.json", "keys.json"]);
  });
});
