// The README's AWS CDK recipe, run as written with AWS CDK itself: aws-cdk-lib
// and constructs from the install .ci/run keeps outside the clone
// (test/support/cdk.ts), "dockinit" the built package. The recipe synthesizes
// its stack; the launch template's UserData in the template CDK wrote decodes
// to exactly the bytes `dockinit render` writes to out/user-data for the
// recipe's configuration. It also type-checks, as TypeScript, against
// aws-cdk-lib's types and the ones dockinit publishes.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CDK_NODE_MODULES, installedVersion, skipUnlessCdk } from "../support/cdk.js";
import { REPO } from "../support/fixtures.js";
import { readmeBlocks } from "../support/readme.js";

const BIN = join(REPO, "bin", "dockinit.cjs");

interface LaunchTemplateResource {
  Type: string;
  Properties: { LaunchTemplateName: string; LaunchTemplateData: { ImageId: string; InstanceType: string; UserData: string | { "Fn::Base64": string } } };
}

describe.skipIf(skipUnlessCdk())("README: the AWS CDK recipe, synthesized by aws-cdk-lib", () => {
  const code = readmeBlocks().find((b) => b.section === "Infrastructure as code" && b.lang === "ts")!.code;
  /** The configuration file the recipe renders, relative to its project. */
  const config = /loadConfig\("([^"]+)"\)/.exec(code)?.[1] ?? "";
  let project: string;

  beforeAll(() => {
    // A user's project: the recipe as its app, its node_modules holding
    // aws-cdk-lib, constructs and dockinit (links; Node resolves each from its
    // real path, so aws-cdk-lib finds its own dependencies beside it), and the
    // configuration at the path the recipe names (the build-runner example's:
    // a template name and region, as a user's would have).
    project = mkdtempSync(join(tmpdir(), "dockinit-cdk-"));
    mkdirSync(join(project, "node_modules"));
    writeFileSync(join(project, "package.json"), JSON.stringify({ private: true, type: "module" }));
    for (const name of ["aws-cdk-lib", "constructs"]) symlinkSync(join(CDK_NODE_MODULES, name), join(project, "node_modules", name), "dir");
    symlinkSync(REPO, join(project, "node_modules", "dockinit"), "dir");
    expect(config, "the recipe loads its configuration from a file").not.toBe("");
    mkdirSync(dirname(join(project, config)), { recursive: true });
    copyFileSync(join(REPO, "test/fixtures/build-runner/dockinit.yaml"), join(project, config));
  });
  afterAll(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it(`synthesizes a launch template whose UserData decodes to out/user-data's bytes (aws-cdk-lib ${installedVersion("aws-cdk-lib")}, constructs ${installedVersion("constructs")})`, () => {
    expect(code).toContain('from "aws-cdk-lib"');
    expect(code).toContain("app.synth()");
    // The recipe has no type annotations: as written, it is a Node ES module.
    const app = join(project, "app.mjs");
    writeFileSync(app, code);
    const outdir = join(project, "cdk.out");
    // CDK_OUTDIR is where the cdk CLI tells an app to synthesize to.
    const run = spawnSync(process.execPath, [app], { cwd: project, encoding: "utf8", env: { ...process.env, CDK_OUTDIR: outdir }, timeout: 120_000 });
    expect(run.status, `${run.stdout}\n${run.stderr}\n${run.error?.message ?? ""}`).toBe(0);

    const template = JSON.parse(readFileSync(join(outdir, "BuildRunner.template.json"), "utf8")) as { Resources: Record<string, { Type: string }> };
    const launchTemplates = Object.values(template.Resources).filter((r): r is LaunchTemplateResource => r.Type === "AWS::EC2::LaunchTemplate");
    expect(launchTemplates).toHaveLength(1);
    const { LaunchTemplateName, LaunchTemplateData } = launchTemplates[0]!.Properties;
    expect(LaunchTemplateName).toBe("build-runner");
    expect(LaunchTemplateData).toMatchObject({ ImageId: "ami-0abcdef1234567890", InstanceType: "t3.micro" });
    // CloudFormation's UserData is base64: a literal string, or Fn::Base64 of the raw text.
    const userData = LaunchTemplateData.UserData;
    const decoded = typeof userData === "string" ? Buffer.from(userData, "base64") : Buffer.from(userData["Fn::Base64"], "utf8");
    if (typeof userData === "string") expect(decoded.toString("base64")).toBe(userData); // canonical base64, nothing dropped

    // What the README says the recipe hands CDK: the exact bytes of out/user-data.
    const render = spawnSync(process.execPath, [BIN, "render", "-c", config, "-o", "out"], {
      cwd: project,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 60_000,
    });
    expect(render.status, render.stderr).toBe(0);
    const expected = readFileSync(join(project, "out", "user-data"));
    expect(expected.length).toBeGreaterThan(1000);
    expect(decoded.equals(expected)).toBe(true);
  });

  it("type-checks as TypeScript against aws-cdk-lib's types and dockinit's published ones", () => {
    writeFileSync(join(project, "app.ts"), code);
    // A strict project; "dockinit" resolves through its package.json exports
    // to dist/index.d.ts, as in a user's project.
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        skipLibCheck: true,
        noEmit: true,
        types: ["node"],
        typeRoots: [join(REPO, "node_modules", "@types")],
      },
      files: ["app.ts"],
    };
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
    const tsc = spawnSync(process.execPath, [join(REPO, "node_modules", "typescript", "bin", "tsc"), "-p", project], { cwd: project, encoding: "utf8", timeout: 120_000 });
    expect(tsc.status, `${tsc.stdout}\n${tsc.stderr}\n${tsc.error?.message ?? ""}`).toBe(0);
  });
});
