// BENCHMARKS.md's user-data size table is this code's output, not a copy that
// can drift: re-computed here and compared as text.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { directoryReader, loadConfigString, renderBundle } from "../../src/index.js";
import { REPO, SHARED_EXAMPLES } from "../support/fixtures.js";
import { sharedExamplesPresent } from "../support/system.js";

it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("BENCHMARKS.md holds the size table of this code (node scripts/sizes.mjs --write)", async () => {
  const { sizeSection } = (await import(join(REPO, "scripts", "sizes.mjs"))) as { sizeSection: () => Promise<string> };
  const section = await sizeSection();
  expect(section).toMatch(/\| seed \| nftables \|/);
  expect(readFileSync(join(REPO, "BENCHMARKS.md"), "utf8")).toContain(section);
});

// The README's claim: every bundle is gzip now (the host's checks of itself,
// issue 29, put even the smallest over 16,384 bytes as text), and the gzip of
// each, kitchen-sink included, fits with room for the user's own parts.
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("every bundle needs gzip; gzipped, the built-in default is about 10 KB (under 12) and kitchen-sink fits", async () => {
  const { sizeSection } = (await import(join(REPO, "scripts", "sizes.mjs"))) as { sizeSection: () => Promise<string> };
  const section = await sizeSection();
  for (const name of ["built-in default", "seed", "web-host", "build-runner", "kitchen-sink"]) expect(section).toMatch(new RegExp(`^\\| ${name} \\| nftables \\| [\\d,]+ \\| [\\d,]+ \\| no \\|$`, "m"));
  const userData = readFileSync(join(REPO, "out", "user-data"));
  expect([...userData.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
  expect(userData.length).toBeLessThan(12 * 1024);
});

// gzip: never is refused for every shared example with DI047, whose hint
// names a gzipped size that fits.
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("gzip: never fails with DI047 for every shared example; gzip: auto renders each within 16,384 bytes", () => {
  const examples = readdirSync(SHARED_EXAMPLES).filter((f) => f.endsWith(".yaml")).sort();
  expect(examples).toEqual(["build-runner.yaml", "kitchen-sink.yaml", "seed.yaml", "web-host.yaml"]);
  for (const name of examples) {
    const yaml = readFileSync(join(SHARED_EXAMPLES, name), "utf8");
    const loaded = loadConfigString(yaml, { files: directoryReader(SHARED_EXAMPLES) });
    expect(loaded.model, JSON.stringify(loaded.diagnostics)).toBeDefined();
    const never = renderBundle({ ...loaded, model: { ...loaded.model!, userData: { ...loaded.model!.userData, gzip: "never" as const } } });
    expect(never.bundle, name).toBeUndefined();
    expect(never.diagnostics.filter((d) => d.severity === "error").map((d) => d.code)).toEqual(["DI047"]);
    const auto = renderBundle(loaded);
    expect(auto.bundle!.encoding, name).toBe("gzip");
    expect(auto.bundle!.userData.length).toBeLessThanOrEqual(16384);
  }
});
