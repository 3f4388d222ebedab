// Every rendered fixture passes the real validators: cloud-init's own
// user-data processing and schema, shellcheck, bash -n, systemd-analyze
// verify, JSON parsing and the manifest's sizes and hashes. And a rendering
// broken on purpose fails them, so these checks can fail.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig, renderBundle, writeBundle } from "../../src/index.js";
import { fixtureCases, FIXTURES } from "../support/fixtures.js";
import { skipUnless } from "../support/system.js";
import { describeFailures, validateBundle, VALIDATOR_NEEDS } from "../support/validators.js";

const work = mkdtempSync(join(tmpdir(), "dockinit-validate-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function renderTo(name: string): string {
  const { bundle } = renderBundle(loadConfig(join(FIXTURES, name, "dockinit.yaml")));
  const out = join(work, name);
  writeBundle(bundle!, out);
  return out;
}

describe.skipIf(skipUnless(VALIDATOR_NEEDS.all))("rendered bundles pass every validator", () => {
  it.each(fixtureCases())("%s", (name) => {
    const checks = validateBundle(renderTo(name));
    expect(describeFailures(checks)).toBe("");
    const validators = new Set(checks.map((c) => c.validator));
    for (const v of ["cloudInitUserData", "shellcheck", "bashSyntax", "systemdVerify", "jsonParse", "manifest"]) {
      expect(validators.has(v), `${v} ran`).toBe(true);
    }
  });

  it("a firewall script with an unquoted variable fails shellcheck", () => {
    const out = renderTo("seed");
    const script = join(out, "files/usr/local/sbin/dockinit-firewall");
    const text = readFileSync(script, "utf8");
    const broken = text.replace("printf '%s %s\\n' \"$version\" \"$backend\"", "printf '%s %s\\n' $version $backend");
    expect(broken).not.toBe(text);
    writeFileSync(script, broken, { mode: 0o755 });
    expect(describeFailures(validateBundle(out))).toMatch(/shellcheck/);
  });

  it("a unit with a relative ExecStart fails systemd-analyze verify", () => {
    const out = renderTo("seed");
    const unit = join(out, "files/etc/systemd/system/dockinit-firewall.service");
    writeFileSync(unit, readFileSync(unit, "utf8").replace("ExecStart=/usr/local/sbin/", "ExecStart=usr/local/sbin/"));
    expect(describeFailures(validateBundle(out))).toMatch(/systemd/);
  });

  it("a cloud-config with a numeric mode fails cloud-init's schema", () => {
    const out = renderTo("custom-range");
    // custom-range is gzip: always; write a plain broken cloud-config instead.
    writeFileSync(join(out, "user-data"), '#cloud-config\nwrite_files:\n  - path: /x\n    content: a\n    permissions: 0644\n');
    expect(describeFailures(validateBundle(out))).toMatch(/cloud-init|schema|permissions/);
  });
});
