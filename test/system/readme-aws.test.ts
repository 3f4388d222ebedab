// The README's launch-template examples, run as written against moto's EC2
// server (the built CLI, the real SDK, an endpoint override, dummy keys); its
// rollout examples against moto and the instance-refresh fake in front of it
// (test/support/refresh-fake.ts); its CloudFormation recipe against moto's
// CloudFormation.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { AutoScalingClient, CreateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, DescribeLaunchTemplateVersionsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURES, REPO } from "../support/fixtures.js";
import { MOTO_PYTHON, skipUnlessMoto, startMoto, type MotoServer } from "../support/moto.js";
import { InstanceRefreshFake, type RefreshState } from "../support/refresh-fake.js";
import { commandLines, readmeBlocks } from "../support/readme.js";

const BIN = join(REPO, "bin", "dockinit.cjs");

describe.skipIf(skipUnlessMoto())("README: launch-template examples against moto", () => {
  let moto: MotoServer;
  let dir: string;
  let ec2: EC2Client;
  let fake: InstanceRefreshFake;
  let fakeEndpoint: string;
  const env = () => ({
    ...process.env,
    // `#!/usr/bin/env node`: the Node running these tests runs the CLI too.
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
    DOCKINIT: BIN,
    NO_COLOR: "1",
    AWS_ENDPOINT_URL_EC2: moto.endpoint,
    AWS_ENDPOINT_URL_AUTO_SCALING: fakeEndpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
  });

  beforeAll(async () => {
    moto = await startMoto();
    fake = new InstanceRefreshFake(moto.endpoint);
    fakeEndpoint = await fake.start();
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
    await fake?.stop();
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

  /** A README line in bash, without blocking this process (the fake answers from its event loop). Bounded by 120 s. */
  function runLine(line: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const script = line.replace(/^dockinit\b/, '"$DOCKINIT"');
    const child = spawn("bash", ["-c", script], { cwd: dir, env: env() });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    return new Promise((resolve) =>
      child.once("close", (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      }),
    );
  }

  it("the rollout lines, each with the exit code it documents", async () => {
    const asg = new AutoScalingClient({ region: "eu-west-1", endpoint: moto.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    try {
      const base = { MinSize: 0, MaxSize: 2, DesiredCapacity: 0, AvailabilityZones: ["eu-west-1a"] };
      await asg.send(new CreateAutoScalingGroupCommand({ ...base, AutoScalingGroupName: "web", LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "$Default" } }));
      await asg.send(new CreateAutoScalingGroupCommand({ ...base, AutoScalingGroupName: "api", LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "1" } }));
    } finally {
      asg.destroy();
    }
    const lines = commandLines(readmeBlocks().find((b) => b.section === "Rolling out to Auto Scaling groups" && b.lang === "sh")!);
    // Refreshes that end on their first poll, so no line waits out the 15 s poll interval;
    // the fourth line's refresh keeps running, for the fifth to roll back.
    const done: RefreshState[] = [{ status: "Successful", percentage: 100, instancesToUpdate: 0 }];
    const running: RefreshState[] = [{ status: "InProgress", percentage: 10, instancesToUpdate: 2 }];
    const steps: { exit: number; web: RefreshState[]; starts: string[] }[] = [
      { exit: 0, web: done, starts: [] }, // --dry-run
      { exit: 0, web: done, starts: ["web", "api"] }, // --yes: every group that uses the template
      { exit: 0, web: done, starts: ["web"] }, // push --rollout to web
      { exit: 0, web: running, starts: ["web"] }, // back to version 2, --no-wait
      { exit: 0, web: running, starts: [] }, // --rollback
    ];
    expect(lines).toHaveLength(steps.length);
    fake.scripts.set("api", done);
    for (const [i, line] of lines.entries()) {
      fake.scripts.set("web", steps[i]!.web);
      const before = fake.refreshes.length;
      const r = await runLine(line);
      expect(r.status, `${line}\n${r.stdout}\n${r.stderr}`).toBe(steps[i]!.exit);
      expect(fake.refreshes.slice(before).map((x) => x.group).sort()).toEqual([...steps[i]!.starts].sort());
    }
    expect(fake.refreshes.at(-1)!.request.get("DesiredConfiguration.LaunchTemplate.Version")).toBe("2");
    expect(fake.state(fake.refreshes.at(-1)!).status).toBe("RollbackSuccessful");
  });

  it("the CloudFormation recipe creates the launch template in moto's CloudFormation, with exactly out/user-data", async () => {
    const iac = readmeBlocks().filter((b) => b.section === "Infrastructure as code");
    writeFileSync(join(dir, "launch-template.yaml"), iac.find((b) => b.lang === "yaml")!.code);
    const lines = commandLines(iac.find((b) => b.lang === "sh")!);
    expect(lines).toHaveLength(3);
    for (const line of lines.slice(0, 2)) {
      const r = await runLine(line);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
    }
    // The third line is `aws cloudformation deploy`: no AWS CLI here, so the same
    // stack through boto3 (moto's own venv), in us-east-1 where no build-runner exists yet.
    const deploy = lines[2]!;
    expect(deploy).toMatch(/^aws cloudformation deploy /);
    const arg = (name: string) => new RegExp(`--${name} (\\S+)`).exec(deploy)![1]!;
    const [key, value] = arg("parameter-overrides").split("=");
    const py = [
      "import boto3, json, sys",
      `cf = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=${JSON.stringify(moto.endpoint)}, aws_access_key_id="testing", aws_secret_access_key="testing")`,
      `cf.create_stack(StackName=${JSON.stringify(arg("stack-name"))}, TemplateBody=open(${JSON.stringify(join(dir, arg("template-file")))}).read(), Parameters=[{"ParameterKey": ${JSON.stringify(key)}, "ParameterValue": ${JSON.stringify(value)}}])`,
      `stack = cf.describe_stacks(StackName=${JSON.stringify(arg("stack-name"))})["Stacks"][0]`,
      "print(json.dumps({'status': stack['StackStatus'], 'outputs': {o['OutputKey']: o['OutputValue'] for o in stack.get('Outputs', [])}}))",
    ].join("\n");
    const made = spawnSync(MOTO_PYTHON, ["-c", py], { encoding: "utf8", timeout: 120_000 });
    expect(made.status, made.stderr).toBe(0);
    const stack = JSON.parse(made.stdout) as { status: string; outputs: Record<string, string> };
    expect(stack.status).toBe("CREATE_COMPLETE");
    const east = new EC2Client({ region: "us-east-1", endpoint: moto.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } });
    try {
      const v = (await east.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: stack.outputs.LaunchTemplateId, Versions: ["1"] }))).LaunchTemplateVersions?.[0];
      expect(v?.LaunchTemplateData?.ImageId).toBe(value);
      expect(Buffer.from(v?.LaunchTemplateData?.UserData ?? "", "base64").equals(readFileSync(join(dir, "out", "user-data")))).toBe(true);
    } finally {
      east.destroy();
    }
  });
});
