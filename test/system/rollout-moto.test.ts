// `dockinit rollout` and `push --rollout` end to end: the real SDK clients,
// the CLI (in process, and the built binary on a pipe and on a pseudo-terminal).
//
// What answers what:
// - moto 5.2.5's server: EC2 launch templates and every Auto Scaling group
//   call (CreateAutoScalingGroup with LaunchTemplate or MixedInstancesPolicy,
//   DescribeAutoScalingGroups with its paging, UpdateAutoScalingGroup).
// - test/support/refresh-fake.ts, in front of moto: the four instance-refresh
//   actions, which moto answers with HTTP 500 NotImplementedError. Refreshes
//   follow a script per poll; the fake pins the group to the desired
//   configuration when one succeeds, as AWS does.
// The CLI gets AWS_ENDPOINT_URL_EC2 (moto) and AWS_ENDPOINT_URL_AUTO_SCALING
// (the fake), so the per-service endpoint variables are proven too.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  type CreateAutoScalingGroupCommandInput,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, EC2Client } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { REPO } from "../support/fixtures.js";
import { skipUnlessMoto, startMoto, type MotoServer } from "../support/moto.js";
import { InstanceRefreshFake } from "../support/refresh-fake.js";
import { skipUnless } from "../support/system.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const skip = skipUnlessMoto();
const BIN = join(REPO, "bin", "dockinit.cjs");
const REGION = "us-east-1";
const CREDENTIALS = { AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing" };
const CONFIG = ["version: 1", "name: build-runner", "launch_template:", "  name: build-runner", `  region: ${REGION}`, ""].join("\n");
/** Fast polls: the fake advances one state per poll, so no test waits on the clock. */
const FAST = ["--poll-interval", "0.05"];

describe.skipIf(skip)("rollout against moto (groups) and the refresh fake (instance refreshes)", () => {
  let moto: MotoServer;
  let fake: InstanceRefreshFake;
  let fakeEndpoint: string;
  let dir: string;
  let ec2: EC2Client;
  let asg: AutoScalingClient;
  let templateId: string;

  beforeAll(async () => {
    moto = await startMoto();
    fake = new InstanceRefreshFake(moto.endpoint);
    fakeEndpoint = await fake.start();
    const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials });
    asg = new AutoScalingClient({ region: REGION, endpoint: moto.endpoint, credentials });
  });
  afterAll(async () => {
    ec2?.destroy();
    asg?.destroy();
    await fake?.stop();
    await moto?.stop();
  });

  /**
   * The template (version 1 by hand), and groups: web-name (by name, $Default),
   * web-id (by id, version 1), mixed (mixed-instances policy, $Latest, an
   * override), and other (another template).
   */
  beforeEach(async () => {
    await moto.reset();
    fake.reset();
    dir = mkdtempSync(join(tmpdir(), "dockinit-rollout-"));
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    const make = async (name: string) =>
      (await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: name, LaunchTemplateData: { ImageId: "ami-12c6146b", InstanceType: "t3.micro" } }))).LaunchTemplate!
        .LaunchTemplateId!;
    templateId = await make("build-runner");
    await make("other-template");
    // Desired capacity 0: moto would launch instances from the template, and the refresh is the fake's anyway.
    const group = (input: Partial<CreateAutoScalingGroupCommandInput> & { AutoScalingGroupName: string }) =>
      asg.send(new CreateAutoScalingGroupCommand({ MinSize: 0, MaxSize: 2, DesiredCapacity: 0, AvailabilityZones: [`${REGION}a`], ...input }));
    await group({ AutoScalingGroupName: "web-name", LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "$Default" } });
    await group({ AutoScalingGroupName: "web-id", LaunchTemplate: { LaunchTemplateId: templateId, Version: "1" } });
    await group({
      AutoScalingGroupName: "mixed",
      MixedInstancesPolicy: {
        LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateId: templateId, Version: "$Latest" }, Overrides: [{ InstanceType: "t3.small" }, { InstanceType: "t3a.small" }] },
        InstancesDistribution: { OnDemandPercentageAboveBaseCapacity: 50 },
      },
    });
    await group({ AutoScalingGroupName: "other", LaunchTemplate: { LaunchTemplateName: "other-template", Version: "1" } });
    return () => rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({ ...CREDENTIALS, AWS_ENDPOINT_URL_EC2: moto.endpoint, AWS_ENDPOINT_URL_AUTO_SCALING: fakeEndpoint, AWS_EC2_METADATA_DISABLED: "true" });

  async function cli(argv: string[], io: { stdinIsTTY?: boolean; stdoutIsTTY?: boolean; answer?: string } = {}) {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      stdout: (t) => (stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
      stderr: (t) => (stderr += t),
      cwd: dir,
      env: env(),
      stdinIsTTY: io.stdinIsTTY,
      stdoutIsTTY: io.stdoutIsTTY,
      ask: async () => io.answer ?? "",
    });
    return { code, stdout, stderr };
  }

  const started = () => fake.refreshes.map((r) => r.group).sort();
  const form = (group: string) => fake.refreshes.find((r) => r.group === group)!.request;
  const groupVersion = async (name: string) => {
    const g = (await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups?.[0];
    return g?.LaunchTemplate?.Version ?? g?.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification?.Version;
  };

  it("push --rollout --yes: a new version, the three groups that use the template (by name, by id, mixed), pinned refreshes, progress to Successful, exit 0", async () => {
    fake.scripts.set("web-id", [
      { status: "Pending" },
      { status: "InProgress", percentage: 0, instancesToUpdate: 2, reason: "Waiting for instances to warm up before continuing." },
      { status: "InProgress", percentage: 50, instancesToUpdate: 1 },
      { status: "Successful", percentage: 100, instancesToUpdate: 0 },
    ]);
    const r = await cli(["push", "--rollout", "--yes", ...FAST]);
    // The region is said once, for both clients.
    expect(r.stderr).toMatch(/^dockinit: region [a-z0-9-]+ \(from [^)]+\)\n$/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("created version: 2 from version 1\n");
    // The plan: every group, why two have no automatic rollback, the pin.
    expect(r.stdout).toMatch(/^version: +2 \(the version push just made\)/m);
    expect(r.stdout).toContain("groups:          3, every group that uses the template (confirm, or --yes)\n");
    expect(r.stdout).toMatch(/^ {2}web-name +0 instances, now version \$Default; no automatic rollback: the group uses version \$Default, and AWS rolls back only to a numbered version$/m);
    expect(r.stdout).toMatch(/^ {2}web-id +0 instances, now version 1; auto rollback: on$/m);
    expect(r.stdout).toMatch(/^ {2}mixed +0 instances, now version \$Latest; no automatic rollback: /m);
    expect(r.stdout).toContain("  checkpoint_delay        - (no checkpoints) [3600 s]\n");
    expect(r.stdout).toContain("  skip_matching           true [false]\n");
    // Progress on a pipe: one line per change, in order.
    const webId = r.stdout.split("\n").filter((l) => l.startsWith("web-id: "));
    expect(webId).toEqual([
      "web-id: Pending",
      "web-id: InProgress 0%, 2 instances to replace: Waiting for instances to warm up before continuing.",
      "web-id: InProgress 50%, 1 instance to replace",
      "web-id: Successful 100%, 0 instances to replace",
    ]);
    expect(r.stdout).toContain("rolled out build-runner version 2 to web-name, web-id, mixed\n");
    expect(r.stdout).toContain("the way back for web-id: dockinit rollout --version 1 --auto-scaling-group web-id\n");

    expect(started()).toEqual(["mixed", "web-id", "web-name"]);
    expect(Object.fromEntries(form("web-id"))).toEqual(
      expect.objectContaining({
        Strategy: "Rolling",
        "DesiredConfiguration.LaunchTemplate.LaunchTemplateId": templateId,
        "DesiredConfiguration.LaunchTemplate.Version": "2",
        "Preferences.SkipMatching": "true",
        "Preferences.AutoRollback": "true",
        "Preferences.MinHealthyPercentage": "90",
        "Preferences.InstanceWarmup": "300",
      }),
    );
    expect(form("web-name").get("Preferences.AutoRollback")).toBe("false");
    // The mixed group keeps its overrides and distribution; only the version is pinned.
    const mixed = Object.fromEntries(form("mixed"));
    expect(mixed).toEqual(
      expect.objectContaining({
        "DesiredConfiguration.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId": templateId,
        "DesiredConfiguration.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification.Version": "2",
        "DesiredConfiguration.MixedInstancesPolicy.LaunchTemplate.Overrides.member.1.InstanceType": "t3.small",
        "DesiredConfiguration.MixedInstancesPolicy.LaunchTemplate.Overrides.member.2.InstanceType": "t3a.small",
        "DesiredConfiguration.MixedInstancesPolicy.InstancesDistribution.OnDemandPercentageAboveBaseCapacity": "50",
      }),
    );
    // As AWS does after success: the groups now name version 2, not $Default/$Latest.
    expect(await groupVersion("web-name")).toBe("2");
    expect(await groupVersion("web-id")).toBe("2");
    expect(await groupVersion("other")).toBe("1");
    // So the next plan shows the pin: automatic rollback is possible now.
    const again = await cli(["rollout", "--dry-run"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^ {2}web-name +0 instances, now version 2; auto rollback: on$/m);
    expect(again.stdout).toContain("dry run: nothing started\n");
  });

  it.each<[string, { status: string; reason: string }]>([
    ["Failed", { status: "Failed", reason: "Instance i-0abc failed health checks." }],
    ["Cancelled", { status: "Cancelled", reason: "cancelled by someone" }],
    ["RollbackSuccessful", { status: "RollbackSuccessful", reason: "alarm web-5xx went to ALARM" }],
    ["RollbackFailed", { status: "RollbackFailed", reason: "rollback could not launch instances" }],
  ])("a refresh that ends %s is exit 1, naming the group and the reason", async (_name, end) => {
    fake.scripts.set("web-id", [{ status: "InProgress", percentage: 30 }, { status: end.status === "RollbackSuccessful" ? "RollbackInProgress" : "InProgress", percentage: 60 }, end]);
    const r = await cli(["rollout", "--auto-scaling-group", "web-id", ...FAST]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^dockinit: the refresh of web-id \\(\\S+\\) ended ${end.status}: ${end.reason.replace(/[.]/g, "\\.")}$`, "m"));
  });

  it("found groups need --yes without a terminal: exit 2, nothing started", async () => {
    const r = await cli(["rollout", ...FAST]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("dockinit: 3 groups use build-runner: web-name, web-id, mixed; without a terminal to confirm on: pass --yes");
    expect(fake.actions).not.toContain("StartInstanceRefresh");
  });

  it("on a terminal they are confirmed: 'n' starts nothing (exit 1), 'y' starts them", async () => {
    const no = await cli(["rollout", ...FAST], { stdinIsTTY: true, stdoutIsTTY: true, answer: "n" });
    expect(no.code).toBe(1);
    expect(fake.actions).not.toContain("StartInstanceRefresh");
    const yes = await cli(["rollout", ...FAST], { stdinIsTTY: true, stdoutIsTTY: true, answer: "y" });
    expect(yes.code).toBe(0);
    expect(started()).toEqual(["mixed", "web-id", "web-name"]);
    // The default version (1) resolved to its number.
    expect(form("web-name").get("DesiredConfiguration.LaunchTemplate.Version")).toBe("1");
  });

  it("a refresh already in progress: its id and the command that cancels it, exit 3, nothing started", async () => {
    const running = fake.existing("web-id", "InProgress");
    const r = await cli(["rollout", "--yes", ...FAST]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`dockinit: group web-id already has an instance refresh InProgress (${running.id}); wait for it, or cancel it: dockinit rollout --cancel --auto-scaling-group web-id\n`);
    expect(fake.actions).not.toContain("StartInstanceRefresh");
  });

  it("when starting fails for one group after another started: which started, exit 3", async () => {
    fake.startErrors.set("web-id", { code: "LimitExceeded", message: "You have reached the limit of instance refreshes." });
    const r = await cli(["rollout", "--auto-scaling-group", "web-name", "--auto-scaling-group", "web-id", "--auto-scaling-group", "mixed", ...FAST]);
    expect(r.code).toBe(3);
    const first = fake.refreshes[0]!;
    expect(r.stdout).toContain(`started: web-name refresh ${first.id}\n`);
    expect(r.stderr).toContain("dockinit: could not start the refresh of web-id: an Auto Scaling limit was reached (LimitExceeded)");
    expect(r.stderr).toContain(`dockinit: started (and still running): web-name (${first.id}); not started: web-id, mixed\n`);
    expect(started()).toEqual(["web-name"]);
  });

  it("a named group that uses another template is an error naming that template; one that does not exist is exit 3", async () => {
    const other = await cli(["rollout", "--auto-scaling-group", "web-id", "--auto-scaling-group", "other"]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain("dockinit: Auto Scaling group other uses launch template other-template, not build-runner;");
    const missing = await cli(["rollout", "--auto-scaling-group", "nope"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("dockinit: Auto Scaling group nope (from --auto-scaling-group) does not exist in us-east-1\n");
    expect(fake.actions).not.toContain("StartInstanceRefresh");
  });

  it("--dry-run prints the plan and starts nothing; auto_rollback: true refuses the groups AWS cannot roll back", async () => {
    const dry = await cli(["rollout", "--dry-run", "--checkpoints", "20,50,100", "--warmup", "60"]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("  checkpoints             20%, 50%, 100% [none]\n");
    expect(dry.stdout).toContain("  instance_warmup         60 s [the group's health check grace period]\n");
    writeFileSync(join(dir, "dockinit.yaml"), `${CONFIG}rollout:\n  auto_rollback: true\n`);
    const strict = await cli(["rollout", "--yes"]);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain("dockinit: auto_rollback is true, but group web-name cannot roll back: the group uses version $Default");
    expect(fake.actions).not.toContain("StartInstanceRefresh");
  });

  it("--no-wait exits 0 once started; --cancel and --rollback act on the running refresh; --rollback with none running explains the way back", async () => {
    fake.scripts.set("web-id", [{ status: "InProgress", percentage: 10 }]);
    const r = await cli(["rollout", "--auto-scaling-group", "web-id", "--no-wait"]);
    expect(r.code).toBe(0);
    const id = fake.refreshes[0]!.id;
    expect(r.stdout).toContain(`  cancel: dockinit rollout --cancel --auto-scaling-group web-id\n`);

    const back = await cli(["rollout", "--rollback", "--auto-scaling-group", "web-id"]);
    expect(back.code).toBe(0);
    expect(back.stdout).toContain(`rolling back: web-id refresh ${id}`);
    const none = await cli(["rollout", "--rollback", "--auto-scaling-group", "web-id"]);
    expect(none.code).toBe(3);
    expect(none.stderr).toContain("the way back is dockinit rollout --version <previous> --auto-scaling-group web-id");

    fake.scripts.set("web-name", [{ status: "InProgress", percentage: 10 }]);
    await cli(["rollout", "--auto-scaling-group", "web-name", "--no-wait"]);
    const cancel = await cli(["rollout", "--cancel", "--auto-scaling-group", "web-name"]);
    expect(cancel.code).toBe(0);
    expect(fake.state(fake.refreshes[1]!).status).toBe("Cancelled");
  });

  it("--json: JSON lines (plan, started, progress, result)", async () => {
    const r = await cli(["rollout", "--auto-scaling-group", "web-id", "--json", ...FAST]);
    expect(r.code).toBe(0);
    const events = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { event: string; status?: string; ok?: boolean });
    expect(events.map((e) => e.event)).toEqual(["plan", "started", "progress", "progress", "result"]);
    expect(events.filter((e) => e.event === "progress").map((e) => e.status)).toEqual(["Pending", "Successful"]);
    expect(events.at(-1)).toEqual(expect.objectContaining({ ok: true }));
  });

  it("finds the template's groups across DescribeAutoScalingGroups pages (moto pages at 100)", async () => {
    const many = Array.from({ length: 120 }, (_, i) => `filler-${String(i).padStart(3, "0")}`);
    for (let i = 0; i < many.length; i += 20) {
      await Promise.all(
        many.slice(i, i + 20).map((name) =>
          asg.send(new CreateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: 0, MaxSize: 1, DesiredCapacity: 0, AvailabilityZones: [`${REGION}a`], LaunchTemplate: { LaunchTemplateName: "other-template" } })),
        ),
      );
    }
    await asg.send(new CreateAutoScalingGroupCommand({ AutoScalingGroupName: "zz-last", MinSize: 0, MaxSize: 1, DesiredCapacity: 0, AvailabilityZones: [`${REGION}a`], LaunchTemplate: { LaunchTemplateId: templateId } }));
    const r = await cli(["rollout", "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout.split("\n")[0]!) as { groups: { name: string }[] };
    expect(plan.groups.map((g) => g.name).sort()).toEqual(["mixed", "web-id", "web-name", "zz-last"]);
    expect(fake.actions.filter((a) => a === "DescribeAutoScalingGroups").length).toBeGreaterThanOrEqual(2);
  });

  describe("the built binary: waiting output on a pipe and on a pseudo-terminal", () => {
    const procEnv = () => ({ PATH: process.env.PATH, HOME: dir, NO_COLOR: "1", ...env() });
    const haveBin = existsSync(BIN);

    /**
     * Run a process without blocking this one (the refresh fake answers from
     * this process's event loop, so spawnSync would deadlock). `reply` is
     * typed into stdin once `when` appears in the output. Bounded by 60 s.
     */
    function run(file: string, args: string[], reply?: { when: string; text: string }) {
      const child = spawn(file, args, { cwd: dir, env: procEnv(), stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      let replied = false;
      child.stdout.on("data", (c: Buffer) => {
        stdout += c.toString("utf8");
        if (reply && !replied && stdout.includes(reply.when)) {
          replied = true;
          child.stdin.write(reply.text);
        }
      });
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
        child.once("close", (status) => {
          clearTimeout(timer);
          resolve({ status, stdout, stderr });
        }),
      );
      return { child, done, output: () => stdout };
    }

    it.skipIf(!haveBin)("on a pipe: the prompt is not asked (--yes needed), and progress is one plain line per change", async () => {
      const refused = await run(process.execPath, [BIN, "rollout", ...FAST]).done;
      expect(refused.status, refused.stderr).toBe(2);
      fake.scripts.set("web-id", [{ status: "Pending" }, { status: "InProgress", percentage: 50, instancesToUpdate: 1 }, { status: "Successful", percentage: 100, instancesToUpdate: 0 }]);
      const r = await run(process.execPath, [BIN, "rollout", "--auto-scaling-group", "web-id", ...FAST]).done;
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).not.toContain("\r");
      expect(r.stdout).toContain("web-id: Pending\nweb-id: InProgress 50%, 1 instance to replace\nweb-id: Successful 100%, 0 instances to replace\n");
    });

    const noScript = skipUnless(["script"]);
    it.skipIf(!haveBin || noScript)("on a terminal: found groups are confirmed at a prompt, progress is one live line", async () => {
      fake.scripts.set("web-id", [{ status: "Pending" }, { status: "InProgress", percentage: 50, instancesToUpdate: 1 }, { status: "Successful", percentage: 100, instancesToUpdate: 0 }]);
      const cmd = `"${process.execPath}" "${BIN}" rollout ${FAST.join(" ")}`;
      // script(1) gives the command a pseudo-terminal; "y" answers the prompt.
      const r = await run("script", ["-q", "-e", "-c", cmd, "/dev/null"], { when: "[y/N]", text: "y\r" }).done;
      expect(r.status, r.stdout).toBe(0);
      expect(r.stdout).toContain("Start an instance refresh of 3 groups (web-name, web-id, mixed) to version 1? [y/N]");
      // The live line is rewritten in place (\r + erase line), then each group's final state is a line.
      const ERASE = "\r\x1b[K";
      expect(r.stdout).toMatch(new RegExp(`${ERASE.replace("[", "\\[")}[^\n]*web-id: InProgress 50%, 1 instance to replace`));
      expect(r.stdout).toContain(`${ERASE}web-name: Successful 100%, 0 instances to replace\r\nweb-id: Successful`);
      expect(started()).toEqual(["mixed", "web-id", "web-name"]);
    });

    it.skipIf(!haveBin || noScript)("Ctrl-C stops waiting, never the refresh: how to follow or cancel, exit 130", async () => {
      fake.scripts.set("web-id", [{ status: "InProgress", percentage: 10, instancesToUpdate: 2 }]);
      const cmd = `"${process.execPath}" "${BIN}" rollout --auto-scaling-group web-id ${FAST.join(" ")}`;
      // The terminal's Ctrl-C (\x03) once progress shows: SIGINT to the foreground process.
      const r = await run("script", ["-q", "-e", "-c", cmd, "/dev/null"], { when: "web-id: InProgress 10%", text: "\x03" }).done;
      const out = r.stdout;
      expect(r.status, out).toBe(130);
      expect(out).toContain("dockinit: stopped waiting; the refreshes go on:");
      expect(out).toContain(`follow: aws autoscaling describe-instance-refreshes --auto-scaling-group-name web-id --instance-refresh-ids ${fake.refreshes[0]!.id}`);
      expect(fake.actions).not.toContain("CancelInstanceRefresh");
      expect(fake.state(fake.refreshes[0]!).status).toBe("InProgress");
    });
  });
});
