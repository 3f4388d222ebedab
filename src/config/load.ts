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
  if (value === null || value === undefined) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "boolean") return `the boolean ${String(value)}`;
  return `the ${typeof value} ${JSON.stringify(value)}`;
}

/** zod's `expected` names, as a user reads them. */
const EXPECTED: Record<string, string> = {
  boolean: "a boolean (true or false)",
  number: "a number",
  int: "a whole number",
  string: "a string",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

const expectedName = (expected: string): string => EXPECTED[expected] ?? expected;

/** Words YAML 1.1 (cloud-init, many editors and habits) reads as booleans and YAML 1.2 as strings. */
const YAML11_BOOLEAN = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$/;

/**
 * How to write a value of the expected type, from what was written: the
 * catalogue's DI011 hint cannot know that `yes` is meant as true or that a
 * quoted "8080" only needs its quotes removed.
 */
function typeHint(expected: string, value: unknown, node: Node | undefined): string {
  const written = isScalar(node) && typeof node.source === "string" ? node.source : undefined;
  const quoted = isScalar(node) && (node.type === "QUOTE_DOUBLE" || node.type === "QUOTE_SINGLE");
  if (value === null || value === undefined) return `write ${expectedName(expected)} after the colon, or remove the key to get its default`;
  if (expected === "boolean") {
    if (typeof value === "string" && YAML11_BOOLEAN.test(value)) {
      const meant = /^(y|yes|true|on)$/i.test(value) ? "true" : "false";
      if (quoted) return `remove the quotes: write ${meant}`;
      return `write ${meant}: dockinit reads YAML 1.2, where \`${value}\` is a string, not a boolean`;
    }
    return "write true or false, without quotes";
  }
  if (expected === "number" || expected === "int") {
    const whole = expected === "int";
    if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return quoted ? `remove the quotes: write ${value.trim()}` : `write ${value.trim()} as a plain number`;
    if (whole && typeof value === "number") return `write a whole number, e.g. ${Math.round(value)}`;
    return `write ${whole ? "a whole number" : "a number"} without quotes, e.g. 8080`;
  }
  if (expected === "string") {
    if (typeof value === "number" || typeof value === "boolean") return `quote it to keep it as written: "${written ?? String(value)}"`;
    return 'write one value, in quotes if it contains ": " or starts with a YAML indicator (e.g. "- x")';
  }
  if (expected === "array") {
    if (typeof value !== "object") return `write a list, even of one entry: [${written ?? JSON.stringify(value)}], or one "- entry" per line`;
    return 'write a list: [a, b] or one "- entry" per line';
  }
  if (expected === "object" || expected === "record") return "write a mapping: `key: value` lines indented under this key, or { key: value }";
  return `give ${expectedName(expected)}`;
}

/** One alternative of a union, as a user reads it: "auto", a boolean (true or false), a list. */
function describeAlternative(issues: readonly z.core.$ZodIssue[]): string | undefined {
  const first = issues[0];
  if (!first || first.path.length > 0) return undefined;
  if (first.code === "invalid_value") return first.values.map((v) => JSON.stringify(v)).join(", ");
  if (first.code === "invalid_type") return expectedName(first.expected);
  return undefined;
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
    return [at(diagnostic("DI011", `expected ${expectedName(issue.expected)}, got ${describeType(value)}`, path, typeHint(issue.expected, value, node)), here)];
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
    // A value of one alternative's shape that fails only its checks or inside
    // (runcmd: [[echo, 1]], source_version: 0): that alternative's own
    // problems are the ones to report, where they are.
    const inner = issue.errors.filter((branch) => branch.length > 0 && describeAlternative(branch) === undefined);
    if (inner.length === 1) {
      return inner[0]!.flatMap((i) => issueToDiagnostics({ ...i, path: [...issue.path, ...i.path] } as z.core.$ZodIssue, loc, input));
    }
    const alternatives = issue.errors.map(describeAlternative);
    const value = getIn(input, path);
    if (alternatives.every((a) => a !== undefined)) {
      const wanted = alternatives.length > 1 ? `${alternatives.slice(0, -1).join(", ")} or ${alternatives[alternatives.length - 1]}` : alternatives[0]!;
      return [at(diagnostic("DI011", `expected ${wanted}, got ${describeType(value)}`, path, `write ${wanted}`), here)];
    }
    return [at(diagnostic("DI011", `${describeType(value)} is not accepted here`, path), here)];
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

/** At most this many names in a message, then "…": a message is one line, however many anchors a file has. */
const NAMES_SHOWN = 5;

const someNames = (names: Iterable<string>, sigil: string): string => {
  const all = [...names];
  const shown = all.slice(0, NAMES_SHOWN).map((n) => `${sigil}${n}`);
  return all.length > NAMES_SHOWN ? `${shown.join(", ")}, …` : shown.join(", ");
};

/**
 * Refuse YAML features that make a config mean something other than what it
 * shows. Each kind of problem is reported once, at its first use, with a
 * count: an alias bomb or an anchor reused sixty times is one mistake (and the
 * fix, writing values out, is the same for all), not a screen of errors.
 */
function rejectIndirection(loc: Located): Diagnostic[] {
  const first = new Map<string, number | undefined>();
  const count = new Map<string, number>();
  const anchors = new Set<string>();
  const aliases = new Set<string>();
  let aliasUses = 0;
  const seen = (kind: string, offset: number | undefined) => {
    const earlier = first.get(kind);
    if (!first.has(kind) || (offset !== undefined && (earlier === undefined || offset < earlier))) first.set(kind, offset);
    count.set(kind, (count.get(kind) ?? 0) + 1);
  };
  // One Node visitor for scalars, maps, sequences and aliases (a Scalar visitor would replace it for scalars).
  visit(loc.doc, {
    Alias(_, node) {
      aliases.add(node.source);
      aliasUses++;
      seen("anchor", node.range?.[0]);
    },
    Node(_, node) {
      if (isScalar(node) && typeof node.value === "string" && LONE_SURROGATE.test(node.value)) seen("surrogate", node.range?.[0]);
      if (node.anchor) {
        anchors.add(node.anchor);
        seen("anchor", node.range?.[0]);
      }
      if (node.tag && !/^tag:yaml\.org,2002:(str|int|bool|float|null|map|seq)$/.test(node.tag)) seen(`tag ${node.tag}`, node.range?.[0]);
    },
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && pair.key.value === "<<") seen("merge", pair.key.range?.[0]);
    },
  });
  const times = (kind: string) => {
    const n = count.get(kind) ?? 0;
    return n > 1 ? ` (${n} places)` : "";
  };
  const out: Diagnostic[] = [];
  for (const [kind, offset] of first) {
    let what: string;
    let hint: string | undefined;
    if (kind === "anchor") {
      const a = anchors.size > 0 ? `${anchors.size === 1 ? "anchor" : `${anchors.size} anchors`} ${someNames(anchors, "&")}` : "";
      const u = aliasUses > 0 ? `${aliasUses === 1 ? "alias" : `${aliasUses} aliases`} ${someNames(aliases, "*")}` : "";
      what = `${[a, u].filter(Boolean).join(" and ")} ${anchors.size + aliasUses === 1 ? "is" : "are"} not allowed`;
    } else if (kind === "surrogate") {
      what = `an escape makes a lone UTF-16 surrogate, which is not a character${times(kind)}`;
      hint = "escape the whole character (\\U0001F600) or write it as UTF-8";
    } else if (kind === "merge") {
      what = `merge key << is not allowed${times(kind)}`;
    } else {
      what = `${kind} is not allowed${times(kind)}`;
    }
    out.push({ ...diagnostic("DI003", what, [], hint), ...positionOf(loc, offset) });
  }
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

/**
 * C0 control characters other than tab, line feed and carriage return: YAML
 * text may not contain them (YAML 1.2, 5.1), yet the yaml package reads them
 * in comments and plain scalars. A file holding one is almost always binary
 * (or UTF-16), and echoing its lines would write control sequences to the
 * user's terminal. DEL, C1 and U+FFFE are left to the YAML reader: the yaml
 * package writes them unescaped in quoted scalars, so a config it wrote may
 * hold them.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/;

const CONTROL_NAMES: Record<number, string> = { 0: "NUL", 0x1b: "ESC" };

/** 1-based line and column (UTF-16 units, as LineCounter counts) of `index` in `text`. */
function lineColOf(text: string, index: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < index; i = text.indexOf("\n", i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: index - start + 1 };
}

/** DI006 for the first control character of `text`, whose UTF-8 bytes start at `byteBase` of the file. */
function controlCharacter(text: string, byteBase = 0): Diagnostic | undefined {
  const m = CONTROL.exec(text);
  if (!m) return undefined;
  const code = m[0].charCodeAt(0);
  const name = `U+${code.toString(16).toUpperCase().padStart(4, "0")}${CONTROL_NAMES[code] ? ` ${CONTROL_NAMES[code]}` : ""}`;
  const byte = byteBase + Buffer.byteLength(text.slice(0, m.index));
  return { ...diagnostic("DI006", `the file is not text: byte ${byte} is the control character ${name}`), ...lineColOf(text, m.index) };
}

/**
 * Offset of the first byte that does not belong to a well-formed UTF-8
 * sequence (Unicode 15, table 3-7: no overlong forms, no surrogates, nothing
 * above U+10FFFF), at the sequence's first byte; -1 when all are well formed.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    // The length of the sequence and the range its second byte must fall in.
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) low = 0xa0;
      if (b === 0xed) high = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) low = 0x90;
      if (b === 0xf4) high = 0x8f;
    } else return i;
    if (i + length > bytes.length) return i;
    const second = bytes[i + 1]!;
    if (second < low || second > high) return i;
    for (let k = 2; k < length; k++) {
      const c = bytes[i + k]!;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += length;
  }
  return -1;
}

/**
 * The text of a configuration file, or DI006 at its first byte that is not
 * UTF-8 text. Node's `readFileSync(path, "utf8")` would replace invalid bytes
 * with U+FFFD and parse on, so a Latin-1 or binary file became a screen of
 * errors echoing its bytes; decoding strictly makes it one error. The BOM is
 * kept, as readFileSync keeps it: the YAML reader skips it, and byte offsets
 * and line:col stay the file's own.
 */
export function decodeConfigText(bytes: Uint8Array): { source: string; diagnostic?: undefined } | { source?: undefined; diagnostic: Diagnostic } {
  try {
    const source = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    const control = controlCharacter(source);
    return control ? { diagnostic: control } : { source };
  } catch {
    const bad = firstInvalidUtf8(bytes);
    // Everything before the bad byte is UTF-8: a control character there comes first.
    const before = new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes.subarray(0, Math.max(0, bad)));
    const control = controlCharacter(before);
    if (control) return { diagnostic: control };
    const hex = (bytes[bad] ?? 0).toString(16).toUpperCase().padStart(2, "0");
    return { diagnostic: { ...diagnostic("DI006", `the file is not UTF-8 text: byte ${bad} (0x${hex}) does not begin a valid UTF-8 sequence`), ...lineColOf(before, before.length) } };
  }
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
  // Before the YAML reader: a binary file would give one error per line, each echoing its bytes.
  const control = controlCharacter(source);
  if (control) return { file, source, diagnostics: withFile([control]) };
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
    return { file, source, diagnostics: withFile([{ ...diagnostic("DI011", `expected a mapping at the top level, got ${describeType(input)}`, [], "dockinit.yaml is a mapping of `key: value` lines, starting with `version: 1`"), line: 1, col: 1 }]) };
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
