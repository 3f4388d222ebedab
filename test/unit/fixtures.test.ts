// Golden fixtures: each case renders to exactly the files under expected/,
// reviewed as files; a second render is byte-identical.
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { bundleEntries, loadConfig, renderBundle } from "../../src/index.js";
import { fixtureCases, FIXTURES, SHARED_EXAMPLES } from "../support/fixtures.js";
import { nonEmpty, sharedExamplesPresent } from "../support/system.js";

function render(name: string) {
  const loaded = loadConfig(join(FIXTURES, name, "dockinit.yaml"));
  expect(loaded.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  const { bundle, diagnostics } = renderBundle(loaded);
  expect(diagnostics.filter((d) => d.severity === "error")).toEqual([]);
  return bundle!;
}

describe.each(nonEmpty(fixtureCases(), "golden fixtures"))("fixture %s", (name) => {
  it("matches the golden files", async () => {
    const bundle = render(name);
    for (const entry of bundleEntries(bundle)) {
      const golden = join(FIXTURES, name, "expected", entry.path);
      // A missing golden is a failure, not something to write: only `vitest -u` writes goldens.
      if (!inject("updating")) expect(existsSync(entry.path === "user-data" && bundle.manifest.userData.encoding === "gzip" ? `${golden}.decoded` : golden), `golden ${golden} is missing (vitest -u writes it)`).toBe(true);
      if (entry.path === "user-data" && bundle.manifest.userData.encoding === "gzip") {
        // Binary on disk is unreviewable: keep the decoded text as the golden
        // file; the manifest's sha256 pins the exact gzip bytes.
        await expect(gunzipSync(entry.content as Buffer).toString("utf8")).toMatchFileSnapshot(`${golden}.decoded`);
        expect(createHash("sha256").update(entry.content).digest("hex")).toBe(bundle.manifest.userData.sha256);
      } else {
        await expect(entry.content.toString()).toMatchFileSnapshot(golden);
      }
    }
  });

  it("holds no golden file the bundle no longer produces (a stale file would be reviewed as shipped)", () => {
    const bundle = render(name);
    const produced = bundleEntries(bundle).map((e) => (e.path === "user-data" && bundle.manifest.userData.encoding === "gzip" ? "user-data.decoded" : e.path));
    const expectedDir = join(FIXTURES, name, "expected");
    const onDisk = (readdirSync(expectedDir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
      .filter((d) => d.isFile())
      .map((d) => relative(expectedDir, join(d.parentPath, d.name)));
    expect(nonEmpty(onDisk, `golden files of ${name}`).sort()).toEqual([...produced].sort());
  });

  it("writes dockinit's own files in ASCII (so MIME parts stay 7bit and readable)", () => {
    const own = render(name).files.filter((f) => f.origin === "dockinit");
    const config = readFileSync(join(FIXTURES, name, "dockinit.yaml"), "utf8");
    // A config's own non-ASCII text (a name, a DNS search domain) may appear.
    if (/[^\t\n -~]/.test(config)) return;
    for (const f of own) expect(f.content.match(/[^\t\n -~].{0,20}/)?.[0], f.path).toBeUndefined();
  });

  it("renders byte-identical output twice", () => {
    const a = bundleEntries(render(name));
    const b = bundleEntries(render(name));
    expect(b.map((e) => e.path)).toEqual(a.map((e) => e.path));
    a.forEach((e, i) => expect(Buffer.compare(Buffer.from(e.content), Buffer.from(b[i]!.content))).toBe(0));
  });
});

describe.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("shared examples", () => {
  const examples = existsSync(SHARED_EXAMPLES) ? readdirSync(SHARED_EXAMPLES).filter((f) => f.endsWith(".yaml")) : [];
  // The same lines but for the header comment: the shared examples are read-only here, and
  // build-runner's header said userns-remap rules out --network host (--userns=host allows it).
  const body = (text: string) => text.replace(/^(#.*\n)+/, "");
  it.each(nonEmpty(examples, "shared examples"))("%s has a fixture copy that is up to date", (file) => {
    const name = file.replace(/\.yaml$/, "");
    expect(body(readFileSync(join(FIXTURES, name, "dockinit.yaml"), "utf8"))).toBe(body(readFileSync(join(SHARED_EXAMPLES, file), "utf8")));
  });
});
