// Two promises of the system tests, kept by reading them:
//
// 1. No bare drop. A connection that heard nothing proves no firewall
//    verdict by itself: a missing server, route or MASQUERADE, a FORWARD
//    policy someone else set, a container that never ran are silent too.
//    So the system tests say "dropped" only through lib/verdict.ts's
//    expectDropped, whose control (the same probe, with the rule taken away
//    or before it was loaded, gets through) is a required argument. This
//    test fails on any other way of asserting a drop in test/system: the
//    `dropped` predicate in an assertion, `reason: "timeout"` or
//    `.reason).toBe("timeout")` in one, `expect(r.ok).toBe(false)`, and an
//    expectDropped (or expectVerdicts with drops) call without its control.
// 2. The verdict table of docs/firewall.md says exactly what
//    closed-paths.test.ts asserts: both come from lib/verdict-table.ts.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { CORNER, PATHS, SOURCES, VERDICTS, verdictTableRows, WORDS } from "../system/lib/verdict-table.js";
import { REPO } from "../support/fixtures.js";

const SYSTEM = join(REPO, "test", "system");

/** The helper itself: it defines expectDropped and expectVerdicts (and passes their control through). */
const HELPER = "test/system/lib/verdict.ts";

/**
 * Files with bare drops that are not this change's to convert, each with why.
 * The list only shrinks: an entry whose file no longer has a bare drop fails.
 */
const NOT_YET_CONVERTED: Record<string, string> = {
  "test/system/rerun.test.ts": "its drops' only control is another source (the allowed client), not the same probe: convert to expectDropped",
  "test/system/harness.test.ts": "asserts the harness's own classification of silence behind a DROP rule the test inserts, not a firewall verdict",
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/** The call `expect(...)` at the root of a matcher chain (`expect(x).not.toBe(y)`), if `call` is one. */
function expectRoot(call: ts.CallExpression): ts.CallExpression | undefined {
  let e: ts.Expression = call.expression;
  while (ts.isPropertyAccessExpression(e) || ts.isCallExpression(e)) {
    e = ts.isPropertyAccessExpression(e) ? e.expression : e.expression;
    if (ts.isCallExpression(e) && ts.isIdentifier(e.expression) && e.expression.text === "expect") return e;
  }
  return undefined;
}

/** The matcher calls (`.toBe(...)` after an `expect(...)`) that `node` sits in the arguments of. */
function enclosingMatchers(node: ts.Node): ts.CallExpression[] {
  const out: ts.CallExpression[] = [];
  for (let p: ts.Node | undefined = node.parent; p; p = p.parent) {
    if (ts.isCallExpression(p) && expectRoot(p) && p.arguments.some((a) => a.pos <= node.pos && node.end <= a.end)) out.push(p);
  }
  return out;
}

const matcherName = (call: ts.CallExpression): string => (ts.isPropertyAccessExpression(call.expression) ? call.expression.name.text : "");

/** Every bare drop assertion in a source text: "line: what". */
export function bareDrops(source: string, fileName = "x.ts"): string[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const at = (n: ts.Node, what: string) => found.push(`${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}: ${what}`);
  const visit = (n: ts.Node): void => {
    // The `dropped` predicate, used in an assertion (toSatisfy(dropped), expect(dropped(r))).
    if (ts.isIdentifier(n) && n.text === "dropped" && !ts.isPropertyAccessExpression(n.parent) && !ts.isPropertyAssignment(n.parent) && !ts.isImportSpecifier(n.parent)) {
      const inExpect = enclosingMatchers(n).length > 0 || (() => {
        for (let p: ts.Node | undefined = n.parent; p; p = p.parent) if (ts.isCallExpression(p) && ts.isIdentifier(p.expression) && p.expression.text === "expect") return true;
        return false;
      })();
      if (inExpect) at(n, "the dropped predicate in an assertion");
    }
    if (ts.isCallExpression(n)) {
      const root = expectRoot(n);
      const name = matcherName(n);
      // expect(r).toMatchObject({ reason: "timeout" }), expect(r.reason).toBe("timeout")
      if (root) {
        const subject = root.arguments[0]?.getText(sf) ?? "";
        for (const arg of n.arguments) {
          const walk = (a: ts.Node): void => {
            if (ts.isPropertyAssignment(a) && a.name.getText(sf) === "reason" && ts.isStringLiteral(a.initializer) && a.initializer.text === "timeout") at(a, `reason: "timeout" in .${name}()`);
            ts.forEachChild(a, walk);
          };
          walk(arg);
          if (ts.isStringLiteral(arg) && arg.text === "timeout" && /\.reason\b/.test(subject)) at(arg, `.reason compared with "timeout" in .${name}()`);
          if (arg.kind === ts.SyntaxKind.FalseKeyword && /\.ok$/.test(subject) && name === "toBe") at(arg, "expect(….ok).toBe(false)");
        }
      }
      // expectDropped(probes) without { control }; expectVerdicts({ dropped | same }) without it.
      const callee = n.expression;
      const calleeName = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : "";
      const opts = n.arguments[1];
      const hasControl = opts !== undefined && ts.isObjectLiteralExpression(opts) && opts.properties.some((p) => p.name?.getText(sf) === "control");
      if (calleeName === "expectDropped" && !hasControl) at(n, "expectDropped without { control }");
      if (calleeName === "expectVerdicts" && !hasControl) {
        const want = n.arguments[0];
        const drops = want === undefined || !ts.isObjectLiteralExpression(want) || want.properties.some((p) => ["dropped", "same"].includes(p.name?.getText(sf) ?? ""));
        if (drops) at(n, "expectVerdicts with drops but without { control }");
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

describe("system tests: no drop without its control", () => {
  const files = tsFiles(SYSTEM).map((f) => relative(REPO, f));

  it("the lint recognises every bare form of a drop, and passes expectDropped with a control", () => {
    const cases: Array<[string, number]> = [
      ["expect(await connect()).toSatisfy(dropped);", 1],
      ["expect(r, 'why').toSatisfy(dropped);", 1],
      ["expect(dropped(r)).toBe(true);", 1],
      ["expect(r).toMatchObject({ ok: false, reason: \"timeout\" });", 1],
      ["expect(r.reason).toBe(\"timeout\");", 1],
      ["expect(r.ok).toBe(false);", 1],
      ["await v.expectDropped(probes);", 1],
      ["await v.expectDropped(probes, {});", 1],
      ["await v.expectDropped(probes, { control: withoutDockinit(fw) });", 0],
      ["await v.expectDropped(p, { control: before });", 0],
      ["await v.expectVerdicts({ through, dropped });", 1],
      ["await v.expectVerdicts({ same: [p] });", 1],
      ["await v.expectVerdicts(want);", 1],
      ["await v.expectVerdicts({ through, dropped, same }, { control: withoutDockinit(fw) });", 0],
      ["await v.expectVerdicts({ through: [p] });", 0],
      ["expect(r).toSatisfy(got);", 0],
      ["it(\"a blocked destination is dropped\", () => undefined);", 0],
      ["if (!res.ok) return { ...res, reason: \"timeout\" };", 0],
      ["expect(r.ok).toBe(true);", 0],
    ];
    expect(cases.map(([src]) => [src, bareDrops(src).length])).toEqual(cases);
  });

  it("test/system has no bare drop assertion (every drop goes through expectDropped, with its control)", () => {
    const bare = files.filter((f) => f !== HELPER && !Object.hasOwn(NOT_YET_CONVERTED, f)).flatMap((f) => bareDrops(readFileSync(join(REPO, f), "utf8"), f).map((l) => `${f}:${l}`));
    expect(bare).toEqual([]);
  });

  it("the files not yet converted still need it (the list only shrinks)", () => {
    for (const f of Object.keys(NOT_YET_CONVERTED)) {
      expect(files, f).toContain(f);
      expect(bareDrops(readFileSync(join(REPO, f), "utf8"), f).length, `${f} has no bare drop left: take it off NOT_YET_CONVERTED`).toBeGreaterThan(0);
    }
  });

  it("the tests that assert drops use the helper", () => {
    for (const f of ["test/system/policies.test.ts", "test/system/metadata.test.ts", "test/system/closed-paths.test.ts"]) {
      expect(readFileSync(join(REPO, f), "utf8"), f).toMatch(/\.expect(Dropped|Verdicts)\(/);
    }
  });
});

/** The Markdown table whose header row starts with `corner`, as rows of trimmed cells (the separator row left out). */
function markdownTable(text: string, corner: string): string[][] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`| ${corner} |`));
  if (start < 0) throw new Error(`no table starting with "| ${corner} |"`);
  const rows: string[][] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith("|")) break;
    const cells = line.replace(/^\|/, "").replace(/\|\s*$/, "").split("|").map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    rows.push(cells);
  }
  return rows;
}

describe("docs/firewall.md's verdict table is what closed-paths.test.ts asserts", () => {
  const doc = readFileSync(join(REPO, "docs", "firewall.md"), "utf8");

  it("every header, row label and cell is the shared data table's (lib/verdict-table.ts)", () => {
    expect(markdownTable(doc, CORNER)).toEqual(verdictTableRows());
  });

  it("every cell has a verdict closed-paths.test.ts knows how to assert, and the test runs the shared table", () => {
    for (const s of SOURCES) for (const p of PATHS) expect(Object.keys(WORDS)).toContain(VERDICTS[s.id][p.id]);
    const test = readFileSync(join(SYSTEM, "closed-paths.test.ts"), "utf8");
    expect(test).toMatch(/from "\.\/lib\/verdict-table\.js"/);
    expect(test).toMatch(/for \(const source of SOURCES\)/);
  });

  it("the table reader finds a changed cell", () => {
    const changed = doc.replace(/^\| a listed network \(its own family\) \|.*$/m, (row) => row.replace(/\| drop \|\s*$/, "| pass |"));
    expect(changed).not.toBe(doc);
    expect(markdownTable(changed, CORNER)).not.toEqual(verdictTableRows());
  });
});
