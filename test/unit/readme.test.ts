// Every example in README.md runs: the shell commands (against the built
// CLI), the library examples (as written, importing "dockinit"), and the
// diagnostic it shows is exactly what dockinit prints.
import { execFileSync, spawnSync } from "node:child_process";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { configJsonSchema, loadConfig, renderBundle } from "../../src/index.js";
import { REPO } from "../support/fixtures.js";
import { commandLines, readmeBlocks } from "../support/readme.js";

const BIN = join(REPO, "bin", "dockinit.cjs");
const blocks = readmeBlocks();
const work = mkdtempSync(join(tmpdir(), "dockinit-readme-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Run a README command line with `npx dockinit`/`dockinit` meaning the built CLI. */
function sh(line: string, cwd: string) {
  // Only the command word: "dockinit.schema.json" stays a file name.
  const script = line.replace(/(^|&&\s*|\|\s*)(npx )?dockinit(?=\s|$)/g, '$1"$DOCKINIT"');
  // bin/dockinit.cjs starts with `#!/usr/bin/env node`: the node first on PATH
  // is the one running these tests (CI runs them under each supported Node).
  const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
  return spawnSync("bash", ["-c", script], { cwd, encoding: "utf8", env: { ...process.env, PATH, DOCKINIT: BIN, NO_COLOR: "1" }, timeout: 30_000 });
}

describe.skipIf(!existsSync(BIN))("README examples", () => {
  it("the first command renders the default bundle into out/", () => {
    const first = commandLines(blocks.find((b) => b.section.startsWith("Two commands"))!)[0]!;
    expect(first).toBe("npm ci && npx dockinit render");
    const dir = join(work, "fresh");
    mkdirSync(dir);
    const r = sh(first.replace("npm ci && ", ""), dir);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dir, "out", "manifest.json"), "utf8")).toBe(readFileSync(join(REPO, "out", "manifest.json"), "utf8"));
  });

  it("the test command is the one .ci/run runs", () => {
    const block = blocks.find((b) => b.code.includes("DOCKINIT_REQUIRE_SYSTEM_TESTS=1 npm test"))!;
    expect(readFileSync(join(REPO, ".ci", "run"), "utf8")).toContain(block.code.trim());
  });

  it("every command under 'Using it' succeeds, in order", () => {
    const dir = join(work, "using");
    mkdirSync(dir);
    const lines = commandLines(blocks.find((b) => b.section === "Using it")!);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) {
      const r = sh(line, dir);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
    }
    expect(JSON.parse(readFileSync(join(dir, "dockinit.schema.json"), "utf8")).title).toBe("dockinit.yaml");
    expect(readFileSync(join(dir, "user-data")).equals(readFileSync(join(dir, "out", "user-data")))).toBe(true);
  });

  it("the diagnostic shown is exactly what dockinit prints for that file", () => {
    const shown = blocks.find((b) => b.code.includes("error DI021"))!.code;
    const dir = join(work, "bad");
    mkdirSync(dir);
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nephemeral_ports:\n  to: 61000-49152\n");
    const r = sh("dockinit check", dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(shown);
  });

  it("the library example runs as written", () => {
    const code = blocks.filter((b) => b.lang === "ts")[0]!.code;
    // The example is plain JavaScript too: run it with node, importing the
    // built package through its self-reference, as a user's script would.
    const file = join(REPO, ".cache", "readme", "library-example.mjs");
    mkdirSync(join(REPO, ".cache", "readme"), { recursive: true });
    writeFileSync(file, code);
    const out = execFileSync(process.execPath, [file], { cwd: REPO, encoding: "utf8" });
    expect(out).toMatch(/^\d+ bytes of user-data\n/);
    expect(out).toContain("/usr/local/sbin/dockinit-firewall");
  });

  it("the configuration table names exactly the schema's keys", () => {
    // Leaf keys of the JSON Schema, as dotted paths (lists' item keys are
    // described inline in the table, so the walk stops at arrays).
    const leaves: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      const props = node.properties as Record<string, Record<string, unknown>> | undefined;
      if (!props) return void leaves.push(path);
      for (const [k, v] of Object.entries(props)) walk(v, path ? `${path}.${k}` : k);
    };
    walk(configJsonSchema(), "");
    const table = readFileSync(join(REPO, "README.md"), "utf8").split("## Configuration")[1]!.split("\n## ")[0]!;
    const documented = new Set([...table.matchAll(/^\| `([a-z_.$]+)`(?:, `([a-z_.]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter(Boolean) as string[]));
    const covered = (leaf: string) => [...documented].some((d) => leaf === d || leaf.startsWith(`${d}.`));
    expect(leaves.filter((l) => l !== "$schema" && !covered(l))).toEqual([]);
    const known = (d: string) => leaves.some((l) => l === d || l.startsWith(`${d}.`));
    expect([...documented].filter((d) => !known(d))).toEqual([]);
  });

  it("the vitest example is test/unit/readme-snapshot.test.ts, verbatim", () => {
    const code = blocks.filter((b) => b.lang === "ts")[1]!.code;
    expect(readFileSync(join(REPO, "test", "unit", "readme-snapshot.test.ts"), "utf8")).toBe(code);
  });

  describe("Infrastructure as code", () => {
    const iac = blocks.filter((b) => b.section === "Infrastructure as code");

    it("Terraform: HashiCorp's parser reads the recipe; user_data is filebase64 of render's out/user-data, and the ignore_changes are as the README says", async () => {
      const hcl = iac.find((b) => b.lang === "hcl")!.code;
      const tf = (await parseHcl("main.tf", hcl)) as {
        resource: Record<string, Record<string, Record<string, unknown>[]>>;
      };
      const lt = tf.resource.aws_launch_template!.build_runner![0] as { name: string; user_data: string; lifecycle: { ignore_changes: string[] }[] };
      expect(lt.name).toBe(loadConfig(join(REPO, "test/fixtures/build-runner/dockinit.yaml")).model?.launchTemplate?.name);
      // filebase64 (user_data is base64), of the file `dockinit render` writes (out/user-data, DESIGN's layout).
      expect(lt.user_data).toBe('${filebase64("${path.module}/out/user-data")}');
      expect(lt.lifecycle[0]!.ignore_changes).toEqual(["${user_data}", "${default_version}"]);
      const group = tf.resource.aws_autoscaling_group!.web![0] as { launch_template: { id: string; version: string }[]; lifecycle: { ignore_changes: string[] }[] };
      expect(group.launch_template[0]).toEqual({ id: "${aws_launch_template.build_runner.id}", version: "$Default" });
      expect(group.lifecycle[0]!.ignore_changes).toEqual(["${launch_template}"]);
      // The parser is strict: the same check fails on a broken block.
      await expect(parseHcl("main.tf", hcl.replace("lifecycle {", "lifecycle {{"))).rejects.toThrow();
    });

    it("AWS CDK: the example, run with a stand-in for aws-cdk-lib, synthesizes a launch template whose UserData is the bundle's bytes", () => {
      const code = iac.find((b) => b.lang === "ts")!.code;
      expect(code).toContain('from "aws-cdk-lib"');
      const dir = join(REPO, ".cache", "readme", "cdk");
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const standin = join(REPO, "test", "support", "cdk-standin.mjs");
      // Only the import specifiers change: aws-cdk-lib and aws-cdk-lib/aws-ec2 → the stand-in.
      const file = join(dir, "cdk-example.mjs");
      writeFileSync(file, code.replace(/from "aws-cdk-lib(\/aws-ec2)?"/g, `from ${JSON.stringify(standin)}`));
      execFileSync(process.execPath, [file], { cwd: REPO, encoding: "utf8", env: { ...process.env, CDK_STANDIN_OUT: dir } });
      const template = JSON.parse(readFileSync(join(dir, "BuildRunner.template.json"), "utf8")) as {
        Resources: Record<string, { Type: string; Properties: { LaunchTemplateName: string; LaunchTemplateData: { UserData: string } } }>;
      };
      const lt = template.Resources.LaunchTemplate!;
      expect(lt.Type).toBe("AWS::EC2::LaunchTemplate");
      expect(lt.Properties.LaunchTemplateName).toBe("build-runner");
      const { bundle } = renderBundle(loadConfig(join(REPO, "test/fixtures/build-runner/dockinit.yaml")));
      expect(Buffer.from(lt.Properties.LaunchTemplateData.UserData, "base64").equals(bundle!.userData)).toBe(true);
    });
  });
});

describe("the Docker matrix as README.md, .ci/run and the compatibility table name it", () => {
  it("CI's matrix is the table's CI rows, and the full-matrix command names every engine", async () => {
    const ci = readFileSync(join(REPO, ".ci", "run"), "utf8");
    const compat = (await import("../../scripts/compat.mjs" as string)) as { CI_MATRIX: string[]; CI_BOOTS: string[]; BOOTABLE: Set<string> };
    expect(/^export DOCKINIT_DOCKER_MATRIX=(\S+)$/m.exec(ci)?.[1]?.split(",")).toEqual(compat.CI_MATRIX);
    expect(/^export DOCKINIT_BOOT_MATRIX=(\S+)$/m.exec(ci)?.[1]?.split(",")).toEqual(compat.CI_BOOTS);
    const { BOOT_ROOT, MOBY_ENGINES } = await import("../system/lib/engine.js");
    expect([...compat.BOOTABLE].sort()).toEqual(Object.keys(BOOT_ROOT).sort());
    const { SUITES } = await import("../support/guest.js");
    const full = blocks.find((b) => b.code.includes("node scripts/compat.mjs --write"))!.code;
    const named = /DOCKINIT_DOCKER_MATRIX=(\S+)/.exec(full)?.[1]?.split(",") ?? [];
    expect([...named].sort()).toEqual([...Object.keys(SUITES), ...Object.keys(MOBY_ENGINES)].sort());
  });
});
