// `dockinit verify` end to end: the built binary, the real SDK clients.
//
// What answers what:
// - moto 5.2.5's server: EC2 (launch templates and their versions' UserData,
//   the instances' aws:ec2launchtemplate:version tags) and Auto Scaling (groups
//   with InService instances it launched, each with the version it was
//   launched from). moto cannot launch from a version that has UserData (an
//   assertion in its launch-template model), so the instances are launched
//   from version 1 (no UserData) and the versions with bundles come after:
//   which is also the fleet verify is for (instances behind their group).
// - test/support/ssm-fake.ts: SSM's DescribeInstanceInformation, SendCommand,
//   ListCommandInvocations and GetCommandInvocation as SSM behaves (an
//   invocation that does not exist right after SendCommand, Pending →
//   InProgress → Success/Failed, the output limits, throttling); each
//   instance answers what the test says: the status JSON of a host in place,
//   drifted, on another bundle, a script that predates --json, no agent.
// The binary gets AWS_ENDPOINT_URL_EC2 and AWS_ENDPOINT_URL_AUTO_SCALING
// (moto) and AWS_ENDPOINT_URL_SSM (the fake).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand, UpdateAutoScalingGroupCommand } from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, CreateLaunchTemplateVersionCommand, EC2Client, ModifyLaunchTemplateCommand } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { renderBundle } from "../../src/api.js";
import { renderedBundleId } from "../../src/bundle/bundle-id.js";
import { loadConfigString } from "../../src/index.js";
import { REPO } from "../support/fixtures.js";
import { skipUnlessMoto, startMoto, type MotoServer } from "../support/moto.js";
import { SsmFake } from "../support/ssm-fake.js";
import { InstanceRefreshFake } from "../support/refresh-fake.js";
import { commandLines, readmeBlocks } from "../support/readme.js";
import { parse as parseYaml } from "yaml";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const skip = skipUnlessMoto();
const BIN = join(REPO, "bin", "dockinit.cjs");
const REGION = "us-east-1";
const CONFIG = ["version: 1", "name: build-runner", "launch_template:", "  name: build-runner", `  region: ${REGION}`, ""].join("\n");
const FAST = ["--poll-interval", "0.05", "--timeout", "30"];
const OLD = "a".repeat(64);
const NEW = "b".repeat(64);
/** The bundle this configuration renders: what --instance-ids compares with. */
const CONFIG_BUNDLE = renderedBundleId(renderBundle(loadConfigString(CONFIG)).bundle!);

/** The README's section on verify: its commands, the least-privilege document, how to create it, the IAM policy. */
const README = readmeBlocks().filter((b) => b.section === "Verifying the fleet");
const README_DOCUMENT = parseYaml(README.find((b) => b.lang === "yaml")!.code) as { schemaVersion: string; mainSteps: { action: string; inputs: { runCommand: string[] } }[] };

const b64 = (b: string | Buffer) => Buffer.from(b).toString("base64");
/** UserData as dockinit renders it: the firewall script in a cloud-config, with its BUNDLE_ID line. */
const userData = (id: string) => `#cloud-config\nwrite_files:\n  - path: /usr/local/sbin/dockinit-firewall\n    permissions: "0755"\n    content: |\n      #!/bin/bash\n      readonly BUNDLE_ID='${id}'\n`;

function status(over: Record<string, unknown> = {}): string {
  return `${JSON.stringify({
    version: 1,
    ok: true,
    backend: "iptables",
    backend_reason: "Docker 20.10 programs iptables",
    bundle: NEW,
    loaded_bundle: NEW,
    problems: [],
    docker: { version: "20.10.24", firewall_backend: "iptables" },
    reapplied: { count: 0, last: null, reason: null },
    checked_at: "2026-12-06T12:00:00Z",
    ...over,
  })}\n`;
}

describe.skipIf(skip)("verify against moto (templates, groups, instances) and the SSM fake", () => {
  let moto: MotoServer;
  let ssm: SsmFake;
  let ssmEndpoint: string;
  let dir: string;
  let ec2: EC2Client;
  let asg: AutoScalingClient;
  /** In front of moto, forwarding everything: which EC2 and Auto Scaling actions verify calls. */
  let ec2Seen: InstanceRefreshFake;
  let asgSeen: InstanceRefreshFake;
  let ec2Endpoint: string;
  let asgEndpoint: string;

  beforeAll(async () => {
    moto = await startMoto();
    ssm = new SsmFake();
    ssmEndpoint = await ssm.start();
    ec2Seen = new InstanceRefreshFake(moto.endpoint);
    asgSeen = new InstanceRefreshFake(moto.endpoint);
    ec2Endpoint = await ec2Seen.start();
    asgEndpoint = await asgSeen.start();
    const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
    ec2 = new EC2Client({ region: REGION, endpoint: moto.endpoint, credentials });
    asg = new AutoScalingClient({ region: REGION, endpoint: moto.endpoint, credentials });
  });
  afterAll(async () => {
    ec2?.destroy();
    asg?.destroy();
    await ssm?.stop();
    await ec2Seen?.stop();
    await asgSeen?.stop();
    await moto?.stop();
  });

  /** Group name → its InService instance ids, in moto's order. */
  let fleet: Record<string, string[]>;

  /**
   * build-runner: version 1 (no UserData: what the instances were launched
   * from), 2 (bundle OLD, gzip, as push sends a large bundle), 3 (bundle NEW).
   * Groups: web ($Latest = 3, 7 instances), batch (pinned to 2, 1 instance),
   * and other (another template, never asked).
   */
  beforeEach(async () => {
    await moto.reset();
    ssm.reset();
    ec2Seen.reset();
    asgSeen.reset();
    // The account has the README's least-privilege document.
    ssm.documents.set("DockinitFirewallStatus", README_DOCUMENT.mainSteps[0]!.inputs.runCommand);
    dir = mkdtempSync(join(tmpdir(), "dockinit-verify-"));
    writeFileSync(join(dir, "dockinit.yaml"), CONFIG);
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: "build-runner", LaunchTemplateData: { ImageId: "ami-12c6146b", InstanceType: "t3.micro" } }));
    await ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: "other-template", LaunchTemplateData: { ImageId: "ami-12c6146b", InstanceType: "t3.micro" } }));
    const group = (name: string, n: number, template = "build-runner") =>
      asg.send(new CreateAutoScalingGroupCommand({ AutoScalingGroupName: name, MinSize: 0, MaxSize: 10, DesiredCapacity: n, AvailabilityZones: [`${REGION}a`], LaunchTemplate: { LaunchTemplateName: template, Version: "1" } }));
    await group("web", 7);
    await group("batch", 1);
    await group("other", 1, "other-template");
    await ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: "build-runner", SourceVersion: "1", LaunchTemplateData: { UserData: b64(gzipSync(userData(OLD))) } }));
    await ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: "build-runner", SourceVersion: "1", LaunchTemplateData: { UserData: b64(userData(NEW)) } }));
    await asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "web", LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "$Latest" } }));
    await asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "batch", LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "2" } }));
    const groups = (await asg.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups ?? [];
    fleet = Object.fromEntries(groups.map((g) => [g.AutoScalingGroupName!, (g.Instances ?? []).filter((i) => i.LifecycleState === "InService").map((i) => i.InstanceId!)]));
    return () => rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({
    PATH: process.env.PATH,
    HOME: dir,
    NO_COLOR: "1",
    AWS_ACCESS_KEY_ID: "testing",
    AWS_SECRET_ACCESS_KEY: "testing",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ENDPOINT_URL_EC2: ec2Endpoint,
    AWS_ENDPOINT_URL_AUTO_SCALING: asgEndpoint,
    AWS_ENDPOINT_URL_SSM: ssmEndpoint,
  });

  /** The built binary, without blocking this process (the SSM fake answers from its event loop). Bounded by 60 s. */
  function run(args: string[], extraEnv: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { ...env(), ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    return new Promise((resolve) =>
      child.once("close", (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      }),
    );
  }

  /** Every instance of web in place on NEW, batch's on OLD. */
  function allInPlace() {
    for (const id of fleet.web!) ssm.hosts.set(id, { kind: "answers", stdout: status() });
    ssm.hosts.set(fleet.batch![0]!, { kind: "answers", stdout: status({ bundle: OLD, loaded_bundle: OLD }) });
  }

  it.skipIf(!existsSync(BIN))("every instance in place on its group's version (web: $Latest = 3, batch: 2): exit 0, one line each on a pipe; the other template's group is not asked", async () => {
    allInPlace();
    const r = await run(["verify", ...FAST]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(8);
    for (const id of fleet.web!) expect(lines).toContain(`${id} in-place group=web from=v1 bundle bbbbbbbbbbbb, backend iptables`);
    expect(lines).toContain(`${fleet.batch![0]} in-place group=batch from=v1 bundle aaaaaaaaaaaa, backend iptables`);
    expect(r.stderr).toContain("dockinit: 8 instances: 8 in place\n");
    // One SendCommand (8 instances; up to 50 a call) of AWS-RunShellScript running the status.
    expect(ssm.sent).toHaveLength(1);
    expect(ssm.sent.flatMap((s) => s.instanceIds).sort()).toEqual([...fleet.web!, ...fleet.batch!].sort());
    expect(ssm.sent.every((s) => s.documentName === "AWS-RunShellScript" && s.parameters?.commands?.[0] === "dockinit-firewall status --json" && s.maxErrors === "100%")).toBe(true);
    expect(ssm.sent.flatMap((s) => s.instanceIds)).not.toContain(fleet.other![0]);
  });

  it.skipIf(!existsSync(BIN))("each kind of instance classified: in place, drifted (with its re-apply), another bundle (version 2's), predates verify, failed, no agent, agent offline, delivery timed out; exit 1", async () => {
    const [inPlace, drifted, older, predates, failed, noAgent, offline] = fleet.web!;
    ssm.hosts.set(inPlace!, { kind: "answers", stdout: status() });
    ssm.hosts.set(drifted!, {
      kind: "answers",
      exitCode: 1,
      stdout: status({ ok: false, problems: [{ code: "RULES_MISSING", message: "filter DOCKER-USER has no dockinit jump" }], reapplied: { count: 3, last: "2026-12-06T11:58:00Z", reason: "rules flushed" } }),
    });
    ssm.hosts.set(older!, { kind: "answers", stdout: status({ bundle: OLD, loaded_bundle: OLD }) });
    // A script from before --json: it prints its text status, longer than the plugin output's 2,500 characters.
    ssm.hosts.set(predates!, { kind: "answers", stdout: `dockinit-firewall: all rules in place (backend iptables)\n${"  rule ok\n".repeat(400)}` });
    ssm.hosts.set(failed!, { kind: "answers", exitCode: 127, stdout: "", stderr: `${"x".repeat(3000)}\n` });
    void noAgent; // not registered with SSM
    ssm.hosts.set(offline!, { kind: "offline", pingStatus: "ConnectionLost" });
    ssm.hosts.set(fleet.batch![0]!, { kind: "undelivered", statusDetails: "DeliveryTimedOut" });
    const r = await run(["verify", ...FAST, "--json"]);
    expect(r.status, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout) as { ok: boolean; counts: Record<string, number>; instances: { instanceId: string; verdict: string; detail: string; bundleVersion?: number; launchedFrom?: number }[] };
    const verdict = (id: string) => out.instances.find((i) => i.instanceId === id)!;
    expect(out).toMatchObject({ ok: false });
    expect(verdict(inPlace!).verdict).toBe("in-place");
    expect(verdict(drifted!)).toMatchObject({ verdict: "drifted", detail: "RULES_MISSING: filter DOCKER-USER has no dockinit jump; re-applied 3×, last 2026-12-06T11:58:00Z (rules flushed)" });
    expect(verdict(older!)).toMatchObject({ verdict: "another-bundle", bundleVersion: 2, launchedFrom: 1, detail: "runs bundle aaaaaaaaaaaa (build-runner version 2), expected bbbbbbbbbbbb" });
    expect(verdict(predates!)).toMatchObject({ verdict: "another-bundle", detail: "another bundle (predates verify): dockinit-firewall: all rules in place (backend iptables)" });
    expect(verdict(failed!).verdict).toBe("failed");
    expect(verdict(failed!).detail).toMatch(/^Failed, exit 127: x{100}/);
    expect(verdict(noAgent!)).toMatchObject({ verdict: "unreachable", detail: expect.stringMatching(/^not managed by SSM/) });
    expect(verdict(offline!)).toMatchObject({ verdict: "unreachable", detail: "SSM agent ConnectionLost" });
    expect(verdict(fleet.batch![0]!)).toMatchObject({ verdict: "unreachable", detail: "SSM: DeliveryTimedOut" });
    expect(out.counts).toEqual({ "in-place": 1, drifted: 1, "another-bundle": 2, unreachable: 3, failed: 1 });
    // No command to the instances SSM does not have online.
    expect(ssm.sent.flatMap((s) => s.instanceIds)).not.toContain(noAgent);
    expect(ssm.sent.flatMap((s) => s.instanceIds)).not.toContain(offline);
    // The failed one was read whole (GetCommandInvocation), after the list showed it ended.
    expect(ssm.actions).toContain("GetCommandInvocation");
  });

  it.skipIf(!existsSync(BIN))("--instance-ids: those instances, compared with the configuration's own bundle", async () => {
    const [a, b] = fleet.web!;
    ssm.hosts.set(a!, { kind: "answers", stdout: status({ bundle: CONFIG_BUNDLE, loaded_bundle: CONFIG_BUNDLE }) });
    ssm.hosts.set(b!, { kind: "answers", stdout: status() });
    const r = await run(["verify", "--instance-ids", `${a},${b}`, ...FAST]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toContain(`${a} in-place group=- from=- bundle ${CONFIG_BUNDLE.slice(0, 12)}`);
    expect(r.stdout).toContain(`${b} another-bundle group=- from=- runs bundle bbbbbbbbbbbb (build-runner version 3), expected ${CONFIG_BUNDLE.slice(0, 12)}`);
  });

  it.skipIf(!existsSync(BIN))("--auto-scaling-group batch --document NAME: that group only, the document with no parameters", async () => {
    allInPlace();
    const r = await run(["verify", "--auto-scaling-group", "batch", "--document", "DockinitFirewallStatus", ...FAST]);
    expect(r.status, r.stderr).toBe(0);
    expect(ssm.sent).toEqual([expect.objectContaining({ instanceIds: fleet.batch, documentName: "DockinitFirewallStatus" })]);
    expect(ssm.sent[0]!.parameters).toBeUndefined();
  });

  it.skipIf(!existsSync(BIN))("SSM throttling every second call, the SDK's own retries off (AWS_MAX_ATTEMPTS=1): verify backs off and still gets every answer", async () => {
    allInPlace();
    ssm.throttleEvery = { actions: new Set(["DescribeInstanceInformation", "SendCommand", "ListCommandInvocations", "GetCommandInvocation"]), n: 2 };
    const r = await run(["verify", ...FAST], { AWS_MAX_ATTEMPTS: "1" });
    expect(ssm.throttled).toBeGreaterThanOrEqual(2);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("8 in place");
  });

  it.skipIf(!existsSync(BIN))("an unknown document is an AWS error: exit 3", async () => {
    allInPlace();
    const r = await run(["verify", "--document", "NoSuchDocument", ...FAST]);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/SendCommand failed \(InvalidDocument\): Document NoSuchDocument does not exist/);
  });

  it.skipIf(!existsSync(BIN))("a group with no instances: exit 1, nothing is in place", async () => {
    await asg.send(new CreateAutoScalingGroupCommand({ AutoScalingGroupName: "empty", MinSize: 0, MaxSize: 1, DesiredCapacity: 0, AvailabilityZones: [`${REGION}a`], LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "3" } }));
    const r = await run(["verify", "--auto-scaling-group", "empty", ...FAST]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("no instances to verify");
    expect(ssm.sent).toEqual([]);
  });

  describe("the README's examples", () => {
    /** A README line as a user types it, `dockinit` being the built binary. */
    function runLine(line: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
      const child = spawn("bash", ["-c", line.replace(/^dockinit\b/, '"$DOCKINIT"')], { cwd: dir, env: { ...env(), DOCKINIT: BIN }, stdio: ["ignore", "pipe", "pipe"] });
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

    it.skipIf(!existsSync(BIN))("each verify line, as written (the default 2 s polls), exits 0 on a fleet in place; the IAM policy names exactly the actions they call", async () => {
      allInPlace();
      // --instance-ids names two instances of the README: registered with SSM, running this configuration's bundle.
      for (const id of ["i-0123456789abcdef0", "i-0fedcba9876543210"]) ssm.hosts.set(id, { kind: "answers", stdout: status({ bundle: CONFIG_BUNDLE, loaded_bundle: CONFIG_BUNDLE }) });
      const lines = commandLines(README.find((b) => b.lang === "sh")!);
      expect(lines).toHaveLength(4);
      const ran: string[][] = [];
      for (const line of lines) {
        const before = ssm.sent.length;
        const r = await runLine(line);
        expect(r.status, `${line}\n${r.stdout}\n${r.stderr}`).toBe(0);
        ran.push(ssm.sent.slice(before).flatMap((c) => c.instanceIds).sort());
        if (line.includes("--json")) expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, counts: { "in-place": 7 } });
      }
      expect(ran).toEqual([[...fleet.web!, ...fleet.batch!].sort(), [...fleet.web!].sort(), ["i-0123456789abcdef0", "i-0fedcba9876543210"], [...fleet.web!, ...fleet.batch!].sort()]);
      // The last line ran the README's document, which runs the status and nothing else.
      expect(ssm.sent.at(-1)!.documentName).toBe("DockinitFirewallStatus");
      expect(README_DOCUMENT.schemaVersion).toBe("2.2");
      expect(README_DOCUMENT.mainSteps).toHaveLength(1);
      expect(README_DOCUMENT.mainSteps[0]).toMatchObject({ action: "aws:runShellScript", inputs: { runCommand: ["/usr/local/sbin/dockinit-firewall status --json"] } });

      // The IAM policy: every action verify called, and two it calls only in cases this fleet has not: DescribeTags (an
      // instance whose launch version is not a number; moto always gives one) and GetCommandInvocation (an answer the
      // list cuts or does not understand; the classification test above sees it called).
      const policy = JSON.parse(README.find((b) => b.lang === "json")!.code) as { Statement: { Action: string | string[]; Resource: string | string[] }[] };
      const allowed = policy.Statement.flatMap((st) => [st.Action].flat()).sort();
      const seen = [...new Set([...ssm.actions.map((a) => `ssm:${a}`), ...ec2Seen.actions.map((a) => `ec2:${a}`), ...asgSeen.actions.map((a) => `autoscaling:${a}`)])];
      expect(allowed).toEqual([...new Set([...seen, "ec2:DescribeTags", "ssm:GetCommandInvocation"])].sort());
      const send = policy.Statement.find((st) => st.Action === "ssm:SendCommand")!;
      expect(send.Resource).toContain("arn:aws:ssm:*:*:document/DockinitFirewallStatus");
    }, 180_000);

    it("the create-document line makes the document the --document line names, from the YAML above (no AWS CLI here: its shape is checked)", () => {
      const create = commandLines(README.filter((b) => b.lang === "sh")[1]!);
      expect(create).toEqual(["aws ssm create-document --name DockinitFirewallStatus --document-type Command --document-format YAML --content file://dockinit-firewall-status.yaml"]);
      expect(commandLines(README.find((b) => b.lang === "sh")!).at(-1)).toBe("dockinit verify --document DockinitFirewallStatus");
    });
  });

  it.skipIf(!existsSync(BIN))("a document that runs anything but the status gets no answer from the hosts (exit 127 there): failed", async () => {
    allInPlace();
    ssm.documents.set("SomethingElse", ["/usr/local/sbin/dockinit-firewall status"]);
    const r = await run(["verify", "--auto-scaling-group", "batch", "--document", "SomethingElse", ...FAST]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/ failed group=batch from=v1 Failed, exit 127: _script\.sh: line 1: \/usr\/local\/sbin\/dockinit-firewall: command not found$/m);
  });

  describe("rollout --verify: the refresh fake stands in for AWS's refresh", () => {
    // moto reports every instance of a group as launched from its template's
    // default version (its model reads default_version_number), and cannot
    // launch from a version with UserData. So when the refresh reaches its 50 %
    // checkpoint, the fake's hook makes version 4 the default: from then on
    // web's instances are on version 4, as the refresh's new instances would be.
    const NEWER = "e".repeat(64);
    let moved = false;
    beforeEach(async () => {
      moved = false;
      writeFileSync(join(dir, "dockinit.yaml"), `${CONFIG}rollout:\n  checkpoints: [50, 100]\n`);
      await ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateName: "build-runner", SourceVersion: "1", LaunchTemplateData: { UserData: b64(userData(NEWER)) } }));
      await asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: "web", LaunchTemplate: { LaunchTemplateName: "build-runner", Version: "3" } }));
      asgSeen.scripts.set("web", [
        { status: "InProgress", percentage: 0, instancesToUpdate: 7 },
        { status: "InProgress", percentage: 50, instancesToUpdate: 4, reason: "Waiting at checkpoint 50%" },
        { status: "InProgress", percentage: 50, instancesToUpdate: 4, reason: "Waiting at checkpoint 50%" },
        { status: "Baking", percentage: 100, instancesToUpdate: 0 },
        { status: "Successful", percentage: 100, instancesToUpdate: 0 },
      ]);
      asgSeen.onPoll = async (_r, state) => {
        if (state.percentage !== 50 || moved) return;
        moved = true;
        await ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateName: "build-runner", DefaultVersion: "4" }));
      };
    });
    const rollout = () => run(["rollout", "--yes", "--verify", "--version", "4", "--auto-scaling-group", "web", "--poll-interval", "0.05"]);
    const web = () => (fleet.web ?? []).sort();

    it.skipIf(!existsSync(BIN))("the new instances come up on another bundle: rolled back at the first checkpoint, each said, exit 1", async () => {
      for (const id of web()) ssm.hosts.set(id, { kind: "answers", stdout: status() }); // version 3's bundle, not 4's
      const r = await rollout();
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(1);
      expect(r.stdout).toMatch(/^note: --verify: each new instance is asked through SSM .*raised for it: checkpoint_delay 0 -> 120 s, bake_time 0 -> 120 s$/m);
      for (const id of web()) expect(r.stderr).toContain(`dockinit: ${id} (web) is not in place: another-bundle: runs bundle bbbbbbbbbbbb (build-runner version 3), expected eeeeeeeeeeee`);
      expect(r.stderr).toMatch(/^dockinit: rolling back the refresh of web /m);
      const refresh = asgSeen.refreshes.at(-1)!;
      expect(asgSeen.state(refresh).status).toBe("RollbackSuccessful");
      // Rolled back at the checkpoint: it never reached Baking.
      expect(refresh.polls).toBeLessThanOrEqual(3);
      expect(Number(refresh.request.get("Preferences.CheckpointDelay"))).toBeGreaterThanOrEqual(120);
      expect(Number(refresh.request.get("Preferences.BakeTime"))).toBeGreaterThanOrEqual(120);
      // Nothing was asked before the instances were on version 4.
      expect(ssm.sent.flatMap((c) => c.instanceIds).sort()).toEqual(web());
    }, 120_000);

    it.skipIf(!existsSync(BIN))("the new instances in place on version 4's bundle: the refresh goes on to Successful, exit 0", async () => {
      for (const id of web()) ssm.hosts.set(id, { kind: "answers", stdout: status({ bundle: NEWER, loaded_bundle: NEWER }) });
      const r = await rollout();
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      for (const id of web()) expect(r.stderr).toContain(`dockinit: verified: ${id} (web) in place`);
      expect(asgSeen.state(asgSeen.refreshes.at(-1)!).status).toBe("Successful");
      // Each new instance asked once.
      expect(ssm.sent.flatMap((c) => c.instanceIds).sort()).toEqual(web());
    }, 120_000);
  });
});
