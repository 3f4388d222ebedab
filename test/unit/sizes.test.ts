// BENCHMARKS.md's user-data size table is this code's output, not a copy that
// can drift: re-computed here and compared as text.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import { REPO, SHARED_EXAMPLES } from "../support/fixtures.js";
import { sharedExamplesPresent } from "../support/system.js";

it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("BENCHMARKS.md holds the size table of this code (node scripts/sizes.mjs --write)", async () => {
  const { sizeSection } = (await import(join(REPO, "scripts", "sizes.mjs"))) as { sizeSection: () => Promise<string> };
  const section = await sizeSection();
  expect(section).toMatch(/\| seed \| nftables \|/);
  expect(readFileSync(join(REPO, "BENCHMARKS.md"), "utf8")).toContain(section);
});

// The README's claim: the built-in default, the seed and build-runner ship as
// readable text, under EC2's 16,384 bytes without gzip; web-host does not yet.
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("the built-in default, seed and build-runner fit EC2's 16,384 bytes raw (gzip: auto leaves them readable); web-host and kitchen-sink need gzip", async () => {
  const { sizeSection } = (await import(join(REPO, "scripts", "sizes.mjs"))) as { sizeSection: () => Promise<string> };
  const section = await sizeSection();
  for (const name of ["built-in default", "seed", "build-runner"]) expect(section).toMatch(new RegExp(`^\\| ${name} \\| nftables \\| [\\d,]+ \\| [\\d,]+ \\| yes \\|$`, "m"));
  for (const name of ["web-host", "kitchen-sink"]) expect(section).toMatch(new RegExp(`^\\| ${name} \\| nftables \\| [\\d,]+ \\| [\\d,]+ \\| no \\|$`, "m"));
  expect(readFileSync(join(REPO, "out", "user-data"), "utf8")).toMatch(/^#cloud-config\n/);
});
