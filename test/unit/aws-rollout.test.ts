// `dockinit rollout` without AWS: the pure plan as a table, the requests it
// sends and how it pages (aws-sdk-client-mock), every refresh state the wait
// can meet, error mapping, and the CLI's exit codes. The same commands run
// against moto and the refresh fake in test/system/rollout-moto.test.ts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
  type InstanceRefresh,
} from "@aws-sdk/client-auto-scaling";
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand, EC2Client, CreateLaunchTemplateVersionCommand } from "@aws-sdk/client-ec2";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  describeAutoScalingError,
  desiredConfiguration,
  gatherRolloutFacts,
  planRollout,
  refreshPreferences,
  resolveAutoScalingClientSettings,
  startRefreshes,
  waitForRefreshes,
  type GroupFacts,
  type RolloutFacts,
  type RolloutPreferences,
  type RolloutRequest,
} from "../../src/aws/rollout.js";
import { runCli } from "../../src/cli/main.js";
import { mergePreferences, parseCheckpoints } from "../../src/cli/rollout-commands.js";
import { loadConfigString } from "../../src/index.js";
import { readmeBlocks } from "../support/readme.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const T = { id: "lt-0123456789abcdef0", name: "build-runner" };
const CONFIG_DEFAULTS = loadConfigString("version: 1\n").model!.rollout;
const DEFAULTS: RolloutPreferences = CONFIG_DEFAULTS;

function asgError(name: string, message = `${name} happened`, fault: "client" | "server" = "client"): AutoScalingServiceException {
  return new AutoScalingServiceException({ name, $fault: fault, $metadata: { httpStatusCode: fault === "server" ? 500 : 400 }, message });
}

const group = (name: string, over: Partial<GroupFacts> = {}): GroupFacts => ({
  name,
  found: true,
  launchTemplate: { LaunchTemplateId: T.id, LaunchTemplateName: T.name, Version: "3" },
  desiredCapacity: 2,
  instances: 2,
  protectedInstances: 0,
  standbyInstances: 0,
  ...over,
});

const facts = (groups: GroupFacts[], over: Partial<RolloutFacts> = {}): RolloutFacts => ({
  template: { ...T, defaultVersion: 3, latestVersion: 4 },
  version: 4,
  groups,
  imageIds: { 3: "ami-0abcdef1234567890" },
  active: {},
  region: "eu-west-1",
  ...over,
});

const request = (over: Partial<RolloutRequest> = {}, prefs: Partial<RolloutPreferences> = {}): RolloutRequest => ({
  templateName: T.name,
  version: { from: "push", version: 4 },
  groups: [],
  groupsFrom: "discovered",
  preferences: { ...DEFAULTS, ...prefs },
  ...over,
});

// ── The plan (pure) ─────────────────────────────────────────────────────

describe("planRollout: which groups, which version, rollback or not", () => {
  type Row = [string, RolloutRequest, RolloutFacts, { groups?: [string, boolean, string?][]; problems?: string[]; pinned?: string[] }];
  const mixed = (version: string, overrides = false): Partial<GroupFacts> => ({
    launchTemplate: undefined,
    mixedInstancesPolicy: {
      LaunchTemplate: overrides
        ? { LaunchTemplateSpecification: { LaunchTemplateName: "base", Version: "1" }, Overrides: [{ InstanceType: "m7g.large", LaunchTemplateSpecification: { LaunchTemplateId: T.id, Version: version } }] }
        : { LaunchTemplateSpecification: { LaunchTemplateName: T.name, Version: version }, Overrides: [{ InstanceType: "t3.large" }] },
    },
  });
  it.each<Row>([
    ["a numbered group: auto rollback on", request(), facts([group("web")]), { groups: [["web", true]] }],
    ["$Default: no automatic rollback, and the plan says why; pinned after success", request(), facts([group("web", { launchTemplate: { LaunchTemplateName: T.name, Version: "$Default" } })]), { groups: [["web", false, "the group uses version $Default, and AWS rolls back only to a numbered version"]], pinned: ["web"] }],
    ["no Version at all means $Default", request(), facts([group("web", { launchTemplate: { LaunchTemplateId: T.id } })]), { groups: [["web", false, "the group uses version $Default, and AWS rolls back only to a numbered version"]], pinned: ["web"] }],
    ["$Latest in a mixed-instances policy", request(), facts([group("mix", mixed("$Latest"))]), { groups: [["mix", false, "the group uses version $Latest, and AWS rolls back only to a numbered version"]], pinned: ["mix"] }],
    ["the template only in an override", request(), facts([group("mix", mixed("3", true))]), { groups: [["mix", true]] }],
    [
      "ours numbered in an override, the group's base template on $Latest: no automatic rollback either",
      request(),
      facts([group("mix", { launchTemplate: undefined, mixedInstancesPolicy: { LaunchTemplate: { LaunchTemplateSpecification: { LaunchTemplateName: "base", Version: "$Latest" }, Overrides: [{ InstanceType: "m7g.large", LaunchTemplateSpecification: { LaunchTemplateId: T.id, Version: "3" } }] } } })]),
      { groups: [["mix", false, "the group uses version $Latest, and AWS rolls back only to a numbered version"]] },
    ],
    ["an AMI from an SSM parameter: no automatic rollback", request(), facts([group("web")], { imageIds: { 3: "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64" } }), { groups: [["web", false, "version 3's AMI is an SSM parameter (resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64), which AWS cannot roll back to"]] }],
    ["auto_rollback true refuses a group AWS cannot roll back", request({}, { autoRollback: true }), facts([group("web"), group("old", { launchTemplate: { LaunchTemplateId: T.id, Version: "$Default" } })]), { groups: [["web", true], ["old", false]], problems: ["no-rollback:old"], pinned: ["old"] }],
    ["auto_rollback false: never, and no reason is printed", request({}, { autoRollback: false }), facts([group("web")]), { groups: [["web", false]] }],
    ["a named group that does not exist", request({ groups: ["nope"], groupsFrom: "--auto-scaling-group" }), facts([group("nope", { found: false })]), { problems: ["group-not-found:nope"] }],
    ["a named group on another template", request({ groups: ["api"], groupsFrom: "rollout.auto_scaling_groups" }), facts([group("api", { launchTemplate: { LaunchTemplateName: "api-template", Version: "2" } })]), { problems: ["other-template:api"] }],
    ["a named group on a launch configuration", request({ groups: ["legacy"], groupsFrom: "--auto-scaling-group" }), facts([group("legacy", { launchTemplate: undefined, launchConfigurationName: "legacy-lc" })]), { problems: ["other-template:legacy"] }],
    ["a refresh already running", request(), facts([group("web")], { active: { web: { id: "r-1", status: "InProgress" } } }), { groups: [["web", true]], problems: ["in-progress:web"] }],
    ["no group uses the template", request(), facts([]), { problems: ["no-groups"] }],
  ])("%s", (_name, req, given, want) => {
    const plan = planRollout(req, given);
    if (want.groups) expect(plan.groups.map((g) => [g.name, g.autoRollback, ...(g.noRollbackReason ? [g.noRollbackReason] : [])])).toEqual(want.groups);
    expect(plan.problems.map((p) => ("group" in p ? `${p.kind}:${p.group}` : p.kind))).toEqual(want.problems ?? []);
    expect(plan.groups.filter((g) => g.pinned).map((g) => g.name)).toEqual(want.pinned ?? []);
    for (const g of plan.groups) expect(g.request.Preferences.AutoRollback).toBe(g.autoRollback);
  });

  it("named problems say what to do: the other template by name, the running refresh's id and the cancel command", () => {
    const plan = planRollout(
      request({ groups: ["api", "web"], groupsFrom: "--auto-scaling-group" }),
      facts([group("api", { launchTemplate: { LaunchTemplateName: "api-template", Version: "2" } }), group("web")], { active: { web: { id: "0a1b-2c3d", status: "Baking" } } }),
    );
    expect(plan.problems.map((p) => p.message)).toEqual([
      "Auto Scaling group api uses launch template api-template, not build-runner; roll out that template, or leave the group out",
      "group web already has an instance refresh Baking (0a1b-2c3d); wait for it, or cancel it: dockinit rollout --cancel --auto-scaling-group web",
    ]);
  });

  it("found groups need confirmation, named ones do not; the version and the pin are in the plan", () => {
    expect(planRollout(request(), facts([group("web")])).needsConfirmation).toBe(true);
    const named = planRollout(request({ groups: ["web"], groupsFrom: "--auto-scaling-group" }), facts([group("web")]));
    expect(named.needsConfirmation).toBe(false);
    expect(named.version).toBe(4);
    expect(named.notes.join("\n")).toMatch(/sets each group's launch template version to 4: a later `push --set-default` does not reach/);
    expect(named.groups[0]?.previousVersion).toBe(3);
  });

  it.each<[string, Partial<GroupFacts>, Partial<RolloutPreferences>, RegExp[]]>([
    ["protected instances with AWS's Wait", { protectedInstances: 2 }, {}, [/^2 instance\(s\) protected from scale-in: AWS waits an hour/]],
    ["protected instances, protected_instances: refresh", { protectedInstances: 2 }, { protectedInstances: "refresh" }, []],
    ["standby instances with AWS's Wait", { standbyInstances: 1 }, {}, [/^1 instance\(s\) in Standby/]],
    ["an empty group", { instances: 0, desiredCapacity: 0 }, {}, [/^no instances/]],
    ["already on the version", { launchTemplate: { LaunchTemplateId: T.id, Version: "4" } }, {}, [/^already on version 4: only instances not launched from it are replaced/]],
    ["already on the version, skip_matching false", { launchTemplate: { LaunchTemplateId: T.id, Version: "4" } }, { skipMatching: false }, [/every instance is replaced again/]],
  ])("warns: %s", (_name, over, prefs, warnings) => {
    const plan = planRollout(request({}, prefs), facts([group("web", over)]));
    expect(plan.groups[0]!.warnings).toHaveLength(warnings.length);
    warnings.forEach((w, i) => expect(plan.groups[0]!.warnings[i]).toMatch(w));
  });

  it("every effective value is in the plan beside AWS's default", () => {
    const keys = planRollout(request(), facts([group("web")])).settings.map((s) => s.key);
    expect(keys).toEqual(["strategy", "skip_matching", "min_healthy_percentage", "max_healthy_percentage", "instance_warmup", "checkpoints", "checkpoint_delay", "alarms", "bake_time", "auto_rollback", "protected_instances", "standby_instances"]);
  });
});

describe("the StartInstanceRefresh request", () => {
  it("Preferences: every value sent; checkpoints with their delay; alarms as an AlarmSpecification", () => {
    expect(refreshPreferences(DEFAULTS, true)).toEqual({
      MinHealthyPercentage: 90,
      MaxHealthyPercentage: 100,
      InstanceWarmup: 300,
      SkipMatching: true,
      BakeTime: 0,
      AutoRollback: true,
      ScaleInProtectedInstances: "Wait",
      StandbyInstances: "Wait",
    });
    expect(
      refreshPreferences({ ...DEFAULTS, checkpoints: [20, 50, 100], checkpointDelay: 600, alarms: ["web-5xx", "web-latency"], protectedInstances: "refresh", standbyInstances: "terminate" }, false),
    ).toEqual(
      expect.objectContaining({
        CheckpointPercentages: [20, 50, 100],
        CheckpointDelay: 600,
        AlarmSpecification: { Alarms: ["web-5xx", "web-latency"] },
        AutoRollback: false,
        ScaleInProtectedInstances: "Refresh",
        StandbyInstances: "Terminate",
      }),
    );
  });

  it.each<[string, Partial<GroupFacts>, unknown]>([
    ["a LaunchTemplate group (by name): pinned by id", { launchTemplate: { LaunchTemplateName: T.name, Version: "$Default" } }, { LaunchTemplate: { LaunchTemplateId: T.id, Version: "7" } }],
    [
      "a mixed group keeps its distribution and overrides; only our references are pinned, other templates keep theirs (one reference each)",
      {
        launchTemplate: undefined,
        mixedInstancesPolicy: {
          InstancesDistribution: { OnDemandPercentageAboveBaseCapacity: 25, SpotAllocationStrategy: "price-capacity-optimized" },
          LaunchTemplate: {
            LaunchTemplateSpecification: { LaunchTemplateId: T.id, LaunchTemplateName: T.name, Version: "$Latest" },
            Overrides: [
              { InstanceType: "t3.large" },
              { InstanceType: "m7g.large", LaunchTemplateSpecification: { LaunchTemplateId: "lt-arm", LaunchTemplateName: "arm", Version: "2" } },
              { InstanceType: "c7i.large", LaunchTemplateSpecification: { LaunchTemplateName: T.name, Version: "3" } },
            ],
          },
        },
      },
      {
        MixedInstancesPolicy: {
          InstancesDistribution: { OnDemandPercentageAboveBaseCapacity: 25, SpotAllocationStrategy: "price-capacity-optimized" },
          LaunchTemplate: {
            LaunchTemplateSpecification: { LaunchTemplateId: T.id, Version: "7" },
            Overrides: [
              { InstanceType: "t3.large" },
              { InstanceType: "m7g.large", LaunchTemplateSpecification: { LaunchTemplateId: "lt-arm", Version: "2" } },
              { InstanceType: "c7i.large", LaunchTemplateSpecification: { LaunchTemplateId: T.id, Version: "7" } },
            ],
          },
        },
      },
    ],
  ])("DesiredConfiguration: %s", (_name, over, want) => {
    expect(desiredConfiguration(group("g", over), T, 7)).toEqual(want);
  });
});

// ── Talking to AWS (mocked) ─────────────────────────────────────────────

describe("gathering the facts (mocked EC2 and Auto Scaling)", () => {
  let ec2c: EC2Client;
  let asgc: AutoScalingClient;
  let ec2: AwsClientStub<EC2Client>;
  let asg: AwsClientStub<AutoScalingClient>;
  const credentials = { accessKeyId: "AKID", secretAccessKey: "s" };
  beforeEach(() => {
    ec2c = new EC2Client({ region: "eu-west-1", credentials });
    asgc = new AutoScalingClient({ region: "eu-west-1", credentials });
    ec2 = mockClient(ec2c);
    asg = mockClient(asgc);
    ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: T.id, LaunchTemplateName: T.name, DefaultVersionNumber: 3, LatestVersionNumber: 5 }] });
    ec2.on(DescribeLaunchTemplateVersionsCommand).callsFake((input: { Versions?: string[] }) => ({
      LaunchTemplateVersions: (input.Versions ?? []).map((v) => ({ VersionNumber: Number(v), LaunchTemplateData: { ImageId: v === "2" ? "resolve:ssm:/my/ami" : "ami-0abc" } })),
    }));
    asg.on(DescribeInstanceRefreshesCommand).resolves({ InstanceRefreshes: [] });
  });
  afterEach(() => {
    ec2.restore();
    asg.restore();
  });

  const asgOf = (name: string, spec: AutoScalingGroup["LaunchTemplate"]): AutoScalingGroup =>
    ({ AutoScalingGroupName: name, LaunchTemplate: spec, MinSize: 0, MaxSize: 2, DesiredCapacity: 1, Instances: [] }) as unknown as AutoScalingGroup;

  it("pages through every group (no filter exists for a template) and keeps those that use it by id or name", async () => {
    asg
      .on(DescribeAutoScalingGroupsCommand)
      .resolvesOnce({ AutoScalingGroups: [asgOf("a", { LaunchTemplateName: T.name, Version: "3" }), asgOf("x", { LaunchTemplateName: "other", Version: "1" })], NextToken: "p2" })
      .resolvesOnce({ AutoScalingGroups: [asgOf("b", { LaunchTemplateId: T.id, Version: "2" })], NextToken: "p3" })
      .resolvesOnce({ AutoScalingGroups: [asgOf("c", { LaunchTemplateId: T.id, Version: "$Default" })] });
    const r = await gatherRolloutFacts(ec2c, asgc, request({ version: { from: "default" } }));
    if (!r.ok) throw new Error(r.failure.message);
    expect(asg.commandCalls(DescribeAutoScalingGroupsCommand).map((c) => c.args[0].input)).toEqual([{ MaxRecords: 100 }, { MaxRecords: 100, NextToken: "p2" }, { MaxRecords: 100, NextToken: "p3" }]);
    expect(r.facts.groups.map((g) => g.name)).toEqual(["a", "b", "c"]);
    expect(r.facts.version).toBe(3); // the default version, as its number
    // One DescribeLaunchTemplateVersions for the numbered versions the groups run (rollback needs real AMIs).
    expect(ec2.commandCalls(DescribeLaunchTemplateVersionsCommand).map((c) => c.args[0].input)).toEqual([{ LaunchTemplateId: T.id, Versions: ["3", "2"] }]);
    expect(r.facts.imageIds).toEqual({ 2: "resolve:ssm:/my/ami", 3: "ami-0abc" });
    expect(asg.commandCalls(DescribeInstanceRefreshesCommand).map((c) => c.args[0].input.AutoScalingGroupName)).toEqual(["a", "b", "c"]);
  });

  it("named groups are asked for by name; a missing one is reported as not found, not dropped", async () => {
    asg.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [asgOf("a", { LaunchTemplateName: T.name, Version: "3" })] });
    const r = await gatherRolloutFacts(ec2c, asgc, request({ groups: ["a", "gone"], groupsFrom: "--auto-scaling-group" }, { autoRollback: false }));
    if (!r.ok) throw new Error(r.failure.message);
    expect(asg.commandCalls(DescribeAutoScalingGroupsCommand)[0]?.args[0].input).toEqual({ AutoScalingGroupNames: ["a", "gone"], MaxRecords: 100 });
    expect(r.facts.groups.map((g) => [g.name, g.found])).toEqual([["a", true], ["gone", false]]);
    // auto_rollback false: no AMI lookup needed.
    expect(ec2.commandCalls(DescribeLaunchTemplateVersionsCommand)).toHaveLength(0);
  });

  it.each<[string, RolloutRequest["version"], number | string]>([
    ["the version push made", { from: "push", version: 6 }, 6],
    ["--version $Latest", { from: "--version", selector: "$Latest" }, 5],
    ["--version $Default", { from: "--version", selector: "$Default" }, 3],
    ["--version 4 (checked to exist)", { from: "--version", selector: "4" }, 4],
  ])("the version: %s → %s", async (_name, version, want) => {
    asg.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    const r = await gatherRolloutFacts(ec2c, asgc, request({ version }, { autoRollback: false }));
    expect(r.ok && r.facts.version).toBe(want);
  });

  it("a version that does not exist, and a template that does not exist, are failures before any group is read", async () => {
    ec2.on(DescribeLaunchTemplateVersionsCommand).rejects(Object.assign(new Error("no such version"), { name: "InvalidLaunchTemplateId.VersionNotFound" }));
    const noVersion = await gatherRolloutFacts(ec2c, asgc, request({ version: { from: "--version", selector: "9" } }));
    expect(noVersion.ok || noVersion.failure).toEqual(expect.objectContaining({ kind: "version-not-found", message: expect.stringContaining("has no version 9") }));
    ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [] });
    const noTemplate = await gatherRolloutFacts(ec2c, asgc, request());
    expect(noTemplate.ok || noTemplate.failure.kind).toBe("not-found");
    expect(asg.commandCalls(DescribeAutoScalingGroupsCommand)).toHaveLength(0);
  });

  it("startRefreshes stops at the first failure and says which started; a collision names the running refresh", async () => {
    const plan = planRollout(request({ groups: ["a", "b", "c"], groupsFrom: "--auto-scaling-group" }), facts([group("a"), group("b"), group("c")]));
    asg.on(StartInstanceRefreshCommand, { AutoScalingGroupName: "a" }).resolves({ InstanceRefreshId: "r-a" });
    asg.on(StartInstanceRefreshCommand, { AutoScalingGroupName: "b" }).rejects(asgError("InstanceRefreshInProgressFault", "An Instance Refresh is already in progress"));
    asg.on(DescribeInstanceRefreshesCommand, { AutoScalingGroupName: "b" }).resolves({ InstanceRefreshes: [{ InstanceRefreshId: "r-old", Status: "InProgress" }] });
    const r = await startRefreshes(asgc, plan);
    expect(r).toEqual({
      ok: false,
      group: "b",
      started: [{ group: "a", id: "r-a" }],
      inProgress: { id: "r-old", status: "InProgress" },
      failure: expect.objectContaining({ code: "InstanceRefreshInProgress", kind: "conflict" }),
    });
    expect(asg.commandCalls(StartInstanceRefreshCommand).map((c) => c.args[0].input.AutoScalingGroupName)).toEqual(["a", "b"]);
    expect(asg.commandCalls(StartInstanceRefreshCommand)[0]?.args[0].input).toEqual(plan.groups[0]!.request);
  });
});

describe("Auto Scaling errors become one line", () => {
  const ctx = { region: "eu-west-1" };
  it.each<[string, unknown, string, RegExp]>([
    ["InstanceRefreshInProgressFault", asgError("InstanceRefreshInProgressFault"), "conflict", /^group web already has an instance refresh in progress \(InstanceRefreshInProgress\)$/],
    ["ActiveInstanceRefreshNotFoundFault", asgError("ActiveInstanceRefreshNotFoundFault"), "not-found", /^group web has no instance refresh in progress/],
    ["IrreversibleInstanceRefreshFault", asgError("IrreversibleInstanceRefreshFault"), "invalid-request", /cannot roll back .*\$Latest\/\$Default or uses an SSM parameter/],
    ["ResourceContentionFault", asgError("ResourceContentionFault"), "conflict", /another request is changing group web/],
    ["LimitExceededFault", asgError("LimitExceededFault", "too many refreshes"), "limit", /^an Auto Scaling limit was reached \(LimitExceeded\): too many refreshes$/],
    ["ValidationError (group gone)", asgError("ValidationError", "AutoScalingGroup name not found - web"), "not-found", /^group web not found in eu-west-1/],
    ["AccessDenied", asgError("AccessDenied", "User is not authorized"), "access-denied", /^access denied: this identity may not call autoscaling:StartInstanceRefresh on group web in eu-west-1/],
    ["Throttling", asgError("Throttling", "Rate exceeded"), "throttled", /^Auto Scaling is throttling requests \(Throttling\)/],
    ["a server error", asgError("InternalFailure", "boom", "server"), "server", /^Auto Scaling had an internal error \(InternalFailure\).*run rollout again later$/],
    ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), "network", /^cannot reach Auto Scaling in eu-west-1 \(ECONNREFUSED\)/],
  ])("%s", (_name, err, kind, message) => {
    const f = describeAutoScalingError(err, "StartInstanceRefresh", "group web", ctx);
    expect(f.kind).toBe(kind);
    expect(f.message).toMatch(message);
  });
});

describe("waiting: every state DescribeInstanceRefreshes can report", () => {
  let asgc: AutoScalingClient;
  let asg: AwsClientStub<AutoScalingClient>;
  beforeEach(() => {
    asgc = new AutoScalingClient({ region: "eu-west-1", credentials: { accessKeyId: "AKID", secretAccessKey: "s" } });
    asg = mockClient(asgc);
  });
  afterEach(() => asg.restore());

  /** A group whose refresh reports these statuses, one per poll (the last repeats). */
  function script(group: string, statuses: Partial<InstanceRefresh>[]) {
    let n = 0;
    asg.on(DescribeInstanceRefreshesCommand, { AutoScalingGroupName: group }).callsFake(() => ({
      InstanceRefreshes: [{ InstanceRefreshId: `r-${group}`, AutoScalingGroupName: group, ...statuses[Math.min(n++, statuses.length - 1)] }],
    }));
  }
  const noSleep = { sleeps: 0, sleep: async () => void noSleep.sleeps++ };

  it.each<[string, string[], "successful" | "failed"]>([
    ["Successful", ["Pending", "InProgress", "Successful"], "successful"],
    ["Baking before Successful keeps waiting", ["InProgress", "Baking", "Baking", "Successful"], "successful"],
    ["Failed", ["InProgress", "Failed"], "failed"],
    ["Cancelling, then Cancelled", ["InProgress", "Cancelling", "Cancelled"], "failed"],
    ["RollbackInProgress, then RollbackSuccessful", ["InProgress", "RollbackInProgress", "RollbackSuccessful"], "failed"],
    ["RollbackFailed", ["RollbackInProgress", "RollbackFailed"], "failed"],
    ["a status this code does not know is polled again until it ends", ["InProgress", "SomethingNew", "Successful"], "successful"],
  ])("%s", async (_name, statuses, outcome) => {
    script("web", statuses.map((Status) => ({ Status }) as Partial<InstanceRefresh>));
    noSleep.sleeps = 0;
    const seen: string[] = [];
    const r = await waitForRefreshes(asgc, [{ group: "web", id: "r-web" }], "eu-west-1", { pollMs: 15_000, sleep: noSleep.sleep, onPoll: (p) => seen.push(p[0]!.status) });
    expect(r.outcome).toBe(outcome);
    expect(seen).toEqual(statuses);
    expect(noSleep.sleeps).toBe(statuses.length - 1); // one sleep between polls, none after the end
    expect(asg.commandCalls(DescribeInstanceRefreshesCommand)[0]?.args[0].input).toEqual({ AutoScalingGroupName: "web", InstanceRefreshIds: ["r-web"] });
  });

  it("several groups: a finished one is not polled again; one failure makes the whole wait fail once all have ended", async () => {
    script("a", [{ Status: "Successful", PercentageComplete: 100 }]);
    script("b", [{ Status: "InProgress", PercentageComplete: 40, InstancesToUpdate: 3, StatusReason: "Waiting for instances to warm up" }, { Status: "Failed", StatusReason: "health checks failed" }]);
    const r = await waitForRefreshes(asgc, [{ group: "a", id: "r-a" }, { group: "b", id: "r-b" }], "eu-west-1", { pollMs: 1, sleep: async () => undefined, onPoll: () => undefined });
    expect(r).toEqual({
      outcome: "failed",
      progress: [
        { group: "a", id: "r-a", status: "Successful", percentage: 100 },
        { group: "b", id: "r-b", status: "Failed", reason: "health checks failed" },
      ],
    });
    expect(asg.commandCalls(DescribeInstanceRefreshesCommand).map((c) => c.args[0].input.AutoScalingGroupName)).toEqual(["a", "b", "b"]);
  });

  it("an abort (Ctrl-C) ends the wait and sends nothing that would stop a refresh", async () => {
    script("web", [{ Status: "InProgress" }]);
    const abort = new AbortController();
    const r = await waitForRefreshes(asgc, [{ group: "web", id: "r-web" }], "eu-west-1", {
      pollMs: 15_000,
      signal: abort.signal,
      sleep: async () => abort.abort(),
      onPoll: () => undefined,
    });
    expect(r.outcome).toBe("interrupted");
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(0);
    expect(asg.commandCalls(RollbackInstanceRefreshCommand)).toHaveLength(0);
  });

  it("a refresh Auto Scaling stops reporting ends the wait after 3 polls, as an AWS error, instead of polling for ever", async () => {
    asg.on(DescribeInstanceRefreshesCommand).resolves({ InstanceRefreshes: [{ InstanceRefreshId: "someone-elses", Status: "Successful" }] });
    let sleeps = 0;
    const r = await waitForRefreshes(asgc, [{ group: "web", id: "r-web" }], "eu-west-1", { pollMs: 1, sleep: async () => void sleeps++, onPoll: () => undefined });
    expect(r.outcome === "aws-error" && r.failure.message).toBe("Auto Scaling no longer reports refresh r-web of group web (3 polls in a row)");
    expect(sleeps).toBe(2);
  });

  it("an AWS error while polling is reported (exit 3 in the CLI), with the progress so far", async () => {
    asg.on(DescribeInstanceRefreshesCommand).rejects(asgError("AccessDenied", "not authorized"));
    const r = await waitForRefreshes(asgc, [{ group: "web", id: "r-web" }], "eu-west-1", { pollMs: 1, sleep: async () => undefined, onPoll: () => undefined });
    expect(r.outcome).toBe("aws-error");
  });
});

describe("client settings and flags", () => {
  it.each<[string, Record<string, string>, string | undefined]>([
    ["the service's own variable", { AWS_ENDPOINT_URL_AUTO_SCALING: "http://asg.local", AWS_ENDPOINT_URL_EC2: "http://ec2.local" }, "http://asg.local"],
    ["the global one when the service's is unset", { AWS_ENDPOINT_URL: "http://all.local", AWS_ENDPOINT_URL_EC2: "http://ec2.local" }, "http://all.local"],
    ["never EC2's", { AWS_ENDPOINT_URL_EC2: "http://ec2.local" }, undefined],
    ["none when configured endpoints are ignored", { AWS_ENDPOINT_URL_AUTO_SCALING: "http://asg.local", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }, undefined],
  ])("Auto Scaling endpoint: %s", (_name, env, endpoint) => {
    expect(resolveAutoScalingClientSettings({}, { AWS_REGION: "eu-west-1", ...env }).endpoint).toBe(endpoint);
  });

  it.each<[string, Parameters<typeof mergePreferences>[1], string]>([
    ["--checkpoints not ending in 100", { checkpoints: [20, 50] }, "--checkpoints: the last checkpoint is 50, not 100"],
    ["--checkpoints not increasing", { checkpoints: [50, 20, 100] }, "--checkpoints: checkpoint 20 does not come after 50"],
    ["--min-healthy above 100", { minHealthy: 101 }, "--min-healthy: "],
  ])("a bad flag is a usage error naming the flag: %s", (_name, flags, message) => {
    const r = mergePreferences(CONFIG_DEFAULTS, flags);
    expect("error" in r && r.error).toContain(message);
  });

  it("flags override dockinit.yaml field by field", () => {
    const config = loadConfigString("version: 1\nrollout:\n  min_healthy_percentage: 50\n  instance_warmup: 900\n  checkpoints: [50, 100]\n  checkpoint_delay: 60\n").model!.rollout;
    const r = mergePreferences(config, { minHealthy: 75, autoRollback: false });
    expect("preferences" in r && r.preferences).toEqual(expect.objectContaining({ minHealthyPercentage: 75, instanceWarmup: 900, checkpoints: [50, 100], checkpointDelay: 60, autoRollback: false }));
    expect(parseCheckpoints("20, 50,100")).toEqual([20, 50, 100]);
    expect(parseCheckpoints("none")).toEqual([]);
  });
});

// ── Through the CLI (runCli), clients mocked at the class ────────────────

describe("dockinit rollout / push --rollout (CLI, mocked AWS)", () => {
  let dir: string;
  let ec2: AwsClientStub<EC2Client>;
  let asg: AwsClientStub<AutoScalingClient>;
  beforeAll(() => {
    ec2 = mockClient(EC2Client);
    asg = mockClient(AutoScalingClient);
  });
  afterAll(() => {
    ec2.restore();
    asg.restore();
  });
  beforeEach(() => {
    ec2.reset();
    asg.reset();
    dir = mkdtempSync(join(tmpdir(), "dockinit-rollout-unit-"));
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nname: build-runner\nlaunch_template:\n  name: build-runner\n  region: eu-west-1\n");
    ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: T.id, LaunchTemplateName: T.name, DefaultVersionNumber: 3, LatestVersionNumber: 4 }] });
    ec2.on(DescribeLaunchTemplateVersionsCommand).callsFake((input: { Versions?: string[] }) => ({
      LaunchTemplateVersions: (input.Versions ?? []).map((v) => ({ LaunchTemplateId: T.id, VersionNumber: v === "$Latest" ? 4 : Number(v), LaunchTemplateData: { ImageId: "ami-0abc", UserData: "" } })),
    }));
    asg.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [{ AutoScalingGroupName: "web", LaunchTemplate: { LaunchTemplateId: T.id, Version: "3" }, DesiredCapacity: 2, Instances: [] } as unknown as AutoScalingGroup],
    });
    asg.on(DescribeInstanceRefreshesCommand, { InstanceRefreshIds: ["r-web"] }).resolves({ InstanceRefreshes: [{ InstanceRefreshId: "r-web", Status: "Successful", PercentageComplete: 100 }] });
    asg.on(DescribeInstanceRefreshesCommand, { AutoScalingGroupName: "web", MaxRecords: 10 }).resolves({ InstanceRefreshes: [] });
    asg.on(StartInstanceRefreshCommand).resolves({ InstanceRefreshId: "r-web" });
    return () => rmSync(dir, { recursive: true, force: true });
  });

  async function cli(argv: string[], io: { tty?: boolean; answer?: string; interrupt?: boolean } = {}) {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      stdout: (t) => (stdout += typeof t === "string" ? t : Buffer.from(t).toString("utf8")),
      stderr: (t) => (stderr += t),
      cwd: dir,
      env: { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" },
      stdinIsTTY: io.tty,
      stdoutIsTTY: io.tty,
      ask: async () => io.answer ?? "",
      // "Ctrl-C" as soon as the wait installs its handler.
      onInterrupt: (handler) => {
        if (io.interrupt) queueMicrotask(handler);
        return () => undefined;
      },
    });
    // Every AWS command first says which region it works in (issue 27); the rest is what these tests read.
    const regionLines = stderr.match(/^dockinit: region .*\n/gm) ?? [];
    return { code, stdout, stderr: stderr.replace(/^dockinit: region .*\n/gm, ""), regionLines };
  }

  it.each<[string, string[], { tty?: boolean; answer?: string; interrupt?: boolean }, number, number]>([
    ["found groups, --yes: started and successful", ["rollout", "--yes"], {}, 0, 1],
    ["found groups, no terminal, no --yes: usage error", ["rollout"], {}, 2, 0],
    ["found groups on a terminal, answered y", ["rollout"], { tty: true, answer: "y" }, 0, 1],
    ["found groups on a terminal, answered n", ["rollout"], { tty: true, answer: "n" }, 1, 0],
    ["named groups need no confirmation", ["rollout", "--auto-scaling-group", "web"], {}, 0, 1],
    ["--dry-run starts nothing", ["rollout", "--dry-run"], {}, 0, 0],
    ["--no-wait: exit 0 once started", ["rollout", "--yes", "--no-wait"], {}, 0, 1],
    ["a bad --checkpoints is a usage error before AWS", ["rollout", "--yes", "--checkpoints", "20,50"], {}, 2, 0],
  ])("%s", async (_name, argv, io, code, starts) => {
    const r = await cli(argv, io);
    expect(r.code, r.stderr).toBe(code);
    // Said once, before AWS is asked anything; a usage error found first sends nothing and says nothing.
    expect(r.regionLines).toEqual(code === 2 && argv.includes("--checkpoints") ? [] : ["dockinit: region eu-west-1 (from launch_template.region in dockinit.yaml)\n"]);
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(starts);
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(0);
  });

  it("Ctrl-C as the refreshes start: the starts finish, then exit 130 with how to follow and cancel; the refresh goes on", async () => {
    asg.on(DescribeInstanceRefreshesCommand, { InstanceRefreshIds: ["r-web"] }).resolves({ InstanceRefreshes: [{ InstanceRefreshId: "r-web", Status: "InProgress", PercentageComplete: 20 }] });
    const r = await cli(["rollout", "--yes"], { interrupt: true });
    expect(r.code).toBe(130);
    expect(r.stderr).toBe(
      [
        "dockinit: stopped waiting; the refreshes go on:",
        "  follow: aws autoscaling describe-instance-refreshes --auto-scaling-group-name web --instance-refresh-ids r-web",
        "  cancel: dockinit rollout --cancel --auto-scaling-group web",
        "",
      ].join("\n"),
    );
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(1);
    // Stopped before the first poll: the interrupt came while starting.
    expect(asg.commandCalls(DescribeInstanceRefreshesCommand, { InstanceRefreshIds: ["r-web"] })).toHaveLength(0);
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(0);
  });

  it("flags reach the request: --version, --min-healthy, --warmup, --checkpoints, --no-auto-rollback", async () => {
    const r = await cli(["rollout", "--yes", "--version", "latest", "--min-healthy", "50", "--warmup", "60", "--checkpoints", "25,100", "--no-auto-rollback"]);
    expect(r.code, r.stderr).toBe(0);
    expect(asg.commandCalls(StartInstanceRefreshCommand)[0]?.args[0].input).toEqual({
      AutoScalingGroupName: "web",
      Strategy: "Rolling",
      DesiredConfiguration: { LaunchTemplate: { LaunchTemplateId: T.id, Version: "4" } },
      Preferences: {
        MinHealthyPercentage: 50,
        MaxHealthyPercentage: 100,
        InstanceWarmup: 60,
        SkipMatching: true,
        CheckpointPercentages: [25, 100],
        CheckpointDelay: 0,
        BakeTime: 0,
        AutoRollback: false,
        ScaleInProtectedInstances: "Wait",
        StandbyInstances: "Wait",
      },
    });
  });

  it("push --rollout rolls out the version push just made; --json gives JSON lines from the push on", async () => {
    ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { LaunchTemplateId: T.id, VersionNumber: 5 } });
    const r = await cli(["push", "--rollout", "--yes", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { event: string; version?: number });
    expect(events.map((e) => e.event)).toEqual(["push", "plan", "started", "progress", "result"]);
    expect(events[0]?.version).toBe(5);
    expect(events[1]?.version).toBe(5);
    expect(asg.commandCalls(StartInstanceRefreshCommand)[0]?.args[0].input.DesiredConfiguration).toEqual({ LaunchTemplate: { LaunchTemplateId: T.id, Version: "5" } });
  });

  it("push --rollout --dry-run: EC2's DryRun, then the plan for the version push would make; nothing starts", async () => {
    ec2.on(CreateLaunchTemplateVersionCommand).rejects(Object.assign(new Error("Request would have succeeded"), { name: "DryRunOperation" }));
    const r = await cli(["push", "--rollout", "--dry-run"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("dry run:         EC2 says creating version 5 from version 4 would succeed; nothing changed\n");
    expect(r.stdout).toMatch(/^version: +5 \(the version push just made\)/m);
    expect(r.stdout).toContain("dry run: nothing started\n");
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(0);
  });

  it("push --rollout --json: a failed push is one JSON line too, and nothing rolls out", async () => {
    ec2.on(DescribeLaunchTemplatesCommand).rejects(Object.assign(new Error("not authorized"), { name: "UnauthorizedOperation" }));
    const r = await cli(["push", "--rollout", "--yes", "--json"]);
    expect(r.code).toBe(3);
    expect(r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { event: string; ok: boolean })).toEqual([expect.objectContaining({ event: "push", ok: false })]);
    expect(r.stderr).toMatch(/^dockinit: access denied: this identity may not call ec2:DescribeLaunchTemplates/);
    expect(asg.calls()).toHaveLength(0);
  });

  it("push --rollout to found groups without a terminal or --yes: refused before anything is pushed", async () => {
    ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { LaunchTemplateId: T.id, VersionNumber: 5 } });
    const r = await cli(["push", "--rollout"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pass --yes .*nothing pushed/);
    expect(ec2.commandCalls(CreateLaunchTemplateVersionCommand)).toHaveLength(0);
    expect(asg.calls()).toHaveLength(0);
  });

  it.each([["--cancel"], ["--rollback"]])("%s --dry-run names the running refreshes and stops none", async (flag) => {
    asg.on(DescribeInstanceRefreshesCommand, { AutoScalingGroupName: "web", MaxRecords: 10 }).resolves({ InstanceRefreshes: [{ InstanceRefreshId: "r-web", Status: "InProgress" }] });
    const r = await cli(["rollout", flag, "--dry-run"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dry run: would call (Cancel|Rollback)InstanceRefresh for web; nothing changed/);
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(0);
    expect(asg.commandCalls(RollbackInstanceRefreshCommand)).toHaveLength(0);
  });

  it("--cancel of found groups acts only on those with a refresh running (none: nothing to do, exit 0)", async () => {
    const r = await cli(["rollout", "--cancel", "--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/has an instance refresh in progress; nothing to cancel/);
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(0);
  });

  it("push without --rollout touches no Auto Scaling API", async () => {
    ec2.on(CreateLaunchTemplateVersionCommand).resolves({ LaunchTemplateVersion: { LaunchTemplateId: T.id, VersionNumber: 5 } });
    expect((await cli(["push"])).code).toBe(0);
    expect(asg.calls()).toHaveLength(0);
  });

  it("a config read from standard input (-c -) leaves no terminal to confirm on: --yes is needed, even on a terminal", async () => {
    const config = readFileSync(join(dir, "dockinit.yaml"));
    rmSync(join(dir, "dockinit.yaml"));
    let stderr = "";
    let asked = false;
    const run = (argv: string[]) =>
      runCli(argv, {
        stdout: () => undefined,
        stderr: (t) => (stderr += t),
        cwd: dir,
        env: { AWS_ACCESS_KEY_ID: "AKID", AWS_SECRET_ACCESS_KEY: "s" },
        stdinIsTTY: true,
        stdoutIsTTY: true,
        stderrIsTTY: true,
        readStdin: () => config,
        ask: async () => ((asked = true), "y"),
      });
    expect(await run(["rollout", "-c", "-"])).toBe(2);
    expect(asked).toBe(false);
    expect(stderr).toContain("dockinit: reading the configuration from standard input (end it with Ctrl-D)\n");
    expect(stderr).toContain("standard input held the configuration (-c -), so nothing can be confirmed on it: pass --yes");
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(0);
    expect(await run(["rollout", "-c", "-", "--yes"])).toBe(0);
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(1);
  });

  // The race: the describe before the start showed no refresh, then the
  // start met one (started meanwhile, or not listed yet). The way out is named.
  it("InstanceRefreshInProgress at the start, with none listed: exit 3 and the cancel command", async () => {
    asg.on(StartInstanceRefreshCommand).rejects(asgError("InstanceRefreshInProgressFault", "An Instance Refresh is already in progress"));
    const r = await cli(["rollout", "--auto-scaling-group", "web"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("could not start the refresh of web: group web already has an instance refresh in progress (InstanceRefreshInProgress); another refresh started meanwhile: wait for it, or cancel it with dockinit rollout --cancel --auto-scaling-group web\n");
  });

  it("a named group that does not exist: the error alone, no plan printed, nothing started", async () => {
    asg.on(DescribeAutoScalingGroupsCommand).resolves({ AutoScalingGroups: [] });
    const r = await cli(["rollout", "--auto-scaling-group", "wbe"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("dockinit: Auto Scaling group wbe (from --auto-scaling-group) does not exist in eu-west-1\ndockinit: nothing started\n");
    expect(asg.commandCalls(StartInstanceRefreshCommand)).toHaveLength(0);
  });

  // The emergency stop needs no config: from any folder, the named group's refresh is cancelled.
  it("rollout --cancel --auto-scaling-group works without a dockinit.yaml", async () => {
    rmSync(join(dir, "dockinit.yaml"));
    asg.on(CancelInstanceRefreshCommand).resolves({ InstanceRefreshId: "r-web" });
    const r = await cli(["rollout", "--cancel", "--auto-scaling-group", "web", "--region", "eu-west-1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("cancelling: web refresh r-web; instances already replaced stay replaced\n");
    expect(asg.commandCalls(CancelInstanceRefreshCommand)[0]?.args[0].input).toEqual({ AutoScalingGroupName: "web" });
    expect(r.regionLines).toEqual(["dockinit: region eu-west-1 (from --region)\n"]);
  });

  it("the emergency stop goes through a dockinit.yaml that does not validate (a warning; its region unused)", async () => {
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nbogus: 1\nlaunch_template:\n  region: eu-west-1\n");
    asg.on(CancelInstanceRefreshCommand).resolves({ InstanceRefreshId: "r-web" });
    const r = await cli(["rollout", "--cancel", "--auto-scaling-group", "web", "--region", "eu-west-1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("dockinit: warning: dockinit.yaml does not validate (`dockinit check` says why); stopping without its settings (its region too)\n");
    expect(asg.commandCalls(CancelInstanceRefreshCommand)).toHaveLength(1);
  });

  it.each([
    [["rollout"], /^dockinit: no dockinit.yaml here, and rollout never acts on the built-in default; nothing sent to AWS/],
    [["rollout", "--dry-run"], /^dockinit: no dockinit.yaml here, and rollout never acts on the built-in default; nothing sent to AWS/],
    [["push", "--rollout", "--yes"], /^dockinit: no dockinit.yaml here, and push never acts on the built-in default; nothing sent to AWS/],
    // The emergency stop without groups: it says how to name them, not to write a config.
    [["rollout", "--cancel"], /^dockinit: which groups\? pass --auto-scaling-group NAME \(no dockinit.yaml needed to stop a refresh\); nothing sent to AWS\n$/],
  ])("without a dockinit.yaml, %s refuses before any AWS call (exit 2)", async (argv, said) => {
    rmSync(join(dir, "dockinit.yaml"));
    const r = await cli([...argv, "--launch-template", "build-runner", "--region", "eu-west-1"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(said);
    expect(ec2.calls()).toHaveLength(0);
    expect(asg.calls()).toHaveLength(0);
  });

  it("an AWS failure is exit 3 with one line", async () => {
    asg.on(DescribeAutoScalingGroupsCommand).rejects(asgError("AccessDenied", "User is not authorized"));
    const r = await cli(["rollout", "--yes"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe("dockinit: access denied: this identity may not call autoscaling:DescribeAutoScalingGroups on the Auto Scaling groups in eu-west-1 (AccessDenied); grant it in IAM\n");
  });

  it("the plan shown in the README is what rollout --dry-run prints for that template and those groups", async () => {
    const shown = readmeBlocks().find((b) => b.section === "Rolling out to Auto Scaling groups" && b.code.startsWith("launch template:"))!.code;
    const id = "lt-0c5c7a1e4b2d9f310";
    const instances = (n: number) => Array.from({ length: n }, (_, i) => ({ InstanceId: `i-${i}`, LifecycleState: "InService", ProtectedFromScaleIn: false }));
    ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: id, LaunchTemplateName: T.name, DefaultVersionNumber: 7, LatestVersionNumber: 7 }] });
    asg.on(DescribeAutoScalingGroupsCommand).resolves({
      AutoScalingGroups: [
        { AutoScalingGroupName: "web", LaunchTemplate: { LaunchTemplateName: T.name, Version: "$Default" }, DesiredCapacity: 4, Instances: instances(4) },
        { AutoScalingGroupName: "api", LaunchTemplate: { LaunchTemplateId: id, Version: "6" }, DesiredCapacity: 2, Instances: instances(2) },
      ] as unknown as AutoScalingGroup[],
    });
    asg.on(DescribeInstanceRefreshesCommand).resolves({ InstanceRefreshes: [] });
    const r = await cli(["rollout", "--dry-run"]);
    expect(r.code, r.stderr).toBe(0);
    // The README stops at "  ..." after the first preferences.
    const [before] = shown.split("  ...\n");
    expect(r.stdout.slice(0, before!.length)).toBe(before);
  });
});
