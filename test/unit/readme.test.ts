// Every example in README.md (and docs/) runs: the shell commands (against
// the built CLI), the install from a packed tarball, the library examples (as
// written, importing "dockinit" from that install), and the diagnostic it
// shows is exactly what dockinit prints. The AWS examples run against moto in
// test/system/readme-aws.test.ts, the CDK recipe in test/system/cdk.test.ts.
import { execFileSync, spawnSync } from "node:child_process";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { configJsonSchema, loadConfig, loadDefaultConfig, renderBundle } from "../../src/index.js";
import { REPO } from "../support/fixtures.js";
import { commandLines, docSection, readmeBlocks, type CodeBlock } from "../support/readme.js";

const BIN = join(REPO, "bin", "dockinit.cjs");
const blocks = readmeBlocks();
const work = mkdtempSync(join(tmpdir(), "dockinit-readme-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The node running these tests first on PATH: bin/dockinit.cjs starts with `#!/usr/bin/env node` (CI runs them under each supported Node). */
const PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;

/** Run a README command line with `npx dockinit`/`dockinit` meaning the built CLI. */
function sh(line: string, cwd: string) {
  // Only the command word: "dockinit.schema.json" stays a file name.
  const script = line.replace(/(^|&&\s*|\|\s*)(npx )?dockinit(?=\s|$)/g, '$1"$DOCKINIT"');
  return spawnSync("bash", ["-c", script], { cwd, encoding: "utf8", env: { ...process.env, PATH, DOCKINIT: BIN, NO_COLOR: "1" }, timeout: 30_000 });
}

/** The one block in `file` under `section` (of that language) a test is about. */
function block(section: string, lang: string, file = "README.md", nth = 0): CodeBlock {
  const found = blocks.filter((b) => b.file === file && b.section === section && b.lang === lang)[nth];
  if (!found) throw new Error(`${file} has no ${lang || "plain"} block #${nth + 1} under "${section}"`);
  return found;
}

const version = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;

let project: string | undefined;
/**
 * A user's project with dockinit installed from the tarball `npm pack` makes,
 * as the Install section says. `npm pack --ignore-scripts`: the build that
 * `npm pack` would run (prepare) already ran (npm test builds first), and a
 * test must not rebuild the CLI other tests are running. Without the network,
 * the install is what `npm install ./dockinit-VERSION.tgz` leaves: the tarball
 * unpacked into node_modules/dockinit, its bin linked into node_modules/.bin,
 * its dependencies (the clone's node_modules, which npm ci filled from the
 * same lockfile) found beside it.
 */
function packedProject(): string {
  if (project) return project;
  const dir = join(work, "project");
  mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
  writeFileSync(join(dir, "package.json"), `${JSON.stringify({ name: "my-project", private: true }, null, 2)}\n`);
  const pack = spawnSync("npm", ["pack", "--ignore-scripts", "--pack-destination", dir], { cwd: REPO, encoding: "utf8", env: { ...process.env, PATH }, timeout: 60_000 });
  expect(pack.status, pack.stderr).toBe(0);
  expect(readdirSync(dir).filter((f) => f.endsWith(".tgz"))).toEqual([`dockinit-${version}.tgz`]);
  const pkg = join(dir, "node_modules", "dockinit");
  mkdirSync(pkg);
  execFileSync("tar", ["xzf", join(dir, `dockinit-${version}.tgz`), "-C", pkg, "--strip-components=1"]);
  symlinkSync(join(REPO, "node_modules"), join(pkg, "node_modules"), "dir");
  const bin = (JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as { bin: Record<string, string> }).bin;
  for (const [name, file] of Object.entries(bin)) symlinkSync(join("..", "dockinit", file), join(dir, "node_modules", ".bin", name));
  project = dir;
  return dir;
}

/** Run `code` as a file of the packed project (so "dockinit" is the installed package), from its folder. */
function runInProject(name: string, code: string): string {
  const dir = packedProject();
  writeFileSync(join(dir, name), code);
  return execFileSync(process.execPath, [join(dir, name)], { cwd: dir, encoding: "utf8", env: { ...process.env, PATH, NO_COLOR: "1" } });
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
    const found = blocks.find((b) => b.code.includes("DOCKINIT_REQUIRE_SYSTEM_TESTS=1 npm test"))!;
    expect(found).toMatchObject({ file: "README.md", section: "Two commands on a fresh machine" });
    expect(readFileSync(join(REPO, ".ci", "run"), "utf8")).toContain(found.code.trim());
  });

  it("Install: npm pack makes the tarball the README names; installed from it, npx dockinit runs the package's CLI", () => {
    expect(commandLines(block("Install", "sh", "README.md", 0))).toEqual(["npm ci && npm run build", "npm pack"]);
    const lines = commandLines(block("Install", "sh", "README.md", 1));
    expect(lines).toEqual([`npm install ./dockinit-${version}.tgz`, "npx dockinit --version"]);
    const dir = packedProject();
    const r = spawnSync("bash", ["-c", lines[1]!], { cwd: dir, encoding: "utf8", env: { ...process.env, PATH, NO_COLOR: "1" }, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it("every Quick start command succeeds, in order, in an empty folder; out/ holds what the README lists", () => {
    const dir = join(work, "quick-start");
    mkdirSync(dir);
    const lines = commandLines(block("Quick start", "sh"));
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const line of lines) {
      const r = sh(line, dir);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
    }
    // init wrote the schema the starter's $schema comment names.
    expect(JSON.parse(readFileSync(join(dir, "dockinit.schema.json"), "utf8")).title).toBe("dockinit.yaml");
    expect(readFileSync(join(dir, "user-data")).equals(readFileSync(join(dir, "out", "user-data")))).toBe(true);
    const listed = block("Quick start", "").code.split("\n").filter(Boolean).map((l) => l.split(/\s{2,}/)[0]!);
    expect(listed).toEqual(["out/user-data", "out/manifest.json", "out/files/<host path>"]);
    const manifest = JSON.parse(readFileSync(join(dir, "out", "manifest.json"), "utf8")) as { files: { path: string }[] };
    expect(readdirSync(join(dir, "out")).sort()).toEqual(["files", "manifest.json", "user-data"]);
    for (const f of manifest.files) expect(existsSync(join(dir, "out", "files", f.path)), f.path).toBe(true);
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

  it("no example loads a file from the repository's test/ (users have none)", () => {
    expect(blocks.filter((b) => b.file === "README.md" && /test\/fixtures/.test(b.code)).map((b) => b.section)).toEqual([]);
  });

  it("the library example runs as written, from a project that installed the package", () => {
    const code = block("As a library", "js", "README.md", 0).code;
    expect(code).toContain('from "dockinit"');
    // Plain JavaScript: an ES module, run with node as a user's script would be.
    const out = runInProject("library-example.mjs", code);
    expect(out).toMatch(/^\d+ bytes of user-data\n/);
    expect(out).toContain("/usr/local/sbin/dockinit-firewall");
  });

  it("the CommonJS example runs as written, and prints the built-in default's user-data in base64", () => {
    const code = block("As a library", "js", "README.md", 1).code;
    expect(code).toContain('require("dockinit")');
    const out = runInProject("library-example.cjs", code);
    expect(Buffer.from(out, "base64").equals(renderBundle(loadDefaultConfig()).bundle!.userData)).toBe(true);
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
    const table = docSection("README.md", "## Configuration reference");
    const documented = new Set([...table.matchAll(/^\| `([a-z_.$]+)`(?:, `([a-z_.]+)`)? \|/gm)].flatMap((m) => [m[1]!, m[2]].filter(Boolean) as string[]));
    const covered = (leaf: string) => [...documented].some((d) => leaf === d || leaf.startsWith(`${d}.`));
    expect(leaves.filter((l) => l !== "$schema" && !covered(l))).toEqual([]);
    const known = (d: string) => leaves.some((l) => l === d || l.startsWith(`${d}.`));
    expect([...documented].filter((d) => !known(d))).toEqual([]);
  });

  it("the vitest example is test/unit/readme-snapshot.test.ts, verbatim", () => {
    const code = block("As a library", "ts").code;
    expect(readFileSync(join(REPO, "test", "unit", "readme-snapshot.test.ts"), "utf8")).toBe(code);
  });

  // The AWS CDK recipe runs with aws-cdk-lib itself: test/system/cdk.test.ts.
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
  });
});

describe("the Docker matrix as docs/testing.md, .ci/run and the compatibility table name it", () => {
  it("CI's matrix is the table's CI rows, and the full-matrix command names every engine", async () => {
    const ci = readFileSync(join(REPO, ".ci", "run"), "utf8");
    const compat = (await import("../../scripts/compat.mjs" as string)) as { CI_MATRIX: string[]; CI_BOOTS: string[]; BOOTABLE: Set<string>; BOOT_GUESTS: Record<string, string> };
    expect(/^export DOCKINIT_DOCKER_MATRIX=(\S+)$/m.exec(ci)?.[1]?.split(",")).toEqual(compat.CI_MATRIX);
    expect(/^export DOCKINIT_BOOT_MATRIX=(\S+)$/m.exec(ci)?.[1]?.split(",")).toEqual(compat.CI_BOOTS);
    const { BOOT_ROOT, CLOUD_INIT_GUESTS, MOBY_ENGINES } = await import("../system/lib/engine.js");
    expect([...compat.BOOTABLE].sort()).toEqual(Object.keys(BOOT_ROOT).sort());
    expect(compat.BOOT_GUESTS).toEqual(Object.fromEntries(Object.entries(CLOUD_INIT_GUESTS).map(([name, g]) => [name, g.engine])));
    const { SUITES } = await import("../support/guest.js");
    const full = block("The Docker matrix", "sh", "docs/testing.md").code;
    expect(full).toContain("node scripts/compat.mjs --write");
    const named = /DOCKINIT_DOCKER_MATRIX=(\S+)/.exec(full)?.[1]?.split(",") ?? [];
    expect([...named].sort()).toEqual([...Object.keys(SUITES), ...Object.keys(MOBY_ENGINES)].sort());
    // Every guest boots in the full matrix: each bootable engine's own and the cloud-init guests.
    const boots = /DOCKINIT_BOOT_MATRIX=(\S+)/.exec(full)?.[1]?.split(",") ?? [];
    expect([...boots].sort()).toEqual([...Object.keys(BOOT_ROOT), ...Object.keys(CLOUD_INIT_GUESTS)].sort());
  });
});

// Every fenced block of the documentation, and the test that runs or checks
// it: a new example fails here until a test covers it (and is listed).
const COVERED: [file: string, section: string, lang: string, by: string][] = [
  ["README.md", "Two commands on a fresh machine", "sh", "readme.test.ts: the first command renders the default bundle"],
  ["README.md", "Two commands on a fresh machine", "sh", "readme.test.ts: the test command is the one .ci/run runs"],
  ["README.md", "Install", "sh", "readme.test.ts: Install (npm ci and npm run build: .ci/run and npm test)"],
  ["README.md", "Install", "sh", "readme.test.ts: Install"],
  ["README.md", "Quick start", "sh", "readme.test.ts: every Quick start command"],
  ["README.md", "Quick start", "", "readme.test.ts: out/ holds what the README lists"],
  ["README.md", "Quick start", "", "readme.test.ts: the diagnostic shown"],
  ["README.md", "Launch templates", "sh", "test/system/readme-aws.test.ts, against moto"],
  ["README.md", "Rolling out to Auto Scaling groups", "sh", "test/system/readme-aws.test.ts, against moto and the refresh fake"],
  ["README.md", "Rolling out to Auto Scaling groups", "", "test/unit/aws-rollout.test.ts: the plan shown"],
  ["README.md", "Verifying the fleet", "sh", "test/system/verify-moto.test.ts: each verify line, against moto and the SSM fake"],
  ["README.md", "Verifying the fleet", "yaml", "test/system/verify-moto.test.ts: the SSM fake runs the document's command"],
  ["README.md", "Verifying the fleet", "sh", "test/system/verify-moto.test.ts: the create-document line's shape"],
  ["README.md", "Verifying the fleet", "json", "test/system/verify-moto.test.ts: the IAM policy names the actions verify calls"],
  ["README.md", "Infrastructure as code", "hcl", "readme.test.ts: Terraform"],
  ["README.md", "Infrastructure as code", "ts", "test/system/cdk.test.ts, with aws-cdk-lib"],
  ["README.md", "Infrastructure as code", "yaml", "test/system/readme-aws.test.ts: CloudFormation, against moto"],
  ["README.md", "Infrastructure as code", "sh", "test/system/readme-aws.test.ts: CloudFormation, against moto"],
  ["README.md", "As a library", "js", "readme.test.ts: the library example"],
  ["README.md", "As a library", "js", "readme.test.ts: the CommonJS example"],
  ["README.md", "As a library", "ts", "test/unit/readme-snapshot.test.ts, verbatim"],
  ["docs/testing.md", "The Docker matrix", "sh", "readme.test.ts: the Docker matrix"],
];

it("every example in README.md and docs/ is one a test runs or checks", () => {
  expect(blocks.map((b) => [b.file, b.section, b.lang])).toEqual(COVERED.map(([file, section, lang]) => [file, section, lang]));
});
