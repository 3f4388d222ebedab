// The README's launch-template examples, run as written against moto's EC2
// server (the built CLI, the real SDK, an endpoint override, dummy keys).
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { CreateLaunchTemplateCommand, DescribeLaunchTemplateVersionsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, REPO } from "../support/fixtures.js";
import { skipUnlessMoto, startMoto, type MotoServer } from "../support/moto.js";
import { commandLines, readmeBlocks } from "../support/readme.js";

const BIN = join(REPO, "bin", "dockinit.cjs");

describe.skipIf(skipUnlessMoto())("README: launch-template examples against moto", () => {
  let moto: MotoServer;
  let dir: string;
  let ec2: EC2Client;
  const env = () => ({
    ...process.env,
    // `#!/usr/bin/env node`: the Node running these tests runs the CLI too.
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
    DOCKINIT: BIN,
    NO_COLOR: "1",
    AWS_ENDPOINT_URL_EC2: moto.endpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
  });

  beforeAll(async () => {
    moto = await startMoto();
    dir = mkdtempSync(join(tmpdir(), "dockinit-readme-aws-"));
    copyFileSync(join(FIXTURES, "build-runner", "dockinit.yaml"), join(dir, "dockinit.yaml"));
    ec2 = new EC2Client({ region: "eu-west-1", endpoint: moto.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    await ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: "build-runner",
        LaunchTemplateData: { ImageId: "ami-12c6146b", InstanceType: "t3.micro", UserData: Buffer.from("#!/bin/sh\necho old\n").toString("base64") },
      }),
    );
  });
  afterAll(async () => {
    ec2?.destroy();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs each line with the exit code it documents", async () => {
    const lines = commandLines(readmeBlocks().find((b) => b.section === "Launch templates")!);
    const expected = [1, 0, 0, 0, 0]; // diff differs; push; set-default (no-op + default); dry-run; create (exists: no-op)
    expect(lines).toHaveLength(expected.length);
    lines.forEach((line, i) => {
      const script = line.replace(/^dockinit\b/, '"$DOCKINIT"');
      const r = spawnSync("bash", ["-c", script], { cwd: dir, encoding: "utf8", env: env(), timeout: 60_000 });
      expect(r.status, `${line}\n${r.stdout}\n${r.stderr}`).toBe(expected[i]);
    });
    const out = await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateName: "build-runner" }));
    // One new version, whatever the retries and no-ops around it.
    expect(out.LaunchTemplateVersions?.length).toBe(2);
  });
});
