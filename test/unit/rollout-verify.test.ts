// `rollout --verify` through the CLI with every client mocked: refused without
// checkpoints (before anything starts, and before push makes a version), the
// pauses raised to the verify deadline in the plan and the request, each new
// instance on the rolled-out version asked once InService, the refresh rolled
// back at the first one not in place (cancelled where AWS cannot roll back),
// and a refresh whose new instances are all in place going on to success.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AutoScalingClient,
  AutoScalingServiceException,
  CancelInstanceRefreshCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeInstanceRefreshesCommand,
  RollbackInstanceRefreshCommand,
  StartInstanceRefreshCommand,
  type AutoScalingGroup,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateVersionCommand, DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { DescribeInstanceInformationCommand, ListCommandInvocationsCommand, SendCommandCommand, SSMClient } from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { verifyPreferences, VERIFY_SECONDS } from "../../src/cli/rollout-verify.js";
import { loadConfigString } from "../../src/index.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const T = { id: "lt-0123456789abcdef0", name: "build-runner" };
const NEW = "c".repeat(64);
const OLD = "d".repeat(64);
const OLD_I = "i-00000000000000001";
const NEW_I = "i-00000000000000002";
const userData = (id: string) => Buffer.from(`#cloud-config\nwrite_files:\n  - content: |\n      readonly BUNDLE_ID='${id}'\n`).toString("base64");
const status = (bundle: string) => JSON.stringify({ version: 1, ok: true, backend: "nftables", backend_reason: "", bundle, loaded_bundle: bundle, problems: [], docker: {}, reapplied: { count: 0, last: null, reason: null }, checked_at: "" });

const ec2 = mockClient(EC2Client);
const asg = mockClient(AutoScalingClient);
const ssm = mockClient(SSMClient);
afterAll(() => {
  ec2.restore();
  asg.restore();
  ssm.restore();
});

let dir: string;
/** What the new instance's host says. */
let answer: string;
/** DescribeInstanceRefreshes polls so far. */
let polls: number;

function fleet(withNew: boolean): AutoScalingGroup[] {
  const inst = (id: string, version: string) => ({ InstanceId: id, LifecycleState: "InService", HealthStatus: "Healthy", AvailabilityZone: "eu-west-1a", ProtectedFromScaleIn: false, LaunchTemplate: { LaunchTemplateId: T.id, Version: version } });
  return [{ AutoScalingGroupName: "web", LaunchTemplate: { LaunchTemplateId: T.id, Version: "3" }, DesiredCapacity: 2, Instances: [inst(OLD_I, "3"), ...(withNew ? [inst(NEW_I, "4")] : [])] } as unknown as AutoScalingGroup];
}

beforeEach(() => {
  ec2.reset();
  asg.reset();
  ssm.reset();
  answer = status(NEW);
  polls = 0;
  dir = mkdtempSync(join(tmpdir(), "dockinit-rollout-verify-"));
  writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: build-runner\nlaunch_template:\n  name: build-runner\n  region: eu-west-1\nrollout:\n  checkpoints: [50, 100]\n");
  ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: T.id, LaunchTemplateName: T.name, DefaultVersionNumber: 4, LatestVersionNumber: 4 }] });
  ec2.on(DescribeLaunchTemplateVersionsCommand).callsFake((input: { Versions?: string[] }) => ({
    LaunchTemplateVersions: (input.Versions ?? ["3", "4"]).map((v) => ({ LaunchTemplateId: T.id, VersionNumber: Number(v), LaunchTemplateData: { ImageId: "ami-0abc", UserData: userData(v === "4" ? NEW : OLD) } })),
  }));
  // The new instance is InService from the second refresh poll on.
  asg.on(DescribeAutoScalingGroupsCommand).callsFake(() => ({ AutoScalingGroups: fleet(polls >= 2) }));
  asg.on(DescribeInstanceRefreshesCommand).callsFake((input: { InstanceRefreshIds?: string[] }) => {
    if (!input.InstanceRefreshIds) return { InstanceRefreshes: [] };
    polls += 1;
    const status = polls < 2 ? "Pending" : polls < 4 ? "InProgress" : "Successful";
    return { InstanceRefreshes: [{ InstanceRefreshId: "r-web", Status: status, PercentageComplete: polls < 4 ? 50 : 100 }] };
  });
  asg.on(StartInstanceRefreshCommand).resolves({ InstanceRefreshId: "r-web" });
  asg.on(RollbackInstanceRefreshCommand).resolves({ InstanceRefreshId: "r-web" });
  asg.on(CancelInstanceRefreshCommand).resolves({ InstanceRefreshId: "r-web" });
  ssm.on(DescribeInstanceInformationCommand).callsFake((input: { Filters: { Values: string[] }[] }) => ({ InstanceInformationList: input.Filters[0]!.Values.map((id) => ({ InstanceId: id, PingStatus: "Online" })) }));
  ssm.on(SendCommandCommand).resolves({ Command: { CommandId: "cmd-1" } });
  ssm.on(ListCommandInvocationsCommand).callsFake(() => ({ CommandInvocations: [{ CommandId: "cmd-1", InstanceId: NEW_I, Status: "Success", StatusDetails: "Success", CommandPlugins: [{ Output: answer, ResponseCode: 0 }] }] }));
  return () => rmSync(dir, { recursive: true, force: true });
});

async function cli(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli(argv, { stdout: (t) => (stdout += String(t)), stderr: (t) => (stderr += t), cwd: dir, env: { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" } });
  return { code, stdout, stderr };
}
const FAST = ["--poll-interval", "0.05"];

describe("rollout --verify", () => {
  it("without checkpoints: refused before anything starts (exit 2); push --rollout --verify refuses before it pushes", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: build-runner\nlaunch_template:\n  name: build-runner\n  region: eu-west-1\n");
    const r = await cli(["rollout", "--yes", "--verify", ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--verify needs checkpoints/);
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(0);
    const p = await cli(["push", "--rollout", "--yes", "--verify", ...FAST]);
    expect(p.code).toBe(2);
    expect(p.stderr).toMatch(/--verify needs checkpoints.*nothing pushed/);
    expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)).toHaveLength(0);
    expect((await cli(["rollout", "--yes", "--verify", "--no-wait", "--checkpoints", "50,100"])).code).toBe(2);
  });

  it("raises checkpoint_delay and bake_time to the verify deadline, and the plan says so", () => {
    const p = { ...loadConfigString("version: 1\nrollout:\n  checkpoints: [50, 100]\n").model!.rollout };
    const v = verifyPreferences({ ...p, checkpointDelay: 60, bakeTime: 0 });
    expect("preferences" in v && [v.preferences.checkpointDelay, v.preferences.bakeTime, v.raised]).toEqual([VERIFY_SECONDS, VERIFY_SECONDS, ["checkpoint_delay 60 -> 120 s", "bake_time 0 -> 120 s"]]);
    const kept = verifyPreferences({ ...p, checkpointDelay: 600, bakeTime: 300 });
    expect("preferences" in kept && [kept.preferences.checkpointDelay, kept.preferences.bakeTime]).toEqual([600, 300]);
  });

  it("the new instance in place: the refresh goes on to Successful, exit 0; the request pauses at least the deadline", async () => {
    const r = await cli(["rollout", "--yes", "--verify", ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^note: --verify: each new instance is asked through SSM/m);
    expect(r.stderr).toContain(`dockinit: verified: ${NEW_I} (web) in place`);
    const prefs = asg.commandCalls(StartInstanceRefreshCommand)[0]!.args[0].input.Preferences!;
    expect(prefs.CheckpointDelay).toBeGreaterThanOrEqual(VERIFY_SECONDS);
    expect(prefs.BakeTime).toBeGreaterThanOrEqual(VERIFY_SECONDS);
    // Only the instance launched from the rolled-out version was asked, once.
    expect(ssm.commandCalls(SendCommandCommand).map((c) => c.args[0].input.InstanceIds)).toEqual([[NEW_I]]);
    expect(asg.commandCalls(RollbackInstanceRefreshCommand)).toHaveLength(0);
  });

  it("the new instance on another bundle: rolled back at once, which and why said, exit 1", async () => {
    answer = status(OLD);
    const r = await cli(["rollout", "--yes", "--verify", ...FAST]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`dockinit: ${NEW_I} (web) is not in place: another-bundle: runs bundle dddddddddddd (build-runner version 3), expected cccccccccccc`);
    expect(r.stderr).toContain("dockinit: rolling back the refresh of web (r-web)");
    expect(asg.commandCalls(RollbackInstanceRefreshCommand).map((c) => c.args[0].input)).toEqual([{ AutoScalingGroupName: "web" }]);
    // It stopped there: the refresh was not polled to its end.
    expect(polls).toBeLessThan(4);
  });

  it("where AWS cannot roll back, it cancels", async () => {
    answer = status(OLD);
    asg.on(RollbackInstanceRefreshCommand).rejects(new AutoScalingServiceException({ name: "IrreversibleInstanceRefreshFault", $fault: "client", $metadata: {}, message: "no" }));
    const r = await cli(["rollout", "--yes", "--verify", ...FAST]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot roll back web .*; cancelled its refresh \(r-web\)/);
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(1);
  });

  it("rollout.verify: true in dockinit.yaml does what --verify does", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: build-runner\nlaunch_template:\n  name: build-runner\n  region: eu-west-1\nrollout:\n  checkpoints: [50, 100]\n  verify: true\n");
    answer = status(OLD);
    const r = await cli(["rollout", "--yes", ...FAST]);
    expect(r.code).toBe(1);
    expect(asg.commandCalls(RollbackInstanceRefreshCommand)).toHaveLength(1);
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: build-runner\nlaunch_template:\n  name: build-runner\n  region: eu-west-1\nrollout:\n  verify: true\n");
    expect((await cli(["rollout", "--yes", ...FAST])).code).toBe(2);
  });

  it("a version whose UserData has no bundle id: refused before the refresh starts", async () => {
    ec2.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [{ LaunchTemplateId: T.id, VersionNumber: 4, LaunchTemplateData: { ImageId: "ami-0abc", UserData: "" } }] });
    const r = await cli(["rollout", "--yes", "--verify", ...FAST]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/carries no dockinit bundle id/);
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(0);
  });
});
