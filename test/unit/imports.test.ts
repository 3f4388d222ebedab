// The module graph of src/: no import cycles. A cycle (main.ts <-> aws-commands.ts
// was one) makes a module's exports undefined while the other initialises, and
// ties layers together that should only depend one way (STYLE.md). Type-only
// imports are erased at build time and do not count.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "../support/fixtures.js";

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith(".ts") && !p.endsWith(".d.ts") ? [p] : [];
  });
}

/** Relative value imports (static `import ... from`, `export ... from`) of each file, as resolved .ts paths. */
function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(root)) {
    const text = readFileSync(file, "utf8");
    const deps = [...text.matchAll(/^(?:import|export) (?!type )[^;]*? from "(\.[^"]+)";/gms)].map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
    graph.set(file, deps);
  }
  return graph;
}

function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (node: string, stack: string[]) => {
    state.set(node, "open");
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === "open") cycles.push(stack.slice(stack.indexOf(dep)));
      else if (!state.has(dep)) visit(dep, stack);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node, []);
  return cycles;
}

describe("src/ module graph", () => {
  it("has no import cycles", () => {
    const cycles = findCycles(importGraph(join(REPO, "src"))).map((c) => c.map((f) => relative(REPO, f)));
    expect(cycles).toEqual([]);
  });

  it("the check finds a cycle when there is one", () => {
    const g = new Map([
      ["/a.ts", ["/b.ts"]],
      ["/b.ts", ["/c.ts"]],
      ["/c.ts", ["/a.ts"]],
      ["/d.ts", ["/a.ts"]],
    ]);
    expect(findCycles(g)).toEqual([["/a.ts", "/b.ts", "/c.ts"]]);
  });
});
