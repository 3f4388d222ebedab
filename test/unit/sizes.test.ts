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

// The README's claim: the built-in default and every shared example but
// kitchen-sink ship as readable text, under EC2's 16,384 bytes without gzip.
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("the built-in default, seed, web-host and build-runner fit EC2's 16,384 bytes raw (gzip: auto leaves them readable); kitchen-sink needs gzip", async () => {
  const { sizeSection } = (await import(join(REPO, "scripts", "sizes.mjs"))) as { sizeSection: () => Promise<string> };
  const section = await sizeSection();
  for (const name of ["built-in default", "seed", "web-host", "build-runner"]) expect(section).toMatch(new RegExp(`^\\| ${name} \\| nftables \\| [\\d,]+ \\| [\\d,]+ \\| yes \\|$`, "m"));
  expect(section).toMatch(/^\| kitchen-sink \| nftables \| [\d,]+ \| [\d,]+ \| no \|$/m);
  expect(readFileSync(join(REPO, "out", "user-data"), "utf8")).toMatch(/^#cloud-config\n/);
});

// The issue's own proof, without the size script: each shared example rendered
// with gzip: never either is a bundle or fails with DI047 (over the budget),
// and only kitchen-sink fails.
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("gzip: never renders every shared example except kitchen-sink without DI047", () => {
  const examples = readdirSync(SHARED_EXAMPLES).filter((f) => f.endsWith(".yaml")).sort();
  expect(examples).toEqual(["build-runner.yaml", "kitchen-sink.yaml", "seed.yaml", "web-host.yaml"]);
  const over: string[] = [];
  for (const name of examples) {
    const yaml = readFileSync(join(SHARED_EXAMPLES, name), "utf8");
    const loaded = loadConfigString(yaml, { files: directoryReader(SHARED_EXAMPLES) });
    expect(loaded.model, JSON.stringify(loaded.diagnostics)).toBeDefined();
    const never = { ...loaded, model: { ...loaded.model!, userData: { ...loaded.model!.userData, gzip: "never" as const } } };
    const r = renderBundle(never);
    const codes = r.diagnostics.filter((d) => d.severity === "error").map((d) => d.code);
    if (r.bundle) expect(r.bundle.userData.length).toBeLessThanOrEqual(16384);
    else expect(codes).toEqual(["DI047"]);
    if (!r.bundle) over.push(name);
  }
  expect(over).toEqual(["kitchen-sink.yaml"]);
});
