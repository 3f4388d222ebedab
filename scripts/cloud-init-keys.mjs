// cloud-init-schemas/keys.json: each top-level cloud-config key and the
// first (and, when it was dropped, the last) shipped cloud-init schema that
// has it, derived from the schemas in that folder, never typed by hand.
// A schema alone does not refuse a newer key (22.x's have no top-level
// `additionalProperties: false`), so `--cloud-init` reads this table too
// (src/bundle/cloud-init/). test/unit/cloud-init-target.test.ts checks that
// keys.json is what this derivation gives.
// `node scripts/cloud-init-keys.mjs --write` rewrites it after a schema is
// added to the folder (as upstream's
// cloudinit/config/schemas/schema-cloud-config-v1.json, named TAG.json).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const SCHEMA_DIR = resolve(fileURLToPath(new URL("../cloud-init-schemas", import.meta.url)));
export const KEYS_FILE = "keys.json";

/** "22.2.2" → [22, 2, 2]; compares release tags numerically. */
const parts = (tag) => tag.split(".").map(Number);
export const byVersion = (a, b) => {
  const x = parts(a);
  const y = parts(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

/** The shipped schemas, oldest first: { tag, version (MAJOR.MINOR), file, schema }. */
export function readShippedSchemas(dir = SCHEMA_DIR) {
  return readdirSync(dir)
    .filter((f) => /^\d+\.\d+(\.\d+)?\.json$/.test(f))
    .map((file) => {
      const tag = file.slice(0, -".json".length);
      return { tag, version: tag.split(".").slice(0, 2).join("."), file, schema: JSON.parse(readFileSync(join(dir, file), "utf8")) };
    })
    .sort((a, b) => byVersion(a.tag, b.tag));
}

/**
 * The top-level keys one schema describes, each with the definitions that
 * describe it: the schema's own `properties` ("(top level)") and the
 * `properties` of every definition its `allOf` names (cc_* modules,
 * base_config, …), looking into allOf/anyOf/oneOf inside them.
 */
export function topLevelKeys(schema) {
  const resolveRef = (ref) => {
    if (!ref.startsWith("#/")) throw new Error(`cannot follow $ref ${ref}`);
    return ref
      .slice(2)
      .split("/")
      .reduce((node, seg) => node?.[seg], schema);
  };
  const keys = new Map();
  const add = (key, where) => keys.set(key, [...(keys.get(key) ?? []), where].filter((w, i, all) => all.indexOf(w) === i));
  const walk = (node, where, seen) => {
    if (node.$ref) {
      if (seen.has(node.$ref)) return;
      seen.add(node.$ref);
      node = resolveRef(node.$ref);
      if (!node) throw new Error(`$ref to nothing in ${where}`);
    }
    if (node.patternProperties) throw new Error(`${where}: top-level patternProperties cannot be listed as keys`);
    for (const key of Object.keys(node.properties ?? {})) add(key, where);
    for (const list of ["allOf", "anyOf", "oneOf"]) for (const sub of node[list] ?? []) walk(sub, where, seen);
  };
  for (const key of Object.keys(schema.properties ?? {})) add(key, "(top level)");
  for (const sub of schema.allOf ?? []) walk(sub, sub.$ref ? sub.$ref.split("/").pop() : "(allOf)", new Set());
  return keys;
}

/**
 * key → { first, last?, in, core? }: `first`/`last` are the oldest and newest
 * shipped versions whose schema has the key (`last` only when the newest has
 * it not), `in` the definitions that describe it in the `first` one. `core`:
 * no cc_* module definition described it there, only cloud-init's own
 * configuration (base_config, reporting_config, output_config, the top-level
 * list): keys cloud-init read long before its schema described them (e.g.
 * merge_how, in 22.2.2's cloudinit/mergers; described from 23.4 on), so the
 * schema that first has them says nothing about their age. Module keys
 * (cc_wireguard's wireguard, new in 22.3) came with their module.
 */
export function deriveKeyTable(shipped) {
  const newest = shipped[shipped.length - 1];
  const perVersion = shipped.map((s) => ({ version: s.version, keys: topLevelKeys(s.schema) }));
  const table = {};
  const all = [...new Set(perVersion.flatMap((v) => [...v.keys.keys()]))].sort();
  for (const key of all) {
    const having = perVersion.filter((v) => v.keys.has(key));
    const first = having[0];
    const last = having[having.length - 1];
    // 25.1 and later also list every key at the top level (for
    // additionalProperties: false): the definitions say what a key belongs to.
    const listed = first.keys.get(key);
    const where = listed.length > 1 ? listed.filter((w) => w !== "(top level)") : listed;
    table[key] = {
      first: first.version,
      ...(last.version !== newest.version ? { last: last.version } : {}),
      in: where.join(" "),
      ...(where.some((w) => w.startsWith("cc_")) ? {} : { core: true }),
    };
  }
  return {
    generated: "by scripts/cloud-init-keys.mjs from the schemas beside it: do not edit",
    schemas: shipped.map((s) => ({ version: s.version, tag: s.tag, file: s.file, refusesUnknownKeys: s.schema.additionalProperties === false })),
    keys: table,
  };
}

/** keys.json's text: one key a line, so a new schema shows as a readable diff. */
export function keyTableText(table) {
  const lines = Object.entries(table.keys).map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  const schemas = table.schemas.map((s) => `    ${JSON.stringify(s)}`);
  return `{\n  "generated": ${JSON.stringify(table.generated)},\n  "schemas": [\n${schemas.join(",\n")}\n  ],\n  "keys": {\n${lines.join(",\n")}\n  }\n}\n`;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = keyTableText(deriveKeyTable(readShippedSchemas()));
  const target = join(SCHEMA_DIR, KEYS_FILE);
  if (process.argv.includes("--write")) {
    writeFileSync(target, text);
    console.log(`wrote ${target}`);
  } else if (readFileSync(target, "utf8") !== text) {
    console.error(`${target} is not what the schemas give: node scripts/cloud-init-keys.mjs --write`);
    process.exitCode = 1;
  } else {
    console.log(`${target} is up to date`);
  }
}
