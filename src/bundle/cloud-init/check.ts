// The cloud-config a bundle carries, dockinit's own and the user's cloud-config
// parts, checked against one cloud-init version: its own cloud-config schema
// (cloud-init-schemas/, shipped beside bin/ and dist/) and the table of each
// top-level key's first and last shipped version (keys.json), because a
// schema alone does not refuse a newer key (22.x's have no top-level
// `additionalProperties: false`).
//
// Loaded by lazy.ts only when a target is named: the schemas (100-160 KB
// each) and the validator (the `jsonschema` package, external to the CLI
// bundle) are read by nothing else, so `check`/`render` without a target
// start as fast as before.
//
// Validation is cloud-init's own: a draft-4 validator over the unchanged
// schema, `format` not asserted. cloud-init validates with python-jsonschema's
// Draft4Validator and a FormatChecker whose "uri" and "hostname" checks exist
// only when optional Python packages are installed, so an image may or may
// not assert them; not asserting never refuses what an instance accepts.
// (Measured: the same verdict as Draft4Validator on 3,486 documents, cloud-init's
// doc examples and type-broken variants of them, for each of the four schemas.)
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Validator, type Schema, type ValidationError } from "jsonschema";
import { parse as parseYaml } from "yaml";
import { diagnostic, formatPath, type Diagnostic, type DiagnosticCode } from "../../config/errors.js";
import { locate, suggestKey } from "../../config/load.js";
import type { Model } from "../../model.js";
import { cloudConfigObject } from "../../render/cloud-config.js";
import type { Bundle } from "../render-bundle.js";
import { compareVersions, resolveTarget, targetName, type CloudInitTarget, type KeyHistory, type KeyTable, type ShippedSchema } from "./target.js";

type Path = (string | number)[];

/**
 * cloud-init-schemas/ of this installation: beside bin/ (the CLI bundle) and
 * dist/ (the library), or at the repository's root above src/bundle/cloud-init
 * (tests). `__dirname` is the bundle's or, under vitest, this file's folder.
 */
export function shippedSchemaDir(): string {
  for (const up of ["..", "../..", "../../.."]) {
    const dir = resolve(__dirname, up, "cloud-init-schemas");
    if (existsSync(join(dir, "keys.json"))) return dir;
  }
  throw new Error(`cloud-init-schemas/keys.json is missing beside ${__dirname}: this dockinit installation is incomplete (reinstall it)`);
}

const readJson = (dir: string, file: string): unknown => JSON.parse(readFileSync(join(dir, file), "utf8"));

export function readKeyTable(dir = shippedSchemaDir()): KeyTable {
  return readJson(dir, "keys.json") as KeyTable;
}

export function readSchema(shipped: ShippedSchema, dir = shippedSchemaDir()): Schema {
  return readJson(dir, shipped.file) as Schema;
}

/** One cloud-config document, and where its problems belong in dockinit.yaml. */
export interface CloudConfigDocument {
  /** How messages name it: "the rendered cloud-config", "parts/wg.yaml". */
  name: string;
  value: unknown;
  /** The dockinit.yaml path a problem at `path` (inside the document) points at. */
  configPath(path: Path): Path;
  /** Whether the value at `path` is dockinit's own output (a problem there is a bug in dockinit). */
  own?(path: Path): boolean;
}

const isMapping = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** A value as a message shows it. */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `the ${typeof v} ${JSON.stringify(v)}`;
}

const TYPE_WORDS: Record<string, string> = { string: "a string", array: "a list", object: "a mapping", boolean: "a boolean", integer: "a whole number", number: "a number", null: "an empty value" };

const either = (words: string[]) => (words.length > 1 ? `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}` : (words[0] ?? ""));

/** A schema error in words, without its path: jsonschema's own words where they read well. */
function schemaProblem(e: ValidationError): string {
  const arg: unknown = e.argument;
  switch (e.name) {
    case "type":
      return `expected ${either((Array.isArray(arg) ? arg : [arg]).map((t) => TYPE_WORDS[String(t)] ?? String(t)))}, got ${describeValue(e.instance)}`;
    case "enum":
      return `${JSON.stringify(e.instance)} is not one of ${(Array.isArray(arg) ? arg : []).map((v) => JSON.stringify(v)).join(", ")}`;
    case "additionalProperties":
      return `unknown key "${String(arg)}"`;
    case "required":
      return `missing required key "${String(arg)}"`;
    case "oneOf":
      return `${describeValue(e.instance)} is not exactly one of the forms the schema allows here`;
    case "anyOf":
      return `${describeValue(e.instance)} is none of the forms the schema allows here`;
    default:
      return e.message;
  }
}

/** "write_files[0].defer", or "(top level)". */
const inside = (path: Path) => (path.length === 0 ? "(top level)" : formatPath(path));

/** Which schema checked a target, for messages: "cloud-init 22.2's schema", "cloud-init 22.4's schema (dockinit's nearest for 24.1)". */
function schemaWords(t: CloudInitTarget): string {
  return t.schema.version === t.version ? `cloud-init ${t.version}'s schema` : `cloud-init ${t.schema.version}'s schema, the nearest dockinit ships not newer than ${t.version}`;
}

const BUG_HINT = "dockinit wrote this itself: please report it as a bug in dockinit, with this config and the target";

/** The key-history diagnostic for one top-level key, or undefined when the target has it (or it is not a module key). */
function keyAge(key: string, history: KeyHistory | undefined, t: CloudInitTarget, table: KeyTable, doc: CloudConfigDocument): Diagnostic | undefined {
  const at = doc.configPath([key]);
  const own = doc.own?.([key]) ?? false;
  const make = (code: DiagnosticCode, words: string, hint?: string) => diagnostic(code, `${doc.name}: ${words}`, at, own ? BUG_HINT : hint);
  const versions = table.schemas.map((s) => s.version).join(", ");
  if (!history) {
    // A schema that refuses unknown keys reports it itself (DI092, with a suggestion).
    if (t.schema.refusesUnknownKeys) return undefined;
    const like = suggestKey(key, Object.keys(table.keys));
    return make("DI096", `key "${key}" is in no cloud-config schema dockinit ships (${versions}); ${targetName(t)} ignores it`, like ? `did you mean "${like}"?` : undefined);
  }
  if (history.core) return undefined;
  if (compareVersions(history.first, t.schema.version) > 0) {
    const certain = !t.next || compareVersions(history.first, t.next.version) > 0;
    if (certain) {
      const also = t.next ? `, nor is it in ${t.next.version}'s` : "";
      return make("DI093", `key "${key}" is newer than ${targetName(t)}: it is not in ${schemaWords(t)}${also}; the first cloud-init whose schema dockinit ships with it is ${history.first}`);
    }
    return make(
      "DI094",
      `key "${key}" may be newer than ${targetName(t)}: cloud-init ${t.schema.version}'s schema does not have it, ${t.next!.version}'s does, and dockinit ships none between`,
      `make sure cloud-init ${t.version} has \`${key}\` (\`cloud-init schema --system\` on an instance), or name ${t.next!.version} if your images carry ${t.next!.version} or newer`,
    );
  }
  if (history.last && compareVersions(history.last, t.schema.version) < 0) {
    const gone = table.schemas.find((s) => compareVersions(s.version, history.last!) > 0)!;
    const then = t.schema.refusesUnknownKeys ? `${schemaWords(t)} refuses it` : `${targetName(t)} ignores it`;
    return make("DI095", `key "${key}" was removed from cloud-init after ${history.last} (${gone.version}'s schema does not have it): ${then}`);
  }
  if (history.last && history.last === t.schema.version && t.next) {
    return make(
      "DI094",
      `key "${key}" may be gone from ${targetName(t)}: cloud-init ${t.schema.version}'s schema has it, ${t.next.version}'s does not, and dockinit ships none between`,
      `make sure cloud-init ${t.version} still has \`${key}\` (\`cloud-init schema --system\` on an instance), or remove it`,
    );
  }
  return undefined;
}

/** Where the shipped schemas' references resolve (never fetched: every "$ref" in them is "#/…", inside the same file). */
const SCHEMA_BASE = "https://dockinit.invalid/cloud-init-schemas/schema-cloud-config-v1.json";

/** Every problem of one document for one target: key history first, then the schema's own verdict. */
export function checkDocument(doc: CloudConfigDocument, t: CloudInitTarget, table: KeyTable, schema: Schema): Diagnostic[] {
  if (!isMapping(doc.value)) return [diagnostic("DI092", `${doc.name} is ${describeValue(doc.value)}, not a mapping of cloud-config keys`, doc.configPath([]))];
  const out: Diagnostic[] = [];
  const aged = new Set<string>();
  for (const key of Object.keys(doc.value)) {
    const d = keyAge(key, table.keys[key], t, table, doc);
    if (d) {
      out.push(d);
      aged.add(key);
    }
  }
  // An absolute base for the schema's "#/$defs/…" references: without one,
  // jsonschema resolves them against "/undefined", which Node 24's URL parser
  // (unlike 20's and 22's) refuses against jsonschema's own "thismessage::/".
  const result = new Validator().validate(doc.value, schema, { skipAttributes: ["format"], base: SCHEMA_BASE });
  for (const e of result.errors) {
    // allOf only sums up its branches' errors, which are listed themselves.
    if (e.name === "allOf") continue;
    const path = e.path as Path;
    const topKey = path.length === 0 && e.name === "additionalProperties" ? String(e.argument) : undefined;
    // Said better by the key's history above.
    if (topKey !== undefined && aged.has(topKey)) continue;
    const at = doc.configPath(topKey !== undefined ? [topKey] : path);
    const own = doc.own?.(topKey !== undefined ? [topKey] : path) ?? false;
    if (topKey !== undefined) {
      // A key no shipped schema has, refused by a schema that lists every key (25.1 and later).
      const like = suggestKey(topKey, Object.keys(table.keys));
      const hint = own ? BUG_HINT : like ? `did you mean "${like}"?` : "remove the key: no cloud-init dockinit knows has it (check its spelling)";
      out.push(diagnostic("DI092", `${doc.name}: key "${topKey}" is not a cloud-config key: ${schemaWords(t)} refuses keys it does not list`, at, hint));
      continue;
    }
    out.push(diagnostic("DI092", `${doc.name}: ${inside(path)}: ${schemaProblem(e)} (${schemaWords(t)})`, at, own ? BUG_HINT : undefined));
  }
  return out;
}

/** YAML as cloud-init reads it (PyYAML, YAML 1.1); `!!binary` becomes text, as cloud-init takes bytes for strings. */
function readCloudConfig(text: string): unknown {
  const value: unknown = parseYaml(text, { version: "1.1", logLevel: "silent" });
  const fix = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString("latin1");
    if (Array.isArray(v)) return v.map(fix);
    if (isMapping(v) && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fix(x)]));
    return v;
  };
  return fix(value);
}

/**
 * The documents a bundle gives cloud-init: its own cloud-config, whose user
 * values point back at user_data.packages/runcmd/write_files (renderCloudConfig
 * writes dockinit's entries first), and every text/cloud-config part. Parts
 * cloud-init renders first (jinja templates) are left out: what they become
 * depends on the instance. dockinit's own cloud-config is taken as the data
 * its text is written from (cloudConfigObject; the text leaves out what is
 * cloud-init's own default, mode 0644 and owner root:root): that PyYAML reads
 * the text back as the data it stands for is the property test's
 * (test/unit/property.test.ts), and reading 25 KB of YAML again here would
 * cost more than the validation itself.
 */
export function bundleDocuments(model: Model, bundle: Pick<Bundle, "files">): CloudConfigDocument[] {
  const rendered: unknown = cloudConfigObject(model, bundle.files);
  const count = (key: string) => {
    const v = isMapping(rendered) ? rendered[key] : undefined;
    return Array.isArray(v) ? v.length : 0;
  };
  const ownFiles = bundle.files.length - model.userData.writeFiles.length;
  const ownRuncmd = count("runcmd") - model.userData.runcmd.length;
  const userEntry = (path: Path): Path | undefined => {
    const [key, i] = path;
    if (typeof i !== "number") return undefined;
    if (key === "packages") return ["user_data", "packages", i];
    if (key === "runcmd" && i >= ownRuncmd) return ["user_data", "runcmd", i - ownRuncmd];
    if (key === "write_files" && i >= ownFiles) return ["user_data", "write_files", i - ownFiles];
    return undefined;
  };
  const docs: CloudConfigDocument[] = [
    {
      name: "the rendered cloud-config",
      value: rendered,
      configPath: (path) => userEntry(path) ?? [],
      own: (path) => userEntry(path) === undefined,
    },
  ];
  model.userData.parts.forEach((p, i) => {
    if (p.contentType !== "text/cloud-config" || /^## template:\s*jinja/i.test(p.content)) return;
    docs.push({ name: p.file, value: readCloudConfig(p.content), configPath: () => ["user_data", "parts", i, "file"] });
  });
  return docs;
}

/** A target and its check, for the CLI (lazy.ts). */
export interface TargetCheck {
  target?: CloudInitTarget;
  diagnostics: Diagnostic[];
  /** The target came from --cloud-init and names nothing dockinit can check: a usage error. */
  usage: boolean;
}

/**
 * The check `check`/`render` run: the target from --cloud-init (`flag`) or
 * else user_data.cloud_init, every document of the bundle checked against
 * it, and each diagnostic placed in dockinit.yaml (the config is read again
 * for positions: this runs only with a target).
 */
export function checkCloudInitTarget(
  loaded: { model: Model; file: string; source: string },
  bundle: Pick<Bundle, "files">,
  flag: string | undefined,
  dir = shippedSchemaDir(),
): TargetCheck {
  const asked = flag ?? loaded.model.userData.cloudInit;
  if (asked === undefined) return { diagnostics: [], usage: false };
  const table = readKeyTable(dir);
  const place = (diags: Diagnostic[]) => locate({ file: loaded.file, source: loaded.source, diagnostics: [] }, diags);
  const resolved = resolveTarget(asked, table.schemas);
  if (!resolved.target) {
    const { code, message, hint } = resolved.problem;
    const where = flag !== undefined ? `--cloud-init ${flag}: ` : "";
    return { diagnostics: place([diagnostic(code, `${where}${message}`, flag !== undefined ? [] : ["user_data", "cloud_init"], hint)]), usage: flag !== undefined };
  }
  const target = resolved.target;
  const schema = readSchema(target.schema, dir);
  const diags = bundleDocuments(loaded.model, bundle).flatMap((doc) => checkDocument(doc, target, table, schema));
  return { target, diagnostics: place(diags), usage: false };
}

/** The target in one line, for `check`'s and `render`'s summary: "cloud-init 22.2 (schema 22.2.2)", "cloud-init 24.1 of ubuntu-24.04 (schema 22.4.2, the nearest not newer)". */
export function describeTarget(t: CloudInitTarget): string {
  return `${targetName(t)} (schema ${t.schema.tag}${t.schema.version === t.version ? "" : ", the nearest not newer"})`;
}
