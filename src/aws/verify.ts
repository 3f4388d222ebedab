// `dockinit verify`: ask every instance what its firewall enforces, through
// SSM Run Command, and compare it with the bundle it should run.
//
// import()ed by the CLI only (verify): it loads @aws-sdk/client-ssm, which
// nothing else loads. Same shape as rollout: gather what AWS says (groups,
// their instances and the launch-template versions' bundle ids), ask the
// online instances (SendCommand in batches, then ListCommandInvocations /
// GetCommandInvocation polling with back-off until a deadline), and classify
// each answer in a pure function (classifyInvocation, tested as a table).
// Nothing here prints or exits.
import type { AutoScalingClient, AutoScalingGroup, LaunchTemplateSpecification } from "@aws-sdk/client-auto-scaling";
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand, DescribeTagsCommand, type EC2Client } from "@aws-sdk/client-ec2";
import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandInvocationsCommand,
  SendCommandCommand,
  SSMClient,
  type CommandInvocation,
} from "@aws-sdk/client-ssm";
import { bundleIdOfUserData } from "../bundle/bundle-id.js";
import { clientConfig, describeAwsError, nonEmpty, resolveEc2ClientSettings, type AwsFailure, type AwsFlags, type Ec2ClientSettings } from "./launch-template.js";
import { CallFailed, clientRegion, describeGroups, findGroupsUsing, groupSpecs, realSleep } from "./rollout.js";

// ── Client ────────────────────────────────────────────────────────────

/** SSM's settings: the same chain as EC2's, with AWS_ENDPOINT_URL_SSM before AWS_ENDPOINT_URL. */
export function resolveSsmClientSettings(flags: AwsFlags, env: Record<string, string | undefined>, configRegion?: string): Ec2ClientSettings {
  const { endpoint: _ec2Endpoint, ...settings } = resolveEc2ClientSettings(flags, env, configRegion);
  if (nonEmpty(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)?.toLowerCase() === "true") return settings;
  const endpoint = nonEmpty(env.AWS_ENDPOINT_URL_SSM) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  return endpoint ? { ...settings, endpoint } : settings;
}

export function createSsmClient(settings: Ec2ClientSettings): SSMClient {
  return new SSMClient(clientConfig(settings));
}

// ── Constants ─────────────────────────────────────────────────────────

/** What runs on each host. */
export const STATUS_COMMAND = "dockinit-firewall status --json";
export const RUN_SHELL_SCRIPT = "AWS-RunShellScript";
/** SendCommand takes at most 50 instance ids per call. */
export const SEND_BATCH = 50;
/** DescribeInstanceInformation's InstanceIds filter and page: 50. */
const INFO_BATCH = 50;
/** SendCommand's TimeoutSeconds (delivery) is at least 30. */
const MIN_DELIVERY_SECONDS = 30;
/** Polling: the first wait, the longest wait, and the longest after throttling. */
const FIRST_POLL_MS = 2000;
const MAX_POLL_MS = 10_000;
const MAX_THROTTLED_MS = 30_000;

/** Invocation statuses that are still moving. */
const MOVING = new Set(["Pending", "InProgress", "Delayed", "Cancelling"]);
/** StatusDetails that mean the command never reached the instance (or the instance went away). */
const UNREACHABLE_DETAILS = new Set(["DeliveryTimedOut", "Undeliverable", "Terminated"]);
const THROTTLED = new Set(["ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "TooManyUpdates"]);

// ── What the host says ────────────────────────────────────────────────

/** `dockinit-firewall status --json`, version 1 (what verify reads of it). */
export interface HostStatus {
  version: 1;
  ok: boolean;
  backend?: string;
  backend_reason?: string;
  bundle: string;
  loaded_bundle?: string | null;
  problems: { code: string; message: string }[];
  docker?: { version?: string; firewall_backend?: string };
  reapplied?: { count: number; last: string | null; reason: string | null };
  checked_at?: string;
}

/** Text from an instance reaches a terminal: no control characters, bounded length. */
export function clean(text: unknown, max = 200): string {
  const s = String(text ?? "")
    // Escape sequences whole, then any control or bidirectional character left: the instance wrote them.
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "")
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, " ").trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The status JSON, checked field by field (an instance is not trusted); undefined when it is not one. */
export function parseHostStatus(stdout: string): HostStatus | undefined {
  const text = stdout.trim();
  if (!text.startsWith("{")) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (o.version !== 1 || typeof o.ok !== "boolean") return undefined;
  const bundle = typeof o.bundle === "string" && HEX64.test(o.bundle) ? o.bundle : "";
  const problems = Array.isArray(o.problems)
    ? o.problems.slice(0, 50).map((p) => {
        const q = (typeof p === "object" && p !== null ? p : {}) as Record<string, unknown>;
        return { code: /^[A-Z][A-Z0-9_]{0,63}$/.test(String(q.code)) ? String(q.code) : "UNKNOWN", message: clean(q.message) };
      })
    : [];
  const r = (typeof o.reapplied === "object" && o.reapplied !== null ? o.reapplied : {}) as Record<string, unknown>;
  const d = (typeof o.docker === "object" && o.docker !== null ? o.docker : {}) as Record<string, unknown>;
  return {
    version: 1,
    ok: o.ok,
    ...(typeof o.backend === "string" ? { backend: clean(o.backend, 20) } : {}),
    ...(typeof o.backend_reason === "string" ? { backend_reason: clean(o.backend_reason) } : {}),
    bundle,
    loaded_bundle: typeof o.loaded_bundle === "string" && HEX64.test(o.loaded_bundle) ? o.loaded_bundle : null,
    problems,
    docker: { ...(typeof d.version === "string" ? { version: clean(d.version, 40) } : {}), ...(typeof d.firewall_backend === "string" ? { firewall_backend: clean(d.firewall_backend, 40) } : {}) },
    reapplied: {
      count: typeof r.count === "number" && Number.isSafeInteger(r.count) && r.count >= 0 ? r.count : 0,
      last: typeof r.last === "string" ? clean(r.last, 40) : null,
      reason: typeof r.reason === "string" ? clean(r.reason) : null,
    },
    ...(typeof o.checked_at === "string" ? { checked_at: clean(o.checked_at, 40) } : {}),
  };
}

/** A host whose script predates `--json`: it ignored the flag and printed its text status. */
export const predatesVerify = (stdout: string): boolean => /^dockinit-firewall: /.test(stdout.trimStart());

// ── The report ────────────────────────────────────────────────────────

export type Verdict = "in-place" | "drifted" | "another-bundle" | "unreachable" | "failed";

export interface InstanceReport {
  instanceId: string;
  /** Its Auto Scaling group (none with --instance-ids). */
  group?: string;
  /** The launch-template version it was launched from, when known. */
  launchedFrom?: number;
  /** The bundle it should run, and where that comes from ("web-asg: build-runner version 4 ($Default)"). */
  expected?: string;
  expectedFrom: string;
  verdict: Verdict;
  /** One line: why. */
  detail: string;
  /** What the host said, when it said something verify understands. */
  bundle?: string;
  /** The version of the template whose UserData holds `bundle`, when one does. */
  bundleVersion?: number;
  predatesVerify?: boolean;
  problems?: { code: string; message: string }[];
  reapplied?: { count: number; last: string | null; reason: string | null };
  backend?: string;
  /** SSM's word for it: PingStatus, or the invocation's Status/StatusDetails/ResponseCode. */
  ssm?: { pingStatus?: string; status?: string; statusDetails?: string; responseCode?: number };
}

export interface VerifyReport {
  region: string;
  document: string;
  instances: InstanceReport[];
  /** Per verdict, how many. */
  counts: Record<Verdict, number>;
  /** Every instance in place on its expected bundle, and at least one. */
  ok: boolean;
  /** Said once under the report (e.g. a group whose version carries no bundle id). */
  notes: string[];
}

/** What a target is compared with. */
export interface Target {
  instanceId: string;
  group?: string;
  launchedFrom?: number;
  expected?: string;
  expectedFrom: string;
  /** The template whose versions name an unexpected bundle. */
  templateId?: string;
}

export interface Answer {
  status?: string;
  statusDetails?: string;
  responseCode?: number;
  stdout: string;
  stderr: string;
}

const short = (id: string | undefined) => (id ? id.slice(0, 12) : "none");

/**
 * One instance's verdict from its invocation. `versionOf` says which template
 * version's UserData holds a bundle id (undefined: none does).
 */
export function classifyInvocation(t: Target, a: Answer, versionOf: (bundle: string) => number | undefined, templateName = "the template"): InstanceReport {
  const base = { instanceId: t.instanceId, ...(t.group ? { group: t.group } : {}), ...(t.launchedFrom !== undefined ? { launchedFrom: t.launchedFrom } : {}), ...(t.expected ? { expected: t.expected } : {}), expectedFrom: t.expectedFrom };
  const ssm = { ...(a.status ? { status: a.status } : {}), ...(a.statusDetails ? { statusDetails: a.statusDetails } : {}), ...(a.responseCode !== undefined && a.responseCode >= 0 ? { responseCode: a.responseCode } : {}) };
  if (a.statusDetails && UNREACHABLE_DETAILS.has(a.statusDetails)) {
    return { ...base, verdict: "unreachable", detail: `SSM: ${a.statusDetails}`, ssm };
  }
  const status = parseHostStatus(a.stdout);
  if (status) {
    const where = (b: string) => {
      const v = versionOf(b);
      return v !== undefined ? `${templateName} version ${v}` : `in no version of ${templateName}`;
    };
    const said = { bundle: status.bundle, problems: status.problems, reapplied: status.reapplied!, ...(status.backend ? { backend: status.backend } : {}), ssm };
    const v = status.bundle ? versionOf(status.bundle) : undefined;
    const reapply = status.reapplied!.count > 0 ? `; re-applied ${status.reapplied!.count}×${status.reapplied!.last ? `, last ${status.reapplied!.last}` : ""}${status.reapplied!.reason ? ` (${status.reapplied!.reason})` : ""}` : "";
    if (!t.expected || status.bundle !== t.expected) {
      const drift = status.ok ? "" : `; and ${status.problems.map((p) => p.code).join(", ") || "not ok"}`;
      return { ...base, ...said, ...(v !== undefined ? { bundleVersion: v } : {}), verdict: "another-bundle", detail: `runs bundle ${short(status.bundle)} (${where(status.bundle)}), expected ${short(t.expected)}${drift}` };
    }
    if (!status.ok) {
      const problems = status.problems.length > 0 ? status.problems.map((p) => `${p.code}: ${p.message}`).join("; ") : "the host says not ok, with no problem named";
      return { ...base, ...said, verdict: "drifted", detail: `${problems}${reapply}` };
    }
    return { ...base, ...said, verdict: "in-place", detail: `bundle ${short(status.bundle)}, backend ${status.backend ?? "?"}${reapply}` };
  }
  if (predatesVerify(a.stdout)) {
    return { ...base, predatesVerify: true, verdict: "another-bundle", detail: `another bundle (predates verify): ${clean(a.stdout.trim().split("\n")[0], 120)}`, ssm };
  }
  const said = clean((a.stderr.trim() || a.stdout.trim()).split("\n")[0], 160);
  const how = a.statusDetails ?? a.status ?? "no answer";
  const exit = a.responseCode !== undefined && a.responseCode >= 0 ? `, exit ${a.responseCode}` : "";
  return { ...base, verdict: "failed", detail: `${how}${exit}${said ? `: ${said}` : ", no status printed"}`, ssm };
}

export function summarise(region: string, document: string, instances: InstanceReport[], notes: string[]): VerifyReport {
  const counts: Record<Verdict, number> = { "in-place": 0, drifted: 0, "another-bundle": 0, unreachable: 0, failed: 0 };
  for (const i of instances) counts[i.verdict] += 1;
  return { region, document, instances, counts, ok: instances.length > 0 && counts["in-place"] === instances.length, notes };
}

/** stdout and stderr of ListCommandInvocations' plugin Output (stderr follows a marker line). */
export function splitPluginOutput(output: string | undefined): { stdout: string; stderr: string } {
  const text = output ?? "";
  const at = text.indexOf("----------ERROR-------");
  return at < 0 ? { stdout: text, stderr: "" } : { stdout: text.slice(0, at), stderr: text.slice(at + "----------ERROR-------".length) };
}

// ── Talking to AWS ────────────────────────────────────────────────────

/** The bundle id in one version's UserData (rollout --verify's expected bundle); undefined when it has none. */
export async function versionBundleId(ec2: EC2Client, templateId: string, version: number): Promise<string | undefined> {
  const out = await ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: templateId, Versions: [String(version)] }));
  return bundleIdOfUserData(out.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.UserData);
}

const SSM = { name: "SSM", iam: "ssm" };

const errorName = (err: unknown) => (typeof err === "object" && err !== null ? String((err as { name?: string }).name ?? "") : "");
const isThrottled = (err: unknown) => THROTTLED.has(errorName(err)) || Boolean((err as { $retryable?: { throttling?: boolean } } | undefined)?.$retryable?.throttling);

export interface VerifyOptions {
  /** The launch template (found from the config): groups that use it, and which version's UserData holds a bundle. */
  templateName?: string;
  /** Named groups; with none and no instance ids, every group that uses the template. */
  groups: string[];
  /** --instance-ids: exactly these, compared with `configBundle`. */
  instanceIds: string[];
  /** The bundle rendered from the configuration here. */
  configBundle: string;
  /** --document; undefined: AWS-RunShellScript running STATUS_COMMAND. */
  document?: string;
  /** From the first SendCommand until the last answer is given up on. */
  timeoutMs: number;
  /** Injected by tests: no test waits real time. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  firstPollMs?: number;
}

export type VerifyResult = { ok: true; report: VerifyReport } | { ok: false; failure: AwsFailure };

interface Ctx {
  region: string;
}

async function call<T>(ctx: Ctx, service: typeof SSM, operation: string, subject: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    throw new CallFailed(describeAwsError(err, { operation, templateName: subject, region: ctx.region, service, command: "verify" }));
  }
}

/** Template facts by id or name. */
interface TemplateInfo {
  id: string;
  name: string;
  defaultVersion: number;
  latestVersion: number;
}

class Templates {
  private readonly info = new Map<string, TemplateInfo>();
  private readonly bundles = new Map<string, Map<number, string | undefined>>();
  private readonly complete = new Set<string>();
  constructor(
    private readonly ec2: EC2Client,
    private readonly ctx: Ctx,
  ) {}

  async describe(ref: { id?: string; name?: string }): Promise<TemplateInfo | undefined> {
    const key = ref.id ?? `name:${ref.name}`;
    if (this.info.has(key)) return this.info.get(key);
    const out = await call(this.ctx, { name: "EC2", iam: "ec2" }, "DescribeLaunchTemplates", `launch template ${ref.name ?? ref.id}`, () =>
      this.ec2.send(new DescribeLaunchTemplatesCommand(ref.id ? { LaunchTemplateIds: [ref.id] } : { LaunchTemplateNames: [ref.name!] })),
    ).catch((err: unknown) => {
      if (err instanceof CallFailed && err.failure.kind === "not-found") return undefined;
      throw err;
    });
    const lt = out?.LaunchTemplates?.[0];
    const info = lt?.LaunchTemplateId
      ? { id: lt.LaunchTemplateId, name: lt.LaunchTemplateName ?? ref.name ?? lt.LaunchTemplateId, defaultVersion: lt.DefaultVersionNumber ?? 1, latestVersion: lt.LatestVersionNumber ?? lt.DefaultVersionNumber ?? 1 }
      : undefined;
    if (info) {
      this.info.set(info.id, info);
      this.info.set(`name:${info.name}`, info);
    }
    this.info.set(key, info!);
    return info;
  }

  /** The bundle ids of some versions (DescribeLaunchTemplateVersions with their numbers, 100 at a time). */
  async bundlesOf(t: TemplateInfo, versions: number[]): Promise<Map<number, string | undefined>> {
    const known = this.bundles.get(t.id) ?? new Map<number, string | undefined>();
    this.bundles.set(t.id, known);
    const missing = [...new Set(versions)].filter((v) => !known.has(v));
    for (let i = 0; i < missing.length; i += 100) {
      const chunk = missing.slice(i, i + 100).map(String);
      const out = await call(this.ctx, { name: "EC2", iam: "ec2" }, "DescribeLaunchTemplateVersions", `launch template ${t.name}`, () =>
        this.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: t.id, Versions: chunk })),
      );
      for (const v of out.LaunchTemplateVersions ?? []) if (v.VersionNumber !== undefined) known.set(v.VersionNumber, bundleIdOfUserData(v.LaunchTemplateData?.UserData));
    }
    return known;
  }

  /** Every version's bundle id (paged), for "which version is that bundle from". */
  async allBundles(t: TemplateInfo): Promise<Map<number, string | undefined>> {
    const known = this.bundles.get(t.id) ?? new Map<number, string | undefined>();
    this.bundles.set(t.id, known);
    if (this.complete.has(t.id)) return known;
    let token: string | undefined;
    do {
      const out = await call(this.ctx, { name: "EC2", iam: "ec2" }, "DescribeLaunchTemplateVersions", `launch template ${t.name}`, () =>
        this.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: t.id, MaxResults: 200, ...(token ? { NextToken: token } : {}) })),
      );
      for (const v of out.LaunchTemplateVersions ?? []) if (v.VersionNumber !== undefined) known.set(v.VersionNumber, bundleIdOfUserData(v.LaunchTemplateData?.UserData));
      token = out.NextToken;
    } while (token);
    this.complete.add(t.id);
    return known;
  }
}

const numbered = (v: string | undefined): number | undefined => (v && /^[1-9][0-9]{0,8}$/.test(v) ? Number(v) : undefined);

/** The spec of a group that names our template (else its first): what its instances should run. */
function primarySpec(g: AutoScalingGroup, template?: TemplateInfo): LaunchTemplateSpecification | undefined {
  const specs = groupSpecs({ launchTemplate: g.LaunchTemplate, mixedInstancesPolicy: g.MixedInstancesPolicy });
  return specs.find((s) => template && (s.LaunchTemplateId === template.id || s.LaunchTemplateName === template.name)) ?? specs[0];
}

/** The instances' `aws:ec2launchtemplate:version` tags (DescribeTags, 200 ids a filter, every page). */
async function versionTags(ec2: EC2Client, ctx: Ctx, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (let i = 0; i < ids.length; i += 200) {
    const chunk = ids.slice(i, i + 200);
    let token: string | undefined;
    do {
      const page = await call(ctx, { name: "EC2", iam: "ec2" }, "DescribeTags", "the instances' tags", () =>
        ec2.send(
          new DescribeTagsCommand({
            Filters: [
              { Name: "resource-id", Values: chunk },
              { Name: "key", Values: ["aws:ec2launchtemplate:version"] },
            ],
            MaxResults: 1000,
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      for (const t of page.Tags ?? []) {
        const n = numbered(t.Value);
        if (t.ResourceId && n !== undefined) out.set(t.ResourceId, n);
      }
      token = page.NextToken;
    } while (token);
  }
  return out;
}

/** The targets: named instances, or every InService instance of the groups, each with the bundle it should run. */
async function gatherTargets(ec2: EC2Client, asg: AutoScalingClient, ctx: Ctx, templates: Templates, opts: VerifyOptions, notes: string[]): Promise<Target[]> {
  const ours = opts.templateName ? await templates.describe({ name: opts.templateName }) : undefined;
  if (opts.instanceIds.length > 0) {
    return [...new Set(opts.instanceIds)].map((instanceId) => ({ instanceId, expected: opts.configBundle, expectedFrom: "the configuration's bundle", ...(ours ? { templateId: ours.id } : {}) }));
  }
  let names = opts.groups;
  if (names.length === 0) {
    const found = await findGroupsUsing(ec2, asg, opts.templateName!);
    if (!found.ok) throw new CallFailed(found.failure);
    names = found.groups;
    if (names.length === 0) notes.push(`no Auto Scaling group in ${ctx.region} uses launch template ${opts.templateName}`);
  }
  if (names.length === 0) return [];
  // describeGroups maps Auto Scaling's errors itself (CallFailed).
  const groups = await describeGroups(asg, ctx, names);
  const missing = names.filter((n) => !groups.some((g) => g.AutoScalingGroupName === n));
  if (missing.length > 0) {
    throw new CallFailed({ kind: "not-found", code: "ValidationError", operation: "DescribeAutoScalingGroups", message: `Auto Scaling group${missing.length === 1 ? "" : "s"} ${missing.join(", ")} not found in ${ctx.region}` });
  }
  const targets: Target[] = [];
  const needTags: string[] = [];
  for (const g of groups) {
    const name = g.AutoScalingGroupName ?? "";
    const spec = primarySpec(g, ours);
    const template = spec ? await templates.describe({ id: spec.LaunchTemplateId, name: spec.LaunchTemplateName }) : undefined;
    let expected: string | undefined = opts.configBundle;
    let expectedFrom = `${name}: the configuration's bundle (the group has no launch template)`;
    if (spec && template) {
      const selector = spec.Version ?? "$Default";
      const version = selector === "$Latest" ? template.latestVersion : selector === "$Default" ? template.defaultVersion : numbered(selector);
      if (version === undefined) throw new CallFailed({ kind: "other", code: "UnknownVersion", operation: "DescribeAutoScalingGroups", message: `group ${name} names version ${clean(selector, 40)} of ${template.name}` });
      expected = (await templates.bundlesOf(template, [version])).get(version);
      expectedFrom = `${name}: ${template.name} version ${version}${selector.startsWith("$") ? ` (${selector})` : ""}`;
      if (!expected) notes.push(`${template.name} version ${version}, which ${name} uses, carries no dockinit bundle id: no instance of ${name} can be in place on it`);
    } else if (spec) {
      notes.push(`${name}'s launch template ${spec.LaunchTemplateName ?? spec.LaunchTemplateId} is not found; its instances are compared with the configuration's bundle`);
    }
    for (const i of g.Instances ?? []) {
      if (i.LifecycleState !== "InService" || !i.InstanceId) continue;
      const launchedFrom = numbered(i.LaunchTemplate?.Version);
      if (launchedFrom === undefined) needTags.push(i.InstanceId);
      targets.push({ instanceId: i.InstanceId, group: name, ...(launchedFrom !== undefined ? { launchedFrom } : {}), ...(expected ? { expected } : {}), expectedFrom, ...(template ? { templateId: template.id } : {}) });
    }
  }
  if (needTags.length > 0) {
    const tags = await versionTags(ec2, ctx, needTags);
    for (const t of targets) if (t.launchedFrom === undefined && tags.has(t.instanceId)) t.launchedFrom = tags.get(t.instanceId);
  }
  return targets;
}

/** PingStatus of each managed instance (DescribeInstanceInformation, 50 ids a call, every page). */
async function pingStatus(ssm: SSMClient, ctx: Ctx, ids: string[], clock: Clock): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += INFO_BATCH) {
    const chunk = ids.slice(i, i + INFO_BATCH);
    let token: string | undefined;
    do {
      const next = token;
      const page = await patiently(ctx, "DescribeInstanceInformation", () =>
        ssm.send(new DescribeInstanceInformationCommand({ Filters: [{ Key: "InstanceIds", Values: chunk }], MaxResults: INFO_BATCH, ...(next ? { NextToken: next } : {}) })),
        clock,
      );
      for (const info of page.InstanceInformationList ?? []) if (info.InstanceId) out.set(info.InstanceId, info.PingStatus ?? "Unknown");
      token = page.NextToken;
    } while (token);
  }
  return out;
}

/** Calls that AWS throttled are tried again, waiting longer each time, until the deadline. */
interface Clock {
  sleep: (ms: number) => Promise<void>;
  now: () => number;
  deadline: number;
}

async function patiently<T>(ctx: Ctx, operation: string, send: () => Promise<T>, clock: Clock): Promise<T> {
  let wait = 1000;
  for (;;) {
    try {
      return await send();
    } catch (err) {
      if (!isThrottled(err) || clock.now() + wait > clock.deadline) throw new CallFailed(describeAwsError(err, { operation, templateName: "the instances", region: ctx.region, service: SSM, command: "verify" }));
      await clock.sleep(wait);
      wait = Math.min(wait * 2, MAX_THROTTLED_MS);
    }
  }
}

/** Ask, verify and classify. */
export async function verifyFleet(clients: { ec2: EC2Client; asg: AutoScalingClient; ssm: SSMClient }, opts: VerifyOptions): Promise<VerifyResult> {
  const sleep = opts.sleep ?? ((ms: number) => realSleep(ms));
  const now = opts.now ?? (() => Date.now());
  const document = opts.document ?? RUN_SHELL_SCRIPT;
  try {
    const r = await clientRegion(clients.asg);
    if (!r.ok) return r;
    const ctx: Ctx = { region: r.region };
    const notes: string[] = [];
    const templates = new Templates(clients.ec2, ctx);
    const targets = await gatherTargets(clients.ec2, clients.asg, ctx, templates, opts, notes);
    const reports = new Map<string, InstanceReport>();
    // The deadline counts from here: asking SSM who is online is part of the wait.
    const deadline = now() + opts.timeoutMs;
    const clock: Clock = { sleep, now, deadline };
    const ping = targets.length > 0 ? await pingStatus(clients.ssm, ctx, targets.map((t) => t.instanceId), clock) : new Map<string, string>();
    const online: Target[] = [];
    for (const t of targets) {
      const p = ping.get(t.instanceId);
      const base = { instanceId: t.instanceId, ...(t.group ? { group: t.group } : {}), ...(t.launchedFrom !== undefined ? { launchedFrom: t.launchedFrom } : {}), ...(t.expected ? { expected: t.expected } : {}), expectedFrom: t.expectedFrom };
      if (p === undefined) reports.set(t.instanceId, { ...base, verdict: "unreachable", detail: "not managed by SSM (no agent registered, or its instance profile lacks SSM permissions)" });
      else if (p !== "Online") reports.set(t.instanceId, { ...base, verdict: "unreachable", detail: `SSM agent ${p}`, ssm: { pingStatus: p } });
      else online.push(t);
    }

    const commands: { id: string; instances: Set<string> }[] = [];
    const seconds = Math.max(MIN_DELIVERY_SECONDS, Math.ceil(opts.timeoutMs / 1000));
    for (let i = 0; i < online.length; i += SEND_BATCH) {
      const ids = online.slice(i, i + SEND_BATCH).map((t) => t.instanceId);
      const sent = await patiently(ctx, "SendCommand", () =>
        clients.ssm.send(
          new SendCommandCommand({
            InstanceIds: ids,
            DocumentName: document,
            ...(opts.document ? {} : { Parameters: { commands: [STATUS_COMMAND], executionTimeout: [String(Math.min(seconds, 600))] } }),
            TimeoutSeconds: seconds,
            Comment: "dockinit verify: dockinit-firewall status --json",
            // A drifted host exits 1: an "error" to SSM, which must not stop it asking the others.
            MaxErrors: "100%",
            MaxConcurrency: "100%",
          }),
        ),
        clock,
      );
      const id = sent.Command?.CommandId;
      if (!id) throw new CallFailed({ kind: "other", code: "EmptyResponse", operation: "SendCommand", message: "SendCommand returned no command id" });
      commands.push({ id, instances: new Set(ids) });
    }

    const answers = new Map<string, Answer>();
    let wait = opts.firstPollMs ?? FIRST_POLL_MS;
    const pending = () => commands.some((c) => [...c.instances].some((i) => !answers.has(i)));
    while (pending() && now() + wait <= deadline) {
      await sleep(wait);
      let throttled = false;
      for (const c of commands) {
        if (![...c.instances].some((i) => !answers.has(i))) continue;
        const invocations: CommandInvocation[] = [];
        try {
          let token: string | undefined;
          do {
            const page = await clients.ssm.send(new ListCommandInvocationsCommand({ CommandId: c.id, Details: true, MaxResults: 50, ...(token ? { NextToken: token } : {}) }));
            invocations.push(...(page.CommandInvocations ?? []));
            token = page.NextToken;
          } while (token);
        } catch (err) {
          if (isThrottled(err)) {
            throttled = true;
            break;
          }
          throw new CallFailed(describeAwsError(err, { operation: "ListCommandInvocations", templateName: "the instances", region: ctx.region, service: SSM, command: "verify" }));
        }
        for (const inv of invocations) {
          const iid = inv.InstanceId ?? "";
          if (!c.instances.has(iid) || answers.has(iid)) continue;
          const status = inv.Status ?? "";
          const details = inv.StatusDetails ?? "";
          if (MOVING.has(status) && !UNREACHABLE_DETAILS.has(details)) continue;
          const plugin = inv.CommandPlugins?.[0];
          const split = splitPluginOutput(plugin?.Output);
          let answer: Answer = { status, statusDetails: details, responseCode: plugin?.ResponseCode, ...split };
          // The plugin output is cut at 2,500 characters and mixes stderr in: when it is not understood, read the whole invocation.
          if (!UNREACHABLE_DETAILS.has(details) && !parseHostStatus(split.stdout) && !predatesVerify(split.stdout)) {
            try {
              const full = await clients.ssm.send(new GetCommandInvocationCommand({ CommandId: c.id, InstanceId: iid }));
              answer = { status: full.Status ?? status, statusDetails: full.StatusDetails ?? details, responseCode: full.ResponseCode, stdout: full.StandardOutputContent ?? "", stderr: full.StandardErrorContent ?? "" };
            } catch (err) {
              if (errorName(err) === "InvocationDoesNotExist") continue; // not there yet: next round
              if (isThrottled(err)) {
                throttled = true;
                break;
              }
              throw new CallFailed(describeAwsError(err, { operation: "GetCommandInvocation", templateName: iid, region: ctx.region, service: SSM, command: "verify" }));
            }
          }
          answers.set(iid, answer);
        }
        if (throttled) break;
      }
      wait = throttled ? Math.min(wait * 2, MAX_THROTTLED_MS) : Math.min(Math.ceil(wait * 1.5), MAX_POLL_MS);
      // The last round lands on the deadline rather than past it.
      if (pending() && now() + wait > deadline && now() < deadline) wait = deadline - now();
    }

    // Which version holds a bundle: only loaded when some instance runs another one.
    const versionMaps = new Map<string, Map<number, string | undefined>>();
    for (const t of online) {
      const a = answers.get(t.instanceId);
      const s = a ? parseHostStatus(a.stdout) : undefined;
      if (t.templateId && s && s.bundle && s.bundle !== t.expected && !versionMaps.has(t.templateId)) {
        const info = await templates.describe({ id: t.templateId });
        if (info) versionMaps.set(t.templateId, await templates.allBundles(info));
      }
    }
    const nameOf = async (t: Target) => (t.templateId ? ((await templates.describe({ id: t.templateId }))?.name ?? t.templateId) : "the template");
    for (const t of online) {
      const a = answers.get(t.instanceId);
      if (!a) {
        const base = { instanceId: t.instanceId, ...(t.group ? { group: t.group } : {}), ...(t.launchedFrom !== undefined ? { launchedFrom: t.launchedFrom } : {}), ...(t.expected ? { expected: t.expected } : {}), expectedFrom: t.expectedFrom };
        reports.set(t.instanceId, { ...base, verdict: "unreachable", detail: `no answer within ${Math.round(opts.timeoutMs / 1000)} s (the command is still pending on it)` });
        continue;
      }
      const versions = t.templateId ? versionMaps.get(t.templateId) : undefined;
      const versionOf = (b: string) => {
        let found: number | undefined;
        for (const [v, id] of versions ?? []) if (id === b && (found === undefined || v > found)) found = v;
        return found;
      };
      reports.set(t.instanceId, classifyInvocation(t, a, versionOf, await nameOf(t)));
    }
    const instances = targets.map((t) => reports.get(t.instanceId)!).filter(Boolean);
    return { ok: true, report: summarise(ctx.region, document, instances, notes) };
  } catch (err) {
    if (err instanceof CallFailed) return { ok: false, failure: err.failure };
    throw err;
  }
}
