// scripts/mutate.mjs cannot rot quietly: every mutation's text is in its file
// exactly once, and the tests it names exist. (Whether each mutation is
// caught is mutate.mjs's own run, in CI; that run also fails when a named
// test was renamed.)
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { REPO } from "../support/fixtures.js";

interface Catcher {
  file: string;
  test: string;
}
interface Mutation {
  id: string;
  breaks: string;
  file: string;
  from: string;
  to: string;
  unit: Catcher[];
  system: Catcher[];
}
type Located = { at: number; error?: undefined } | { error: string };

const { MUTATIONS, locate } = (await import(pathToFileURL(join(REPO, "scripts", "mutate.mjs")).href)) as { MUTATIONS: Mutation[]; locate: (text: string, m: Mutation) => Located };

describe("scripts/mutate.mjs", () => {
  it("names each mutation once", () => {
    expect(MUTATIONS.length).toBeGreaterThan(0);
    expect(new Set(MUTATIONS.map((m) => m.id)).size).toBe(MUTATIONS.length);
  });

  it.each(MUTATIONS.map((m) => [m.id, m] as const))("%s: its text is in its file exactly once, and it changes it", (_, m) => {
    expect(existsSync(join(REPO, m.file)), m.file).toBe(true);
    expect(locate(readFileSync(join(REPO, m.file), "utf8"), m).error).toBeUndefined();
    expect(m.to).not.toBe(m.from);
  });

  it.each(MUTATIONS.map((m) => [m.id, m] as const))("%s: a unit test must catch it, and every test file it names exists", (_, m) => {
    expect(m.unit.length).toBeGreaterThan(0);
    for (const c of [...m.unit, ...m.system]) expect(existsSync(join(REPO, c.file)), c.file).toBe(true);
    for (const c of m.unit) expect(c.file).toMatch(/^test\/unit\/.*\.test\.ts$/);
    for (const c of m.system) expect(c.file).toMatch(/^test\/system\/.*\.test\.ts$/);
  });
});
