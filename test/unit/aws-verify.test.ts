// `dockinit verify` without AWS: the bundle id found in UserData however it is
// packed, the host's status JSON read as untrusted input, every verdict as a
// table, and the conversation with SSM/EC2/Auto Scaling through
// aws-sdk-client-mock: request shapes, batching (50 ids a SendCommand),
// paging, throttling, InvocationDoesNotExist, error mapping, exit codes.
// The same command runs end to end in test/system/verify-moto.test.ts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { AutoScalingClient, DescribeAutoScalingGroupsCommand, type AutoScalingGroup } from "@aws-sdk/client-auto-scaling";
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand, DescribeTagsCommand, EC2Client } from "@aws-sdk/client-ec2";
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  InvocationDoesNotExist,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
  SSMServiceException,
  type CommandInvocation,
  type CommandInvocationStatus,
} from "@aws-sdk/client-ssm";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { renderedBundleId, bundleIdOfUserData, findBundleId } from "../../src/bundle/bundle-id.js";
import { classifyInvocation, parseHostStatus, resolveSsmClientSettings, verifyFleet, type Answer, type Target, type VerifyOptions } from "../../src/aws/verify.js";
import { runCli } from "../../src/cli/main.js";
import { renderBundle } from "../../src/api.js";
import { loadConfigString } from "../../src/index.js";
import { REPO } from "../support/fixtures.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const hex = (c: string) => c.repeat(64);
const B1 = hex("1");
const B2 = hex("2");
const B3 = hex("3");
const LT = { id: "lt-0123456789abcdef0", name: "build-runner" };

/** The firewall script's line, as the host side renders it. */
const scriptWith = (id: string) => `#!/bin/bash\nset -euo pipefail\nreadonly BUNDLE_ID='${id}'\nmain "$@"\n`;
const cloudConfigWith = (id: string) => `#cloud-config\nwrite_files:\n  - path: /usr/local/sbin/dockinit-firewall\n    content: |\n${scriptWith(id).replace(/^/gm, "      ")}`;
const b64 = (text: string | Buffer) => Buffer.from(text).toString("base64");

/** What `dockinit-firewall status --json` prints. */
function status(over: Record<string, unknown> = {}): string {
  return JSON.stringify({
    version: 1,
    ok: true,
    backend: "nftables",
    backend_reason: "nft is installed and Docker uses nftables",
    bundle: B1,
    loaded_bundle: B1,
    problems: [],
    docker: { version: "29.7.0", firewall_backend: "nftables" },
    reapplied: { count: 0, last: null, reason: null },
    checked_at: "2026-12-06T12:00:00Z",
    ...over,
  });
}

describe("the bundle id in a launch-template version's UserData", () => {
  it("plain cloud-config, gzip, MIME with a quoted-printable part (the line soft-broken), a base64 part; none without the line", () => {
    expect(bundleIdOfUserData(b64(cloudConfigWith(B1)))).toBe(B1);
    expect(bundleIdOfUserData(b64(gzipSync(cloudConfigWith(B2))))).toBe(B2);
    // quoted-printable: lines at most 76 characters, so the 85-character line is broken with "=\n"; "=3D" is "=".
    const line = `readonly BUNDLE_ID=3D'${B3}'`;
    const qp = `Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: quoted-printable\n\n#cloud-config\n${line.slice(0, 60)}=\n${line.slice(60)}\n--b--\n`;
    expect(findBundleId(qp)).toBe(B3);
    const part = b64(cloudConfigWith(B2)).replace(/(.{76})/g, "$1\n");
    expect(findBundleId(`Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Transfer-Encoding: base64\n\n${part}\n--b--\n`)).toBe(B2);
    expect(bundleIdOfUserData(b64("#cloud-config\nruncmd: [echo hi]\n"))).toBeUndefined();
    expect(bundleIdOfUserData(undefined)).toBeUndefined();
    // An id that is not 64 lower-case hex digits is not one.
    expect(findBundleId(`readonly BUNDLE_ID='${"A".repeat(64)}'`)).toBeUndefined();
    expect(bundleIdOfUserData(b64(Buffer.from([0x1f, 0x8b, 1, 2, 3])))).toBeUndefined();
  });

  it("renderedBundleId: the manifest's bundleId, else the script's line, else a hash of the files (which no host reports)", () => {
    const bundle = renderBundle(loadConfigString("version: 1\n")).bundle!;
    const id = renderedBundleId(bundle);
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    expect(renderedBundleId({ ...bundle, cloudConfig: cloudConfigWith(B2), manifest: bundle.manifest })).toBe(bundle.manifest && "bundleId" in bundle.manifest ? id : B2);
    expect(renderedBundleId({ cloudConfig: "", files: bundle.files, manifest: { ...bundle.manifest, bundleId: B3 } as typeof bundle.manifest })).toBe(B3);
    expect(renderedBundleId({ cloudConfig: "", files: bundle.files, manifest: bundle.manifest, bundleId: B1 } as Parameters<typeof renderedBundleId>[0])).toBe(B1);
  });
});

describe("the host's status JSON is input, not trusted", () => {
  it("reads version 1 with its fields; anything else is not a status", () => {
    const s = parseHostStatus(status({ ok: false, problems: [{ code: "RULES_MISSING", message: "DOCKER-USER has no jump" }], reapplied: { count: 2, last: "2026-12-06T11:00:00Z", reason: "flushed" } }))!;
    expect(s).toMatchObject({ ok: false, bundle: B1, problems: [{ code: "RULES_MISSING" }], reapplied: { count: 2, reason: "flushed" } });
    expect(parseHostStatus("dockinit-firewall: all rules in place (backend nftables)\n")).toBeUndefined();
    expect(parseHostStatus("{not json")).toBeUndefined();
    expect(parseHostStatus(JSON.stringify({ version: 2, ok: true }))).toBeUndefined();
    expect(parseHostStatus(JSON.stringify({ version: 1, ok: "yes" }))).toBeUndefined();
  });

  it("a terminal never gets an instance's control characters, and odd codes and ids are not passed on", () => {
    const s = parseHostStatus(status({ bundle: "../../etc", problems: [{ code: "rm -rf /", message: "\u001b[2Jgone\u202e" }], backend: "nft\u0007" }))!;
    expect(s.bundle).toBe("");
    expect(s.problems).toEqual([{ code: "UNKNOWN", message: "gone" }]);
    expect(s.backend).toBe("nft");
  });
});

describe("one verdict per instance", () => {
  const t: Target = { instanceId: "i-0123456789abcdef0", group: "web", launchedFrom: 3, expected: B1, expectedFrom: "web: build-runner version 3" };
  const ran = (stdout: string, over: Partial<Answer> = {}): Answer => ({ status: "Success", statusDetails: "Success", responseCode: 0, stdout, stderr: "", ...over });
  const versions: Record<string, number> = { [B1]: 3, [B2]: 2 };
  const versionOf = (b: string) => versions[b];
  const cases: [string, Answer, string, RegExp][] = [
    ["in place", ran(status()), "in-place", /^bundle 111111111111, backend nftables$/],
    ["in place after healing itself (the re-apply said)", ran(status({ reapplied: { count: 1, last: "2026-12-06T11:00:00Z", reason: "rules flushed" } })), "in-place", /re-applied 1×, last 2026-12-06T11:00:00Z \(rules flushed\)/],
    ["drifted: the host exits 1, SSM says Failed, the JSON says why", ran(status({ ok: false, problems: [{ code: "RULES_MISSING", message: "chain DOCKER-USER missing" }] }), { status: "Failed", statusDetails: "Failed", responseCode: 1 }), "drifted", /^RULES_MISSING: chain DOCKER-USER missing$/],
    ["another bundle, found in version 2", ran(status({ bundle: B2 })), "another-bundle", /^runs bundle 222222222222 \(build-runner version 2\), expected 111111111111$/],
    ["another bundle no version holds, and drifted too", ran(status({ bundle: B3, ok: false, problems: [{ code: "NOT_LOADED", message: "x" }] }), { status: "Failed", responseCode: 1 }), "another-bundle", /in no version of build-runner.*; and NOT_LOADED/],
    ["a script that predates --json prints its text status", ran("dockinit-firewall: all rules in place (backend nftables)\n"), "another-bundle", /^another bundle \(predates verify\): dockinit-firewall: all rules in place/],
    ["DeliveryTimedOut", { status: "TimedOut", statusDetails: "DeliveryTimedOut", stdout: "", stderr: "" }, "unreachable", /^SSM: DeliveryTimedOut$/],
    ["Undeliverable", { status: "Undeliverable", statusDetails: "Undeliverable", stdout: "", stderr: "" }, "unreachable", /^SSM: Undeliverable$/],
    ["Terminated", { status: "Terminated", statusDetails: "Terminated", stdout: "", stderr: "" }, "unreachable", /^SSM: Terminated$/],
    ["no dockinit-firewall on the host", ran("", { status: "Failed", statusDetails: "Failed", responseCode: 127, stderr: "/var/lib/amazon/ssm/i-1/document/orchestration/x/awsrunShellScript/0.awsrunShellScript/_script.sh: line 1: dockinit-firewall: command not found\n" }), "failed", /^Failed, exit 127: .*command not found$/],
    ["the command ran out of time", ran("", { status: "TimedOut", statusDetails: "ExecutionTimedOut", responseCode: -1 }), "failed", /^ExecutionTimedOut, no status printed$/],
  ];
  it.each(cases)("%s", (_name, answer, verdict, detail) => {
    const r = classifyInvocation(t, answer, versionOf, "build-runner");
    expect(r.verdict).toBe(verdict);
    expect(r.detail).toMatch(detail);
    expect(r).toMatchObject({ instanceId: t.instanceId, group: "web", launchedFrom: 3, expected: B1 });
  });

  it("another bundle says which version it is from", () => {
    expect(classifyInvocation(t, ran(status({ bundle: B2 })), versionOf, "build-runner").bundleVersion).toBe(2);
  });
});

// ── The conversation, mocked ────────────────────────────────────────────

const ssmMock = mockClient(SSMClient);
const ec2Mock = mockClient(EC2Client);
const asgMock = mockClient(AutoScalingClient);

function ssmError(name: string, message = `${name} happened`): SSMServiceException {
  return new SSMServiceException({ name, $fault: "client", $metadata: { httpStatusCode: 400 }, message });
}
const throttle = () => Object.assign(ssmError("ThrottlingException", "Rate exceeded"), { $retryable: { throttling: true } });

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `i-${(from + i).toString(16).padStart(17, "0")}`);

function group(name: string, instanceIds: string[], over: Partial<AutoScalingGroup> = {}, instanceVersion = "3"): AutoScalingGroup {
  return {
    AutoScalingGroupName: name,
    LaunchTemplate: { LaunchTemplateId: LT.id, LaunchTemplateName: LT.name, Version: "3" },
    MinSize: 0,
    MaxSize: 200,
    DesiredCapacity: instanceIds.length,
    DefaultCooldown: 300,
    AvailabilityZones: ["us-east-1a"],
    HealthCheckType: "EC2",
    CreatedTime: new Date(0),
    Instances: instanceIds.map((id) => ({ InstanceId: id, LifecycleState: "InService", HealthStatus: "Healthy", AvailabilityZone: "us-east-1a", ProtectedFromScaleIn: false, LaunchTemplate: { LaunchTemplateId: LT.id, LaunchTemplateName: LT.name, Version: instanceVersion } })),
    ...over,
  };
}

/** The fleet the mocks describe: groups, versions' bundles, and what each instance answers. */
interface Fleet {
  groups: AutoScalingGroup[];
  versions: Record<number, string | undefined>;
  defaultVersion?: number;
  latestVersion?: number;
  offline?: Record<string, string>;
  unmanaged?: string[];
  answers?: Record<string, Partial<CommandInvocation> & { stdout?: string }>;
}

let sent: string[][];
function mockFleet(f: Fleet) {
  sent = [];
  asgMock.on(DescribeAutoScalingGroupsCommand).callsFake((input: { AutoScalingGroupNames?: string[] }) => ({
    AutoScalingGroups: f.groups.filter((g) => !input.AutoScalingGroupNames || input.AutoScalingGroupNames.includes(g.AutoScalingGroupName!)),
  }));
  ec2Mock.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: LT.id, LaunchTemplateName: LT.name, DefaultVersionNumber: f.defaultVersion ?? 3, LatestVersionNumber: f.latestVersion ?? 3 }] });
  const version = (n: number) => ({ LaunchTemplateId: LT.id, VersionNumber: n, LaunchTemplateData: { UserData: f.versions[n] ? b64(cloudConfigWith(f.versions[n]!)) : b64("#cloud-config\n") } });
  ec2Mock.on(DescribeLaunchTemplateVersionsCommand).callsFake((input: { Versions?: string[] }) => ({
    LaunchTemplateVersions: (input.Versions ? input.Versions.map(Number) : Object.keys(f.versions).map(Number)).filter((n) => n in f.versions).map(version),
  }));
  ec2Mock.on(DescribeTagsCommand).resolves({ Tags: [] });
  const all = f.groups.flatMap((g) => (g.Instances ?? []).map((i) => i.InstanceId!));
  ssmMock.on(DescribeInstanceInformationCommand).callsFake((input: { Filters?: { Key: string; Values: string[] }[] }) => {
    const wanted = input.Filters?.find((x) => x.Key === "InstanceIds")?.Values ?? all;
    return {
      InstanceInformationList: wanted.filter((id) => !f.unmanaged?.includes(id)).map((id) => ({ InstanceId: id, PingStatus: f.offline?.[id] ?? "Online" })),
    };
  });
  let n = 0;
  const commands = new Map<string, string[]>();
  ssmMock.on(SendCommandCommand).callsFake((input: { InstanceIds: string[] }) => {
    sent.push(input.InstanceIds);
    const id = `cmd-${++n}`;
    commands.set(id, input.InstanceIds);
    return { Command: { CommandId: id } };
  });
  const invocation = (cmd: string, iid: string): CommandInvocation => {
    const a = f.answers?.[iid] ?? {};
    const stdout = a.stdout ?? status();
    return { CommandId: cmd, InstanceId: iid, Status: a.Status ?? "Success", StatusDetails: a.StatusDetails ?? a.Status ?? "Success", CommandPlugins: [{ Name: "aws:runShellScript", Output: stdout, ResponseCode: a.Status === "Failed" ? 1 : 0 }] };
  };
  ssmMock.on(ListCommandInvocationsCommand).callsFake((input: { CommandId: string }) => ({ CommandInvocations: (commands.get(input.CommandId) ?? []).map((iid) => invocation(input.CommandId, iid)) }));
  ssmMock.on(GetCommandInvocationCommand).callsFake((input: { CommandId: string; InstanceId: string }) => {
    const inv = invocation(input.CommandId, input.InstanceId);
    return { Status: inv.Status, StatusDetails: inv.StatusDetails, ResponseCode: inv.CommandPlugins![0]!.ResponseCode, StandardOutputContent: inv.CommandPlugins![0]!.Output, StandardErrorContent: "" };
  });
}

const clients = () => ({
  ec2: new EC2Client({ region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "s" } }),
  asg: new AutoScalingClient({ region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "s" } }),
  ssm: new SSMClient({ region: "us-east-1", credentials: { accessKeyId: "a", secretAccessKey: "s" } }),
});

/** A clock tests move: sleep advances it, nothing waits. */
function fakeClock() {
  let t = 0;
  const slept: number[] = [];
  return { now: () => t, sleep: async (ms: number) => void (slept.push(ms), (t += ms)), slept };
}

const opts = (over: Partial<VerifyOptions> = {}): VerifyOptions => ({ templateName: LT.name, groups: [], instanceIds: [], configBundle: B1, timeoutMs: 120_000, ...fakeClock(), ...over });

describe("verifyFleet against mocked AWS", () => {
  beforeEach(() => {
    ssmMock.reset();
    ec2Mock.reset();
    asgMock.reset();
  });

  it("120 InService instances: DescribeInstanceInformation 50 ids a call, three SendCommands (50, 50, 20) of AWS-RunShellScript running the status, MaxErrors 100%; all in place", async () => {
    const fleet = ids(120);
    mockFleet({ groups: [group("web", fleet)], versions: { 3: B1 } });
    const r = await verifyFleet(clients(), opts());
    expect(r.ok && r.report.ok).toBe(true);
    if (!r.ok) return;
    expect(r.report.counts["in-place"]).toBe(120);
    expect(sent.map((s) => s.length)).toEqual([50, 50, 20]);
    expect(sent.flat()).toEqual(fleet);
    const info = ssmMock.commandCalls(DescribeInstanceInformationCommand).map((c) => c.args[0].input);
    expect(info.map((i) => i.Filters?.[0]?.Values?.length)).toEqual([50, 50, 20]);
    expect(info[0]).toMatchObject({ Filters: [{ Key: "InstanceIds" }], MaxResults: 50 });
    const send = ssmMock.commandCalls(SendCommandCommand)[0]!.args[0].input;
    expect(send).toMatchObject({ DocumentName: "AWS-RunShellScript", Parameters: { commands: ["dockinit-firewall status --json"] }, MaxErrors: "100%", TimeoutSeconds: 120 });
    // One ListCommandInvocations per command (all answered at the first look); no GetCommandInvocation needed.
    expect(ssmMock.commandCalls(ListCommandInvocationsCommand).map((c) => c.args[0].input)).toEqual(["cmd-1", "cmd-2", "cmd-3"].map((CommandId) => ({ CommandId, Details: true, MaxResults: 50 })));
    expect(ssmMock.commandCalls(GetCommandInvocationCommand)).toHaveLength(0);
  });

  it("--document NAME: that document, with no parameters", async () => {
    mockFleet({ groups: [group("web", ids(2))], versions: { 3: B1 } });
    await verifyFleet(clients(), opts({ document: "DockinitFirewallStatus" }));
    const send = ssmMock.commandCalls(SendCommandCommand)[0]!.args[0].input;
    expect(send.DocumentName).toBe("DockinitFirewallStatus");
    expect(send.Parameters).toBeUndefined();
  });

  it("every verdict at once: in place, drifted, another bundle (version 2), predates verify, not managed, agent ConnectionLost, DeliveryTimedOut, a failed command; no command to the offline ones", async () => {
    const [a, b, c, d, e, f, g, h] = ids(8);
    mockFleet({
      groups: [group("web", [a!, b!, c!, d!, e!, f!, g!, h!])],
      versions: { 2: B2, 3: B1 },
      unmanaged: [e!],
      offline: { [f!]: "ConnectionLost" },
      answers: {
        [b!]: { Status: "Failed", stdout: status({ ok: false, problems: [{ code: "RULES_MISSING", message: "flushed" }] }) },
        [c!]: { stdout: status({ bundle: B2 }) },
        [d!]: { stdout: "dockinit-firewall: all rules in place (backend iptables)\n" },
        [g!]: { Status: "TimedOut", StatusDetails: "DeliveryTimedOut", stdout: "" },
        [h!]: { Status: "Failed", stdout: "" },
      },
    });
    const r = await verifyFleet(clients(), opts());
    if (!r.ok) throw new Error(r.failure.message);
    expect(r.report.instances.map((i) => [i.instanceId, i.verdict])).toEqual([
      [a, "in-place"],
      [b, "drifted"],
      [c, "another-bundle"],
      [d, "another-bundle"],
      [e, "unreachable"],
      [f, "unreachable"],
      [g, "unreachable"],
      [h, "failed"],
    ]);
    expect(r.report.instances[2]!.bundleVersion).toBe(2);
    expect(r.report.instances[3]!.predatesVerify).toBe(true);
    expect(r.report.instances[4]!.detail).toMatch(/^not managed by SSM/);
    expect(r.report.instances[5]!.detail).toBe("SSM agent ConnectionLost");
    expect(sent).toEqual([[a, b, c, d, g, h]]);
    expect(r.report.ok).toBe(false);
    expect(r.report.counts).toEqual({ "in-place": 1, drifted: 1, "another-bundle": 2, unreachable: 3, failed: 1 });
  });

  it("the expected bundle is the one of the version the group uses now ($Latest → 4), not the one an instance was launched from", async () => {
    const [a, b] = ids(2);
    mockFleet({ groups: [group("web", [a!, b!], { LaunchTemplate: { LaunchTemplateId: LT.id, Version: "$Latest" } }, "3")], versions: { 3: B1, 4: B2 }, latestVersion: 4, answers: { [b!]: { stdout: status({ bundle: B2 }) } } });
    const r = await verifyFleet(clients(), opts());
    if (!r.ok) throw new Error(r.failure.message);
    expect(r.report.instances.map((i) => [i.verdict, i.launchedFrom, i.expectedFrom])).toEqual([
      ["another-bundle", 3, "web: build-runner version 4 ($Latest)"],
      ["in-place", 3, "web: build-runner version 4 ($Latest)"],
    ]);
  });

  it("an instance launched from $Default: its version from the aws:ec2launchtemplate:version tag (DescribeTags)", async () => {
    const [a] = ids(1);
    mockFleet({ groups: [group("web", [a!], {}, "$Default")], versions: { 3: B1 } });
    ec2Mock.on(DescribeTagsCommand).resolves({ Tags: [{ ResourceId: a, Key: "aws:ec2launchtemplate:version", Value: "3" }] });
    const r = await verifyFleet(clients(), opts());
    if (!r.ok) throw new Error(r.failure.message);
    expect(r.report.instances[0]!.launchedFrom).toBe(3);
    expect(ec2Mock.commandCalls(DescribeTagsCommand)[0]!.args[0].input.Filters).toEqual([
      { Name: "resource-id", Values: [a] },
      { Name: "key", Values: ["aws:ec2launchtemplate:version"] },
    ]);
  });

  it("--instance-ids: exactly those, compared with the configuration's bundle; no group is described", async () => {
    const [a, b] = ids(2);
    mockFleet({ groups: [], versions: { 3: B1, 5: B3 }, answers: { [b!]: { stdout: status({ bundle: B3 }) } } });
    const r = await verifyFleet(clients(), opts({ instanceIds: [a!, b!, a!], configBundle: B1 }));
    if (!r.ok) throw new Error(r.failure.message);
    expect(r.report.instances.map((i) => [i.instanceId, i.verdict, i.expectedFrom])).toEqual([
      [a, "in-place", "the configuration's bundle"],
      [b, "another-bundle", "the configuration's bundle"],
    ]);
    expect(r.report.instances[1]!.detail).toContain("build-runner version 5");
    expect(asgMock.commandCalls(DescribeAutoScalingGroupsCommand).filter((c) => c.args[0].input.AutoScalingGroupNames)).toHaveLength(0);
  });

  it("zero instances is not a success", async () => {
    mockFleet({ groups: [group("web", [])], versions: { 3: B1 } });
    const r = await verifyFleet(clients(), opts());
    expect(r.ok && r.report.ok).toBe(false);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(0);
  });

  it("pages: DescribeInstanceInformation and ListCommandInvocations follow NextToken", async () => {
    const [a, b] = ids(2);
    mockFleet({ groups: [group("web", [a!, b!])], versions: { 3: B1 } });
    ssmMock
      .on(DescribeInstanceInformationCommand)
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: a, PingStatus: "Online" }], NextToken: "p2" })
      .resolvesOnce({ InstanceInformationList: [{ InstanceId: b, PingStatus: "Online" }] });
    const inv = (iid: string): CommandInvocation => ({ CommandId: "cmd-1", InstanceId: iid, Status: "Success", StatusDetails: "Success", CommandPlugins: [{ Output: status(), ResponseCode: 0 }] });
    ssmMock.on(ListCommandInvocationsCommand).resolvesOnce({ CommandInvocations: [inv(a!)], NextToken: "n2" }).resolvesOnce({ CommandInvocations: [inv(b!)] });
    const r = await verifyFleet(clients(), opts());
    expect(r.ok && r.report.ok).toBe(true);
    expect(ssmMock.commandCalls(DescribeInstanceInformationCommand)[1]!.args[0].input.NextToken).toBe("p2");
    expect(ssmMock.commandCalls(ListCommandInvocationsCommand)[1]!.args[0].input.NextToken).toBe("n2");
  });

  it("right after SendCommand nothing is listed, then Pending → InProgress → Success; a look at a whole invocation that does not exist yet is tried again", async () => {
    const [a] = ids(1);
    mockFleet({ groups: [group("web", [a!])], versions: { 3: B1 } });
    const inv = (Status: CommandInvocationStatus, Output = ""): CommandInvocation => ({ CommandId: "cmd-1", InstanceId: a, Status, StatusDetails: Status, CommandPlugins: [{ Output, ResponseCode: Status === "Success" ? 0 : -1 }] });
    // The plugin output is cut (2,500 characters): the whole invocation is read.
    const cut = status().slice(0, 40);
    ssmMock
      .on(ListCommandInvocationsCommand)
      .resolvesOnce({ CommandInvocations: [] })
      .resolvesOnce({ CommandInvocations: [inv("Pending")] })
      .resolvesOnce({ CommandInvocations: [inv("InProgress")] })
      .resolves({ CommandInvocations: [inv("Success", cut)] });
    ssmMock
      .on(GetCommandInvocationCommand)
      .rejectsOnce(new InvocationDoesNotExist({ $metadata: {}, message: "" }))
      .resolves({ Status: "Success", StatusDetails: "Success", ResponseCode: 0, StandardOutputContent: status(), StandardErrorContent: "" });
    const clock = fakeClock();
    const r = await verifyFleet(clients(), opts({ ...clock }));
    expect(r.ok && r.report.ok).toBe(true);
    expect(ssmMock.commandCalls(ListCommandInvocationsCommand)).toHaveLength(5);
    expect(ssmMock.commandCalls(GetCommandInvocationCommand)).toHaveLength(2);
    // Back-off: each look waits longer than the one before.
    expect(clock.slept).toEqual([2000, 3000, 4500, 6750, 10000]);
  });

  it("throttling: SendCommand and ListCommandInvocations are tried again, waiting longer", async () => {
    const [a] = ids(1);
    mockFleet({ groups: [group("web", [a!])], versions: { 3: B1 } });
    ssmMock.on(SendCommandCommand).rejectsOnce(throttle()).resolves({ Command: { CommandId: "cmd-1" } });
    ssmMock
      .on(ListCommandInvocationsCommand)
      .rejectsOnce(throttle())
      .resolves({ CommandInvocations: [{ CommandId: "cmd-1", InstanceId: a, Status: "Success", StatusDetails: "Success", CommandPlugins: [{ Output: status(), ResponseCode: 0 }] }] });
    const clock = fakeClock();
    const r = await verifyFleet(clients(), opts({ ...clock }));
    expect(r.ok && r.report.ok).toBe(true);
    expect(ssmMock.commandCalls(SendCommandCommand)).toHaveLength(2);
    expect(clock.slept).toEqual([1000, 2000, 4000]);
  });

  it("the deadline: an instance still InProgress is unreachable (no answer), and no look goes past the deadline", async () => {
    const [a] = ids(1);
    mockFleet({ groups: [group("web", [a!])], versions: { 3: B1 } });
    ssmMock.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [{ CommandId: "cmd-1", InstanceId: a, Status: "InProgress", StatusDetails: "InProgress" }] });
    const clock = fakeClock();
    const r = await verifyFleet(clients(), opts({ ...clock, timeoutMs: 30_000 }));
    if (!r.ok) throw new Error(r.failure.message);
    expect(r.report.instances[0]).toMatchObject({ verdict: "unreachable", detail: "no answer within 30 s (the command is still pending on it)" });
    expect(clock.now()).toBe(30_000);
  });

  it.each([
    ["AccessDeniedException", /^access denied: this identity may not call ssm:SendCommand/, "access-denied"],
    ["InvalidDocument", /^SendCommand failed \(InvalidDocument\)/, "other"],
  ])("SendCommand failing with %s: an AWS failure", async (name, message, kind) => {
    mockFleet({ groups: [group("web", ids(1))], versions: { 3: B1 } });
    ssmMock.on(SendCommandCommand).rejects(ssmError(name));
    const r = await verifyFleet(clients(), opts());
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.failure.kind).toBe(kind);
    expect(r.failure.message).toMatch(message);
  });

  it("a named group that does not exist: not found", async () => {
    mockFleet({ groups: [group("web", ids(1))], versions: { 3: B1 } });
    const r = await verifyFleet(clients(), opts({ groups: ["web", "nope"] }));
    expect(r.ok ? "" : r.failure.message).toBe("Auto Scaling group nope not found in us-east-1");
  });

  it("SSM's endpoint: AWS_ENDPOINT_URL_SSM before AWS_ENDPOINT_URL, not EC2's", () => {
    expect(resolveSsmClientSettings({}, { AWS_ENDPOINT_URL_EC2: "http://ec2", AWS_ENDPOINT_URL_SSM: "http://ssm" }).endpoint).toBe("http://ssm");
    expect(resolveSsmClientSettings({}, { AWS_ENDPOINT_URL_EC2: "http://ec2", AWS_ENDPOINT_URL: "http://all" }).endpoint).toBe("http://all");
  });
});

describe("the CLI: output and exit codes", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dockinit-verify-"));
    writeFileSync(join(dir, "dockinit.yaml"), `version: 1\nname: build-runner\nlaunch_template:\n  name: ${LT.name}\n  region: us-east-1\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    ssmMock.reset();
    ec2Mock.reset();
    asgMock.reset();
  });

  async function cli(argv: string[], tty = false) {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      stdout: (t) => (stdout += String(t)),
      stderr: (t) => (stderr += t),
      cwd: dir,
      env: { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s" },
      stdoutIsTTY: tty,
    });
    return { code, stdout, stderr };
  }
  const FAST = ["--poll-interval", "0.05"];

  it("all in place: exit 0; one line per instance on a pipe, the summary on stderr", async () => {
    const [a, b] = ids(2);
    mockFleet({ groups: [group("web", [a!, b!])], versions: { 3: B1 } });
    const r = await cli(["verify", ...FAST]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${a} in-place group=web from=v3 bundle 111111111111, backend nftables\n${b} in-place group=web from=v3 bundle 111111111111, backend nftables\n`);
    expect(r.stderr).toContain("dockinit: 2 instances: 2 in place\n");
  });

  it("one drifted: exit 1; a table on a terminal; --json has every instance", async () => {
    const [a, b] = ids(2);
    mockFleet({ groups: [group("web", [a!, b!])], versions: { 3: B1 }, answers: { [b!]: { Status: "Failed", stdout: status({ ok: false, problems: [{ code: "RULES_MISSING", message: "flushed" }] }) } } });
    const t = await cli(["verify", ...FAST], true);
    expect(t.code).toBe(1);
    expect(t.stdout.split("\n")[0]).toMatch(/^INSTANCE +GROUP +FROM +VERDICT +DETAIL$/);
    expect(t.stdout).toMatch(new RegExp(`^${b} +web +v3 +drifted +RULES_MISSING: flushed$`, "m"));
    const j = await cli(["verify", "--json", ...FAST]);
    expect(j.code).toBe(1);
    const out = JSON.parse(j.stdout);
    expect(out).toMatchObject({ ok: false, counts: { "in-place": 1, drifted: 1 }, document: "AWS-RunShellScript" });
    expect(out.instances[1]).toMatchObject({ instanceId: b, verdict: "drifted", problems: [{ code: "RULES_MISSING" }] });
  });

  it("no instances: exit 1, said", async () => {
    mockFleet({ groups: [group("web", [])], versions: { 3: B1 } });
    const r = await cli(["verify", ...FAST]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no instances to verify");
  });

  it("an AWS error: exit 3, said in words", async () => {
    mockFleet({ groups: [group("web", ids(1))], versions: { 3: B1 } });
    ssmMock.on(DescribeInstanceInformationCommand).rejects(ssmError("AccessDeniedException", "no"));
    const r = await cli(["verify", ...FAST]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/access denied: this identity may not call ssm:DescribeInstanceInformation/);
  });

  it.each([
    [["verify", "--instance-ids", "i-123"], /is not an instance id/],
    [["verify", "--instance-ids", `${ids(1)[0]}`, "--auto-scaling-group", "web"], /exclude each other/],
    [["verify", "--document", "a b"], /an SSM document name/],
    [["verify", "--timeout", "0"], /seconds between 1 and 3600/],
  ])("usage: %j exits 2", async (argv, message) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});

describe("only verify loads @aws-sdk/client-ssm (the built binary)", () => {
  const bin = join(REPO, "bin", "dockinit.cjs");
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dockinit-lazy-ssm-"));
    writeFileSync(
      join(dir, "trace.cjs"),
      `const Module = require("node:module"); const fs = require("node:fs"); const seen = new Set();
const load = Module._load;
Module._load = function (request, ...rest) { if (request.startsWith("@aws-sdk/")) seen.add(request); return load.call(this, request, ...rest); };
process.on("exit", () => fs.writeFileSync(process.env.TRACE_OUT, JSON.stringify([...seen])));\n`,
    );
    writeFileSync(join(dir, "aws.yaml"), "version: 1\nname: lazy\nlaunch_template:\n  name: lazy\n");
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const loadedBy = (args: string[]) => {
    const out = join(dir, "loaded.json");
    rmSync(out, { force: true });
    const r = spawnSync(process.execPath, ["--require", join(dir, "trace.cjs"), bin, ...args], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: process.env.PATH, TRACE_OUT: out, AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "s", AWS_REGION: "us-east-1", AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_MAX_ATTEMPTS: "1" },
      timeout: 30_000,
    });
    return { status: r.status, stderr: r.stderr, loaded: JSON.parse(readFileSync(out, "utf8")) as string[] };
  };
  it.skipIf(!existsSync(bin)).each([[["check", "aws.yaml"]], [["render", "aws.yaml", "--stdout"]], [["push", "aws.yaml"]], [["rollout", "aws.yaml", "--dry-run"]]])("%j does not", (args) => {
    expect(loadedBy(args).loaded).not.toContain("@aws-sdk/client-ssm");
  });
  it.skipIf(!existsSync(bin))("verify does, and an unreachable endpoint exits 3", () => {
    const r = loadedBy(["verify", "aws.yaml"]);
    expect(r.status, r.stderr).toBe(3);
    expect(r.loaded).toContain("@aws-sdk/client-ssm");
    expect(r.stderr).toMatch(/cannot reach/);
  });
});
