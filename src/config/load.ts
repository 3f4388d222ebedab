// Loading: bytes → YAML document with positions → schema-checked config.
// Every problem becomes a Diagnostic carrying file, line:col, YAML path, a
// stable code and a hint; nothing here throws at the user or prints.
import { isCollection, isMap, isPair, isScalar, LineCounter, parseDocument, visit, type Document, type Node } from "yaml";
import type * as z from "zod/mini";
import { byCodeUnit } from "../order.js";
import { catalogue, diagnostic, type Diagnostic, type DiagnosticCode } from "./errors.js";
import { configSchema, type Config } from "./schema.js";

/** dockinit.yaml is a short declarative file; anything larger is a mistake or an attack. */
export const MAX_CONFIG_BYTES = 256 * 1024;

export interface LoadedConfig {
  /** The validated configuration (defaults applied); undefined when there are errors. */
  config?: Config;
  diagnostics: Diagnostic[];
  /** File name as given, for messages; "<default>" for the built-in config. */
  file: string;
  /** Source text, kept so a diagnostic can show the offending line. */
  source: string;
  /** The parsed document with positions, for locating later diagnostics. */
  located?: Located;
}

type Path = (string | number)[];

interface Located {
  doc: Document;
  lineCounter: LineCounter;
}

function positionOf(loc: Located, offset: number | undefined): { line: number; col: number } {
  if (offset === undefined) return { line: 0, col: 0 };
  const { line, col } = loc.lineCounter.linePos(offset);
  return { line, col };
}

/** The node at a YAML path, or the deepest existing ancestor. */
function nodeAt(loc: Located, path: Path): { node: Node | undefined; exact: boolean } {
  let node: unknown = loc.doc.contents;
  for (let i = 0; i < path.length; i++) {
    if (!isCollection(node)) return { node: node as Node | undefined, exact: false };
    const next = node.get(path[i], true);
    if (next === undefined) return { node: node as Node, exact: false };
    node = next;
  }
  return { node: node as Node | undefined, exact: true };
}

/** Position of a key inside a map (for unknown-key errors). */
function keyPosition(loc: Located, mapPath: Path, key: string): number | undefined {
  const { node } = nodeAt(loc, mapPath);
  if (!isMap(node)) return node?.range?.[0];
  for (const pair of node.items) {
    if (isScalar(pair.key) && pair.key.value === key) return pair.key.range?.[0];
  }
  return node.range?.[0];
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The keys an object schema accepts at a YAML path (for "did you mean"). */
function allowedKeysAt(path: Path): string[] {
  let schema: z.core.$ZodType | undefined = configSchema;
  const unwrap = (s: z.core.$ZodType | undefined): z.core.$ZodType | undefined => {
    while (s) {
      const def = s._zod.def as { type: string; innerType?: z.core.$ZodType };
      if (["default", "prefault", "optional", "nullable", "readonly"].includes(def.type) && def.innerType) s = def.innerType;
      else break;
    }
    return s;
  };
  for (const seg of path) {
    schema = unwrap(schema);
    if (!schema) return [];
    const def = schema._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType };
    if (def.type === "object" && typeof seg === "string") schema = def.shape?.[seg];
    else if (def.type === "array") schema = def.element;
    else return [];
  }
  schema = unwrap(schema);
  const def = schema?._zod.def as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

export function suggestKey(unknown: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of allowed) {
    const d = levenshtein(unknown.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** Translate one zod issue into dockinit diagnostics, with positions. */
function issueToDiagnostics(issue: z.core.$ZodIssue, loc: Located, input: unknown): Diagnostic[] {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)) as Path;
  const at = (d: Diagnostic, offset: number | undefined): Diagnostic => ({ ...d, ...positionOf(loc, offset) });
  const { node, exact } = nodeAt(loc, path);
  // An empty document has no node at all: its problems are at 1:1.
  const here = node?.range?.[0] ?? 0;

  if (issue.code === "unrecognized_keys") {
    const allowed = allowedKeysAt(path);
    return issue.keys.map((key) => {
      const suggestion = suggestKey(key, allowed);
      const hint = suggestion
        ? `did you mean "${suggestion}"?`
        : `allowed keys here: ${allowed.join(", ")}`;
      return at(diagnostic("DI010", `unknown key "${key}"`, [...path, key], hint), keyPosition(loc, path, key));
    });
  }
  if (issue.code === "custom") {
    const params = (issue.params ?? {}) as { di?: DiagnosticCode; hint?: string };
    const code = params.di && params.di in catalogue ? params.di : "DI012";
    return [at(diagnostic(code, issue.message, path, params.hint), here)];
  }
  if (issue.code === "invalid_type") {
    if (!exact) {
      const key = path[path.length - 1];
      return [at(diagnostic("DI013", `missing required key "${String(key)}"`, path), here)];
    }
    const value = getIn(input, path);
    if (path[path.length - 1] === "permissions" && typeof value === "number") {
      const src = isScalar(node) && node.source !== undefined ? String(node.source) : String(value);
      return [at(diagnostic("DI040", `permissions: ${src} is read by YAML as the number ${value}, not an octal mode`, path, `quote it: permissions: "${/^0/.test(src) ? src : "0" + src}"`), here)];
    }
    return [at(diagnostic("DI011", `expected ${issue.expected}, got ${describeType(value)}`, path), here)];
  }
  if (issue.code === "invalid_value") {
    if (!exact) {
      return [at(diagnostic("DI013", `missing required key "${String(path[path.length - 1])}"`, path), here)];
    }
    if (path.length === 1 && path[0] === "version") {
      return [at(diagnostic("DI014", `version ${JSON.stringify(getIn(input, path))} is not supported`, path), here)];
    }
    const allowed = issue.values.map((v) => JSON.stringify(v)).join(", ");
    return [at(diagnostic("DI012", `${JSON.stringify(getIn(input, path))} is not allowed here`, path, `use one of: ${allowed}`), here)];
  }
  if (issue.code === "too_big") {
    if (issue.origin === "array") {
      return [at(diagnostic("DI015", `list has more than ${String(issue.maximum)} entries`, path), here)];
    }
    return [at(diagnostic("DI016", `${JSON.stringify(getIn(input, path))} is above the maximum ${String(issue.maximum)}`, path), here)];
  }
  if (issue.code === "too_small") {
    if (issue.origin === "array") {
      return [at(diagnostic("DI015", `list needs at least ${String(issue.minimum)} entr${issue.minimum === 1 ? "y" : "ies"}`, path, "add an entry or remove the key"), here)];
    }
    return [at(diagnostic("DI016", `${JSON.stringify(getIn(input, path))} is below the minimum ${String(issue.minimum)}`, path), here)];
  }
  if (issue.code === "invalid_union") {
    return [at(diagnostic("DI011", `${describeType(getIn(input, path))} is not accepted here`, path, issue.message), here)];
  }
  if (issue.code === "invalid_format") {
    return [at(diagnostic("DI012", issue.message, path), here)];
  }
  return [at(diagnostic("DI012", issue.message, path), here)];
}

function getIn(value: unknown, path: Path): unknown {
  let v = value;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** Nesting limit: daemon.json settings are the deepest part of a real config, a handful of levels. */
export const MAX_DEPTH = 32;

/** DI016 for the first node nested deeper than MAX_DEPTH (checked without recursion). */
function tooDeep(loc: Located): Diagnostic[] {
  const stack: [unknown, number][] = [[loc.doc.contents, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (!isCollection(node)) continue;
    if (depth > MAX_DEPTH) {
      return [{ ...diagnostic("DI016", `this value is nested more than ${MAX_DEPTH} levels deep`, [], "flatten the value; dockinit.yaml and daemon.json settings need only a few levels"), ...positionOf(loc, node.range?.[0]) }];
    }
    for (const item of node.items) {
      if (isPair(item)) stack.push([item.value, depth + 1]);
      else stack.push([item, depth + 1]);
    }
  }
  return [];
}

/** A UTF-16 surrogate with no partner: only a "\\ud800" escape can make one, and UTF-8 cannot carry it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Refuse YAML features that make a config mean something other than what it shows. */
function rejectIndirection(loc: Located): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (what: string, offset: number | undefined, hint?: string) =>
    out.push({ ...diagnostic("DI003", what, [], hint), ...positionOf(loc, offset) });
  // One Node visitor for scalars, maps, sequences and aliases (a Scalar visitor would replace it for scalars).
  visit(loc.doc, {
    Alias(_, node) {
      report(`alias *${node.source} is not allowed`, node.range?.[0]);
    },
    Node(_, node) {
      if (isScalar(node) && typeof node.value === "string" && LONE_SURROGATE.test(node.value)) {
        report("an escape makes a lone UTF-16 surrogate, which is not a character", node.range?.[0], "escape the whole character (\\U0001F600) or write it as UTF-8");
      }
      if (node.anchor) report(`anchor &${node.anchor} is not allowed`, node.range?.[0]);
      if (node.tag && !/^tag:yaml\.org,2002:(str|int|bool|float|null|map|seq)$/.test(node.tag)) {
        report(`tag ${node.tag} is not allowed`, node.range?.[0]);
      }
    },
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && pair.key.value === "<<") {
        report("merge key << is not allowed", pair.key.range?.[0]);
      }
    },
  });
  return out;
}

/**
 * Integers written with a leading zero (010) or as 0o17: YAML 1.2 reads them
 * as decimal or octal, YAML 1.1 (cloud-init, most editors' highlighting, many
 * users' habits) the other way round, so a port or a count could silently be
 * another number. Modes are left to DI040 (they must be strings anyway).
 */
function ambiguousNumbers(loc: Located): Diagnostic[] {
  const out: Diagnostic[] = [];
  visit(loc.doc, {
    Scalar(key, node, path) {
      if (key === "key" || typeof node.value !== "number" || typeof node.source !== "string") return;
      if (!/^[-+]?(0[0-9]+|0o[0-7]+)$/.test(node.source)) return;
      const parent = path[path.length - 1];
      if (isPair(parent) && isScalar(parent.key) && parent.key.value === "permissions") return;
      out.push({ ...diagnostic("DI018", `${node.source} is read as ${node.value} here, but as ${node.source.startsWith("0o") ? "a string" : parseInt(node.source, 8) || "a string"} by YAML 1.1 readers`), ...positionOf(loc, node.range?.[0]) });
    },
  });
  return out;
}

function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return diags.sort((a, b) => a.line - b.line || a.col - b.col || byCodeUnit(a.code, b.code));
}

/** Parse and validate configuration text. Pure: no file system access. */
export function parseConfig(source: string, file = "dockinit.yaml"): LoadedConfig {
  const withFile = (diags: Diagnostic[]) => sortDiagnostics(diags.map((d) => ({ ...d, file })));
  if (Buffer.byteLength(source, "utf8") > MAX_CONFIG_BYTES) {
    return { file, source, diagnostics: withFile([diagnostic("DI004", `the file is ${Buffer.byteLength(source)} bytes; the limit is ${MAX_CONFIG_BYTES}`)]) };
  }
  const lineCounter = new LineCounter();
  // YAML 1.2 core schema: `yes`/`no`/`on` are strings and 0644 is a decimal
  // number, so a mode written without quotes is caught as a number below.
  // logLevel "error": an unknown tag is reported as DI003 below, not printed by the yaml package as a process warning.
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, version: "1.2", schema: "core", strict: true, logLevel: "error" });
  const loc: Located = { doc, lineCounter };
  const diags: Diagnostic[] = [];
  for (const err of doc.errors) {
    const code: DiagnosticCode = err.code === "DUPLICATE_KEY" ? "DI002" : "DI001";
    let message = err.message.split("\n")[0] ?? err.message;
    // The yaml package's composer recurses: thousands of nested [ or { overflow its stack.
    if (/call stack/i.test(message)) message = `the document nests deeper than the parser can follow (dockinit.yaml allows ${MAX_DEPTH} levels)`;
    diags.push({ ...diagnostic(code, message), ...positionOf(loc, err.pos[0]) });
  }
  if (diags.length === 0) diags.push(...rejectIndirection(loc));
  if (diags.length === 0) diags.push(...tooDeep(loc));
  if (diags.length > 0) return { file, source, diagnostics: withFile(diags) };

  const input: unknown = doc.toJS({ maxAliasCount: 0 }) ?? {};
  if (typeof input !== "object" || Array.isArray(input)) {
    return { file, source, diagnostics: withFile([{ ...diagnostic("DI011", `expected a mapping at the top level, got ${describeType(input)}`), line: 1, col: 1 }]) };
  }
  diags.push(...ambiguousNumbers(loc));
  const parsed = configSchema.safeParse(input);
  if (!parsed.success || diags.length > 0) {
    for (const issue of parsed.error?.issues ?? []) diags.push(...issueToDiagnostics(issue, loc, input));
    return { file, source, diagnostics: withFile(diags) };
  }
  return { file, source, config: parsed.data, diagnostics: [], located: loc };
}

function reparse(source: string): Located {
  const lineCounter = new LineCounter();
  return { doc: parseDocument(source, { lineCounter, version: "1.2", schema: "core" }), lineCounter };
}

/** Attach a position to a diagnostic produced after loading (cross-field rules). */
export function locate(loaded: LoadedConfig, diags: Diagnostic[]): Diagnostic[] {
  if (diags.length === 0) return diags;
  const loc: Located = loaded.located ?? reparse(loaded.source);
  return sortDiagnostics(
    diags.map((d) => {
      if (d.line > 0 || d.path.length === 0) return { ...d, file: d.file ?? loaded.file };
      const { node } = nodeAt(loc, d.path);
      return { ...d, file: d.file ?? loaded.file, ...positionOf(loc, node?.range?.[0]) };
    }),
  );
}
