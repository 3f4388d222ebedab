// `dockinit diff` and `dockinit push` end to end: the real AWS SDK, pointed at
// moto's EC2 server with an endpoint override and dummy credentials.
//
// What moto (5.2) does not implement, and where that is covered instead:
// - SourceVersion: CreateLaunchTemplateVersion ignores it, so a new version
//   holds only the UserData we sent, not the source's AMI, instance type or
//   tags. Here we check that existing versions are never touched and that
//   only UserData is sent; that the request names the source version (and
//   sends nothing else) is proven in test/unit/aws-launch-template.test.ts.
// - ClientToken: ignored (the same token twice makes two versions), so
//   "a retried push never makes two versions" is proven with the mock and a
//   fake endpoint in the unit tests, not here.
// moto does implement DryRun (DryRunOperation), ModifyLaunchTemplate's
// DefaultVersion, per-region templates and the NotFound / VersionNotFound errors.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateLaunchTemplateCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
  type LaunchTemplateVersion,
} from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { loadConfig, renderBundle } from "../../src/api.js";
import { runCli } from "../../src/cli/main.js";
import { REPO } from "../support/fixtures.js";
import { skipUnlessMoto, startMoto, type MotoServer } from "../support/moto.js";

// The SDK's "2027 releases need Node 22" notice is not what these tests are about.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const skip = skipUnlessMoto();

// Launch template parameters are not validated when a template is made (by
// EC2 or moto), so any well-formed AMI id does.
const AMI = "ami-0abcdef1234567890";
const HAND_MADE_USER_DATA = "#!/bin/sh\necho hand-made\n";
const CREDENTIALS = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_SESSION_TOKEN: "testing" };

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const configText = (opts: { to?: string; lt: string }) =>
  ["version: 1", "name: build-runner", "ephemeral_ports:", `  to: ${opts.to ?? "49152-61000"}`, "launch_template:", opts.lt, ""].join("\n");

describe.skipIf(skip)("launch templates against moto's EC2 server", () => {
  let moto: MotoServer;
  let dir: string;
  const clients: EC2Client[] = [];

  /** The test's own EC2 client, for setting up templates and reading them back. */
  const ec2 = (region = "us-east-1") => {
    const c = new EC2Client({
      region,
      endpoint: moto.endpoint,
      credentials: { accessKeyId: CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    dir = mkdtempSync(join(tmpdir(), "dockinit-moto-"));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  async function cli(argv: string[], env: Record<string, string> = { AWS_REGION: "us-east-1" }) {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      stdout: (t) => (stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
      stderr: (t) => (stderr += t),
      cwd: dir,
      env: { ...CREDENTIALS, AWS_ENDPOINT_URL_EC2: moto.endpoint, AWS_EC2_METADATA_DISABLED: "true", ...env },
    });
    return { code, stdout, stderr };
  }

  function writeConfig(text: string): Buffer {
    const path = join(dir, "dockinit.yaml");
    writeFileSync(path, text);
    const rendered = renderBundle(loadConfig(path));
    if (!rendered.bundle) throw new Error(`test config does not render: ${JSON.stringify(rendered.diagnostics)}`);
    return rendered.bundle.userData;
  }

  async function handMadeTemplate(name: string, region = "us-east-1") {
    const out = await ec2(region).send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: name,
        VersionDescription: "made by hand",
        LaunchTemplateData: {
          ImageId: AMI,
          InstanceType: "t3.micro",
          UserData: Buffer.from(HAND_MADE_USER_DATA).toString("base64"),
          TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "team", Value: "build" }] }],
        },
      }),
    );
    return out.LaunchTemplate?.LaunchTemplateId ?? "";
  }

  async function versions(name: string, numbers: number[], region = "us-east-1"): Promise<LaunchTemplateVersion[]> {
    const out = await ec2(region).send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: name, Versions: numbers.map(String) }));
    return out.LaunchTemplateVersions ?? [];
  }

  async function template(name: string) {
    const out = await ec2().send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [name] }));
    return out.LaunchTemplates?.[0];
  }

  const userDataOf = (v: LaunchTemplateVersion | undefined) => Buffer.from(v?.LaunchTemplateData?.UserData ?? "", "base64");

  it("diff, push, push again (no-op), push a change with --set-default, diff again; earlier versions keep their fields", async () => {
    const id = await handMadeTemplate("build-runner");
    const first = writeConfig(configText({ lt: "  name: build-runner" }));

    const before = await cli(["diff"]);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(/^--- build-runner version 1\n\+\+\+ dockinit.yaml \(rendered\)\n/);
    expect(before.stdout).toContain("\n-echo hand-made\n");
    expect(before.stdout).toContain("\n+#cloud-config\n");

    const pushed = await cli(["push"]);
    expect(pushed.stderr).toBe("dockinit: region us-east-1 (from AWS_REGION)\n");
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toBe(
      [
        `launch template: build-runner (${id}) in us-east-1`,
        "created version: 2 from version 1",
        "default version: 1 (unchanged; --set-default moves it)",
        `user-data:       ${first.length.toLocaleString("en-US")} bytes, sha256 ${sha256(first)}`,
        "",
      ].join("\n"),
    );

    const again = await cli(["push"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("unchanged:       version 2 already has this user-data; nothing created\n");
    expect(await template("build-runner")).toEqual(expect.objectContaining({ LatestVersionNumber: 2, DefaultVersionNumber: 1 }));
    expect((await cli(["diff"])).code).toBe(0);

    const second = writeConfig(configText({ to: "50000-61000", lt: "  name: build-runner" }));
    const changed = await cli(["diff"]);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toMatch(/^-.*masquerade to :49152-61000$/m); // auto: the nftables backend
    expect(changed.stdout).toMatch(/^\+.*masquerade to :50000-61000$/m);

    const promoted = await cli(["push", "--set-default"]);
    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toContain("created version: 3 from version 2\n");
    expect(promoted.stdout).toContain("default version: 3 (was 1)\n");
    expect((await cli(["diff"])).code).toBe(0);
    expect((await cli(["diff", "--version", "2"])).code).toBe(1);
    expect(await template("build-runner")).toEqual(expect.objectContaining({ LatestVersionNumber: 3, DefaultVersionNumber: 3 }));

    const [v1, v2, v3] = await versions("build-runner", [1, 2, 3]);
    // The hand-made version is untouched: push only ever adds versions.
    expect(v1?.LaunchTemplateData).toEqual(
      expect.objectContaining({ ImageId: AMI, InstanceType: "t3.micro", TagSpecifications: [{ ResourceType: "instance", Tags: [{ Key: "team", Value: "build" }] }] }),
    );
    expect(userDataOf(v1).toString()).toBe(HAND_MADE_USER_DATA);
    expect(v1?.DefaultVersion).toBe(false);
    // Our versions carry exactly the rendered bytes and their sha256.
    expect(userDataOf(v2).equals(first)).toBe(true);
    expect(v2?.VersionDescription).toBe(`dockinit build-runner sha256:${sha256(first)}`);
    expect(userDataOf(v3).equals(second)).toBe(true);
    expect(v3?.VersionDescription).toBe(`dockinit build-runner sha256:${sha256(second)}`);
    expect(v3?.DefaultVersion).toBe(true);
    // moto ignores SourceVersion, so v2/v3 lack the AMI it should have copied
    // (see the header). Should moto learn it, check the copy is right.
    for (const v of [v2, v3]) {
      if (v?.LaunchTemplateData?.ImageId !== undefined) expect(v.LaunchTemplateData).toEqual(expect.objectContaining({ ImageId: AMI, InstanceType: "t3.micro" }));
    }
  });

  it("--dry-run asks EC2 (DryRun) and changes nothing, with or without --set-default", async () => {
    await handMadeTemplate("build-runner");
    writeConfig(configText({ lt: "  name: build-runner" }));
    for (const extra of [[], ["--set-default"]]) {
      const r = await cli(["push", "--dry-run", ...extra]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("dry run:         EC2 says creating version 2 from version 1 would succeed; nothing changed\n");
      expect(r.stdout).toContain(extra.length ? "default version: 1 (would become 2)\n" : "default version: 1 (would stay)\n");
    }
    expect(await template("build-runner")).toEqual(expect.objectContaining({ LatestVersionNumber: 1, DefaultVersionNumber: 1 }));
  });

  it("a missing template is exit 3 without --create; --create makes it with the user-data as version 1 (--json)", async () => {
    const bytes = writeConfig(configText({ lt: "  name: fresh-template" }));

    const missing = await cli(["push"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toBe(
      "dockinit: region us-east-1 (from AWS_REGION)\ndockinit: launch template fresh-template not found in us-east-1; check the name and region, or pass --create to make it with this user-data as version 1 (region from AWS_REGION)\n",
    );
    expect((await cli(["diff"])).code).toBe(3);

    expect((await cli(["push", "--create", "--dry-run"])).code).toBe(0);
    expect(await ec2().send(new DescribeLaunchTemplatesCommand({})).then((o) => o.LaunchTemplates ?? [])).toEqual([]);

    const created = await cli(["push", "--create", "--json"]);
    expect(created.code).toBe(0);
    const report = JSON.parse(created.stdout);
    expect(report).toEqual(expect.objectContaining({ ok: true, action: "created-template", version: 1, defaultVersion: 1, bytes: bytes.length, sha256: sha256(bytes) }));
    expect(report.templateId).toMatch(/^lt-[0-9a-f]+$/);
    const [v1] = await versions("fresh-template", [1]);
    expect(userDataOf(v1).equals(bytes)).toBe(true);
    expect((await cli(["diff", "--json"])).code).toBe(0);
  });

  it("the region comes from --region, else launch_template.region (before AWS_REGION, which only a config without a region uses)", async () => {
    await handMadeTemplate("regional", "eu-west-1");
    writeConfig(configText({ lt: "  name: regional\n  region: eu-west-1" }));

    // A shell's leftover AWS_REGION does not move the template (issue 27): said, warned, not used.
    const fromConfig = await cli(["push"], { AWS_REGION: "us-west-2" });
    expect(fromConfig.code, fromConfig.stderr).toBe(0);
    expect(fromConfig.stdout).toContain(" in eu-west-1\n");
    expect(fromConfig.stderr).toBe(
      "dockinit: region eu-west-1 (from launch_template.region in dockinit.yaml)\ndockinit: warning: AWS_REGION=us-west-2 is not used: launch_template.region comes first (pass --region us-west-2 to work there)\n",
    );
    expect((await versions("regional", [2], "eu-west-1"))[0]?.VersionNumber).toBe(2);

    // moto keeps templates per region, like EC2: elsewhere it does not exist.
    const flag = await cli(["push", "--region", "us-east-1"], {});
    expect(flag.code).toBe(3);
    expect(flag.stderr).toMatch(/not found in us-east-1; .* \(region from --region\)\n$/);
    writeConfig(configText({ lt: "  name: regional" }));
    expect((await cli(["diff"], { AWS_REGION: "us-west-2" })).stderr).toMatch(/not found in us-west-2 .* \(region from AWS_REGION\)\n$/);
  });

  it("the built binary honours AWS_ENDPOINT_URL_EC2 and AWS_REGION from its real environment", () => {
    const bin = join(REPO, "bin", "dockinit.cjs");
    expect(existsSync(bin), "bin/dockinit.cjs is missing: npm run build").toBe(true);
    writeConfig(configText({ lt: "  name: from-a-process" }));
    const env = { PATH: process.env.PATH, HOME: dir, ...CREDENTIALS, AWS_REGION: "us-east-1", AWS_ENDPOINT_URL_EC2: moto.endpoint, AWS_EC2_METADATA_DISABLED: "true" };
    const run = (...args: string[]) => spawnSync(process.execPath, [join(REPO, "bin", "dockinit.cjs"), ...args], { cwd: dir, env, encoding: "utf8", timeout: 60_000 });

    const created = run("push", "--create");
    expect(created.status, created.stderr).toBe(0);
    expect(created.stderr).toBe("dockinit: region us-east-1 (from AWS_REGION)\n"); // no SDK warnings either
    expect(created.stdout).toMatch(/^launch template: from-a-process \(lt-[0-9a-f]+\) in us-east-1 \(created\)\n/);
    expect(run("diff").status).toBe(0);
  });
});
