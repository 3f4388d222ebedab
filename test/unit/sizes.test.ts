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

// The README's claim: which bundles ship as readable text, under EC2's
// 16,384 bytes without gzip. Since the checker (dockinit-firewall watch and its
// unit) ships with every bundle, none does: gzip: auto compresses them all.
const FITS_RAW: string[] = [];
const SIZED = ["built-in default", "seed", "web-host", "build-runner", "kitchen-sink"];
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))(`of the built-in default and the shared examples, ${FITS_RAW.length === 0 ? "none fits" : `${FITS_RAW.join(", ")} fit`} EC2's 16,384 bytes raw (gzip: auto leaves those readable); the others need gzip`, async () => {
  const { sizeSection } = (await import(join(REPO, "scripts", "sizes.mjs"))) as { sizeSection: () => Promise<string> };
  const section = await sizeSection();
  for (const name of SIZED) expect(section).toMatch(new RegExp(`^\\| ${name} \\| nftables \\| [\\d,]+ \\| [\\d,]+ \\| ${FITS_RAW.includes(name) ? "yes" : "no"} \\|$`, "m"));
  // out/ is the built-in default's bundle.
  const raw = readFileSync(join(REPO, "out", "user-data"));
  if (FITS_RAW.includes("built-in default")) expect(raw.toString("utf8")).toMatch(/^#cloud-config\n/);
  else expect([...raw.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
});

// The issue's own proof, without the size script: each shared example rendered
// with gzip: never either is a bundle or fails with DI047 (over the budget),
// and exactly those that do not fit fail.
it.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("gzip: never renders exactly the shared examples that fit, and refuses the others with DI047", () => {
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
  expect(over).toEqual(examples.filter((e) => !FITS_RAW.includes(e.replace(/\.yaml$/, ""))));
});
