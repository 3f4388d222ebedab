// `dockinit rollout`: an EC2 Auto Scaling instance refresh of every group that
// uses the launch template, pinned to a numbered version, and the wait for it.
//
// Like launch-template.ts this module is import()ed by the CLI only (rollout,
// push --rollout): it loads @aws-sdk/client-auto-scaling. It has the same
// shape as push: gather what AWS says (facts), decide in a pure function
// (planRollout → a plan value, tested as a table), then carry the plan out
// (startRefreshes) and wait (waitForRefreshes, with an injectable sleep so
// tests never wait real time). Nothing here prints or exits.
import {
  AutoScalingClient,
  CancelInstanceRefreshCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeInstanceRefreshesCommand,
  RollbackInstanceRefreshCommand,
  StartInstanceRefreshCommand,
  type AutoScalingGroup,
  type DesiredConfiguration,
  type InstanceRefresh,
  type LaunchTemplateSpecification,
  type MixedInstancesPolicy,
  type RefreshPreferences,
} from "@aws-sdk/client-auto-scaling";
import { DescribeLaunchTemplatesCommand, DescribeLaunchTemplateVersionsCommand, type EC2Client } from "@aws-sdk/client-ec2";
import type { RolloutSettings } from "../model.js";
import { clientConfig, describeAwsError, nonEmpty, resolveEc2ClientSettings, type AwsFailure, type AwsFlags, type Ec2ClientSettings, type ErrorContext } from "./launch-template.js";

// ── Client settings ───────────────────────────────────────────────────

/**
 * The Auto Scaling client's settings: the same chain as EC2's
 * (resolveEc2ClientSettings), with the service's own endpoint variable,
 * AWS_ENDPOINT_URL_AUTO_SCALING, before the global AWS_ENDPOINT_URL.
 */
export function resolveAutoScalingClientSettings(flags: AwsFlags, env: Record<string, string | undefined>, configRegion?: string): Ec2ClientSettings {
  const { endpoint: _ec2Endpoint, ...settings } = resolveEc2ClientSettings(flags, env, configRegion);
  if (nonEmpty(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS)?.toLowerCase() === "true") return settings;
  const endpoint = nonEmpty(env.AWS_ENDPOINT_URL_AUTO_SCALING) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  return endpoint ? { ...settings, endpoint } : settings;
}

export function createAutoScalingClient(settings: Ec2ClientSettings): AutoScalingClient {
  return new AutoScalingClient(clientConfig(settings));
}

// ── Refresh states ────────────────────────────────────────────────────

/** DescribeInstanceRefreshes' statuses that end a refresh well. */
export const SUCCEEDED: ReadonlySet<string> = new Set(["Successful"]);
/** ... that end it without the new version in place. */
export const FAILED: ReadonlySet<string> = new Set(["Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"]);
/** ... that are still moving: keep waiting (and: another refresh cannot start). */
export const ACTIVE: ReadonlySet<string> = new Set(["Pending", "InProgress", "Baking", "Cancelling", "RollbackInProgress"]);

// ── Inputs, facts and the plan ────────────────────────────────────────

/** The preferences, as dockinit.yaml's rollout: section and the flags give them. */
export type RolloutPreferences = Omit<RolloutSettings, "autoScalingGroups" | "verify">;

export type VersionChoice =
  /** The version `push` just made (or would make, for a dry run). */
  | { from: "push"; version: number }
  /** `--version`: a number, or $Latest/$Default resolved to the number. */
  | { from: "--version"; selector: string }
  /** Neither: the template's default version, resolved to its number. */
  | { from: "default" };

export interface RolloutRequest {
  templateName: string;
  version: VersionChoice;
  /** Named groups; empty: every group that uses the template. */
  groups: string[];
  /** Where the names came from, for messages. */
  groupsFrom: "--auto-scaling-group" | "rollout.auto_scaling_groups" | "discovered";
  preferences: RolloutPreferences;
}

export interface TemplateFacts {
  id: string;
  name: string;
  defaultVersion: number;
  latestVersion: number;
}

/** What DescribeAutoScalingGroups said about one group (or that it does not exist). */
export interface GroupFacts {
  name: string;
  found: boolean;
  launchTemplate?: LaunchTemplateSpecification;
  mixedInstancesPolicy?: MixedInstancesPolicy;
  launchConfigurationName?: string;
  desiredCapacity: number;
  instances: number;
  /** Instances protected from scale-in: AWS's default preference waits an hour for them, then fails. */
  protectedInstances: number;
  /** Instances in Standby: the same. */
  standbyInstances: number;
}

export interface RolloutFacts {
  template: TemplateFacts;
  /** The version to pin, resolved to its number. */
  version: number;
  groups: GroupFacts[];
  /** ImageId of each numbered version of the template a group runs now (rollback needs a real AMI id). */
  imageIds: Record<number, string | undefined>;
  /** A refresh that is still moving, per group name. */
  active: Record<string, { id: string; status: string }>;
  region: string;
}

/** One effective preference with AWS's own default beside it, for the plan. */
export interface PlanSetting {
  key: string;
  value: string;
  awsDefault: string;
}

export interface GroupPlan {
  name: string;
  /** The versions of the template the group names now, as it names them ("$Default", "3"). */
  currentVersions: string[];
  /** The numbered version it runs now, when there is exactly one: the way back. */
  previousVersion?: number;
  desiredCapacity: number;
  instances: number;
  autoRollback: boolean;
  /** Why not, when auto_rollback is auto and AWS would refuse it. */
  noRollbackReason?: string;
  /** The group follows $Default/$Latest now and will be pinned to the number. */
  pinned: boolean;
  warnings: string[];
  /** StartInstanceRefresh's request for this group, exactly. */
  request: { AutoScalingGroupName: string; Strategy: "Rolling"; DesiredConfiguration: DesiredConfiguration; Preferences: RefreshPreferences };
}

export type RolloutProblem =
  | { kind: "group-not-found"; group: string; message: string }
  | { kind: "other-template"; group: string; message: string }
  | { kind: "no-rollback"; group: string; message: string }
  | { kind: "in-progress"; group: string; id: string; message: string }
  | { kind: "no-groups"; message: string };

export interface RolloutPlan {
  templateId: string;
  templateName: string;
  region: string;
  version: number;
  versionFrom: VersionChoice["from"];
  groupsFrom: RolloutRequest["groupsFrom"];
  /** Groups found by template (not named): listed and confirmed on a terminal, or --yes. */
  needsConfirmation: boolean;
  groups: GroupPlan[];
  settings: PlanSetting[];
  /** Said once under the plan. */
  notes: string[];
  /** Anything here: nothing may start. */
  problems: RolloutProblem[];
}

const DYNAMIC = new Set(["$Latest", "$Default"]);

function usesTemplate(spec: LaunchTemplateSpecification | undefined, t: { id: string; name: string }): boolean {
  return spec !== undefined && (spec.LaunchTemplateId === t.id || spec.LaunchTemplateName === t.name);
}

/** Every launch template specification of a group: its LaunchTemplate, or its mixed-instances policy's and its overrides'. */
export function groupSpecs(g: Pick<GroupFacts, "launchTemplate" | "mixedInstancesPolicy">): LaunchTemplateSpecification[] {
  const specs: LaunchTemplateSpecification[] = [];
  if (g.launchTemplate) specs.push(g.launchTemplate);
  const lt = g.mixedInstancesPolicy?.LaunchTemplate;
  if (lt?.LaunchTemplateSpecification) specs.push(lt.LaunchTemplateSpecification);
  for (const o of lt?.Overrides ?? []) if (o.LaunchTemplateSpecification) specs.push(o.LaunchTemplateSpecification);
  return specs;
}

export function groupUsesTemplate(g: Pick<GroupFacts, "launchTemplate" | "mixedInstancesPolicy">, t: { id: string; name: string }): boolean {
  return groupSpecs(g).some((s) => usesTemplate(s, t));
}

/** A group's version of a spec as AWS applies it: no Version means $Default. */
const versionOf = (spec: LaunchTemplateSpecification) => spec.Version ?? "$Default";

/** One template reference: the id alone (AWS refuses a specification with both id and name). */
function specRef(spec: LaunchTemplateSpecification): LaunchTemplateSpecification {
  return spec.LaunchTemplateId ? { LaunchTemplateId: spec.LaunchTemplateId, Version: spec.Version } : { LaunchTemplateName: spec.LaunchTemplateName, Version: spec.Version };
}

/**
 * The desired configuration: the group's own, with every reference to our
 * template pinned to `version`. A mixed-instances group keeps its instance
 * distribution and overrides (a bare LaunchTemplate would replace them).
 */
export function desiredConfiguration(g: Pick<GroupFacts, "launchTemplate" | "mixedInstancesPolicy">, t: { id: string; name: string }, version: number): DesiredConfiguration {
  const pin = (spec: LaunchTemplateSpecification): LaunchTemplateSpecification =>
    usesTemplate(spec, t) ? { LaunchTemplateId: t.id, Version: String(version) } : specRef(spec);
  const mixed = g.mixedInstancesPolicy;
  if (mixed?.LaunchTemplate) {
    const lt = mixed.LaunchTemplate;
    return {
      MixedInstancesPolicy: {
        ...mixed,
        LaunchTemplate: {
          ...lt,
          ...(lt.LaunchTemplateSpecification ? { LaunchTemplateSpecification: pin(lt.LaunchTemplateSpecification) } : {}),
          ...(lt.Overrides ? { Overrides: lt.Overrides.map((o) => (o.LaunchTemplateSpecification ? { ...o, LaunchTemplateSpecification: pin(o.LaunchTemplateSpecification) } : o)) } : {}),
        },
      },
    };
  }
  return { LaunchTemplate: { LaunchTemplateId: t.id, Version: String(version) } };
}

const PROTECTED = { wait: "Wait", refresh: "Refresh", ignore: "Ignore" } as const;
const STANDBY = { wait: "Wait", terminate: "Terminate", ignore: "Ignore" } as const;

/** StartInstanceRefresh's Preferences; every value sent, so AWS's defaults never decide silently. */
export function refreshPreferences(p: RolloutPreferences, autoRollback: boolean): RefreshPreferences {
  return {
    MinHealthyPercentage: p.minHealthyPercentage,
    MaxHealthyPercentage: p.maxHealthyPercentage,
    InstanceWarmup: p.instanceWarmup,
    SkipMatching: p.skipMatching,
    ...(p.checkpoints.length > 0 ? { CheckpointPercentages: p.checkpoints, CheckpointDelay: p.checkpointDelay } : {}),
    ...(p.alarms.length > 0 ? { AlarmSpecification: { Alarms: p.alarms } } : {}),
    BakeTime: p.bakeTime,
    AutoRollback: autoRollback,
    ScaleInProtectedInstances: PROTECTED[p.protectedInstances],
    StandbyInstances: STANDBY[p.standbyInstances],
  };
}

const secs = (n: number) => `${n} s`;

/** Every effective value beside AWS's own default (StartInstanceRefresh's documentation). */
export function planSettings(p: RolloutPreferences): PlanSetting[] {
  return [
    { key: "strategy", value: "Rolling", awsDefault: "Rolling" },
    { key: "skip_matching", value: String(p.skipMatching), awsDefault: "false" },
    // Sent with every refresh, so they win over a group's own instance maintenance policy.
    { key: "min_healthy_percentage", value: `${p.minHealthyPercentage}%`, awsDefault: "the group's instance maintenance policy, else 90%" },
    { key: "max_healthy_percentage", value: `${p.maxHealthyPercentage}%`, awsDefault: "the group's instance maintenance policy, else 100%" },
    { key: "instance_warmup", value: secs(p.instanceWarmup), awsDefault: "the group's health check grace period" },
    { key: "checkpoints", value: p.checkpoints.length > 0 ? p.checkpoints.map((c) => `${c}%`).join(", ") : "none", awsDefault: "none" },
    { key: "checkpoint_delay", value: p.checkpoints.length > 0 ? secs(p.checkpointDelay) : "- (no checkpoints)", awsDefault: "3600 s" },
    { key: "alarms", value: p.alarms.length > 0 ? p.alarms.join(", ") : "none", awsDefault: "none" },
    { key: "bake_time", value: secs(p.bakeTime), awsDefault: "0 s" },
    { key: "auto_rollback", value: String(p.autoRollback), awsDefault: "false" },
    { key: "protected_instances", value: p.protectedInstances, awsDefault: "wait (an hour, then the refresh fails)" },
    { key: "standby_instances", value: p.standbyInstances, awsDefault: "wait (an hour, then the refresh fails)" },
  ];
}

/**
 * Why AWS would refuse AutoRollback for this group, or undefined. `every`:
 * the versions of every launch template the group names (a mixed-instances
 * group's other templates count too); `current`: those of ours.
 */
function rollbackObstacle(every: string[], current: string[], imageIds: Record<number, string | undefined>): string | undefined {
  const dynamic = every.find((v) => DYNAMIC.has(v));
  if (dynamic) return `the group uses version ${dynamic}, and AWS rolls back only to a numbered version`;
  for (const v of current) {
    const image = imageIds[Number(v)];
    if (image?.startsWith("resolve:ssm:")) return `version ${v}'s AMI is an SSM parameter (${image}), which AWS cannot roll back to`;
  }
  return undefined;
}

/** The rollout decision: pure, from the request and what AWS said (test/unit/aws-rollout.test.ts). */
export function planRollout(req: RolloutRequest, facts: RolloutFacts): RolloutPlan {
  const t = facts.template;
  const p = req.preferences;
  const problems: RolloutProblem[] = [];
  const groups: GroupPlan[] = [];
  for (const g of facts.groups) {
    if (!g.found) {
      problems.push({ kind: "group-not-found", group: g.name, message: `Auto Scaling group ${g.name} (from ${req.groupsFrom}) does not exist in ${facts.region}` });
      continue;
    }
    if (!groupUsesTemplate(g, t)) {
      const others = [...new Set(groupSpecs(g).map((s) => s.LaunchTemplateName ?? s.LaunchTemplateId ?? "?"))];
      const uses = others.length > 0 ? `launch template ${others.join(", ")}` : g.launchConfigurationName ? `launch configuration ${g.launchConfigurationName}` : "no launch template";
      problems.push({ kind: "other-template", group: g.name, message: `Auto Scaling group ${g.name} uses ${uses}, not ${t.name}; roll out that template, or leave the group out` });
      continue;
    }
    const current = [...new Set(groupSpecs(g).filter((s) => usesTemplate(s, t)).map(versionOf))];
    const numbered = current.filter((v) => !DYNAMIC.has(v));
    const obstacle = rollbackObstacle([...new Set(groupSpecs(g).map(versionOf))], current, facts.imageIds);
    if (p.autoRollback === true && obstacle) {
      problems.push({ kind: "no-rollback", group: g.name, message: `auto_rollback is true, but group ${g.name} cannot roll back: ${obstacle}` });
    }
    const active = facts.active[g.name];
    if (active) {
      problems.push({
        kind: "in-progress",
        group: g.name,
        id: active.id,
        message: `group ${g.name} already has an instance refresh ${active.status} (${active.id}); wait for it, or cancel it: dockinit rollout --cancel --auto-scaling-group ${g.name}`,
      });
    }
    const autoRollback = p.autoRollback !== false && !obstacle;
    const warnings: string[] = [];
    if (g.protectedInstances > 0 && p.protectedInstances === "wait") {
      warnings.push(`${g.protectedInstances} instance(s) protected from scale-in: AWS waits an hour for them, then fails the refresh (rollout.protected_instances: refresh or ignore)`);
    }
    if (g.standbyInstances > 0 && p.standbyInstances === "wait") {
      warnings.push(`${g.standbyInstances} instance(s) in Standby: AWS waits an hour for them, then fails the refresh (rollout.standby_instances: terminate or ignore)`);
    }
    if (g.instances === 0) warnings.push("no instances: the refresh only sets the group's launch template version");
    else if (current.length === 1 && current[0] === String(facts.version)) {
      warnings.push(`already on version ${facts.version}: ${p.skipMatching ? "only instances not launched from it are replaced (skip_matching)" : "every instance is replaced again (skip_matching is false)"}`);
    }
    const previous = numbered.length === 1 && current.length === 1 ? Number(numbered[0]) : undefined;
    groups.push({
      name: g.name,
      currentVersions: current,
      ...(previous !== undefined ? { previousVersion: previous } : {}),
      desiredCapacity: g.desiredCapacity,
      instances: g.instances,
      autoRollback,
      ...(p.autoRollback === "auto" && obstacle ? { noRollbackReason: obstacle } : {}),
      pinned: current.some((v) => DYNAMIC.has(v)),
      warnings,
      request: {
        AutoScalingGroupName: g.name,
        Strategy: "Rolling",
        DesiredConfiguration: desiredConfiguration(g, t, facts.version),
        Preferences: refreshPreferences(p, autoRollback),
      },
    });
  }
  if (facts.groups.length === 0) {
    problems.push({
      kind: "no-groups",
      message: `no Auto Scaling group in ${facts.region} uses launch template ${t.name} (${t.id}); name groups with --auto-scaling-group or rollout.auto_scaling_groups`,
    });
  }
  const notes = [
    `after a successful refresh AWS sets each group's launch template version to ${facts.version}: a later \`push --set-default\` does not reach the groups' scale-out; roll each new version out (\`dockinit push --rollout\`)`,
  ];
  return {
    templateId: t.id,
    templateName: t.name,
    region: facts.region,
    version: facts.version,
    versionFrom: req.version.from,
    groupsFrom: req.groupsFrom,
    needsConfirmation: req.groupsFrom === "discovered",
    groups,
    settings: planSettings(p),
    notes,
    problems,
  };
}

// ── Talking to Auto Scaling and EC2 ───────────────────────────────────

const AUTO_SCALING = { name: "Auto Scaling", iam: "autoscaling" };

/** Thrown inside this module only; converted to a result at the API boundary. */
/** A failure already mapped to words (verify.ts throws and catches it too). */
export class CallFailed extends Error {
  constructor(readonly failure: AwsFailure) {
    super(failure.message);
  }
}

interface Ctx {
  region: string;
  endpoint?: string;
  templateName: string;
}

function errorName(err: unknown): string {
  return typeof err === "object" && err !== null ? ((err as { name?: string }).name ?? "") : "";
}

/**
 * Map what Auto Scaling throws; its own codes first, then the shared mapping.
 * The SDK names Auto Scaling's modelled errors after their classes
 * (InstanceRefreshInProgressFault, LimitExceededFault); the API's code is the
 * name without "Fault", and that is what users find in AWS's documentation.
 */
export function describeAutoScalingError(err: unknown, operation: string, subject: string, ctx: Omit<Ctx, "templateName">): AwsFailure {
  const e = typeof err === "object" && err !== null ? (err as Record<string, unknown>) : { message: String(err) };
  const code = errorName(err).replace(/Fault$/, "");
  const detail = String(e.message ?? "").split("\n")[0] ?? "";
  const fail = (kind: AwsFailure["kind"], message: string): AwsFailure => ({ kind, code, operation, message });
  if (code === "InstanceRefreshInProgress") return fail("conflict", `${subject} already has an instance refresh in progress (${code})`);
  if (code === "ActiveInstanceRefreshNotFound") return fail("not-found", `${subject} has no instance refresh in progress (${code})`);
  if (code === "IrreversibleInstanceRefresh") {
    return fail("invalid-request", `AWS cannot roll back the refresh of ${subject} (${code}): it has no desired configuration, or the group's previous version is $Latest/$Default or uses an SSM parameter for its AMI`);
  }
  if (code === "ResourceContention") return fail("conflict", `another request is changing ${subject} right now (${code}); run again in a minute`);
  if (code === "ValidationError" && /not found|does not exist/i.test(detail)) return fail("not-found", `${subject} not found in ${ctx.region} (${detail})`);
  const shared: ErrorContext = { operation, templateName: subject, region: ctx.region, endpoint: ctx.endpoint, service: AUTO_SCALING, command: "rollout" };
  // The shared mapping reads name, code, message, $fault, $metadata, $retryable (not enumerable on an Error).
  const plain = { name: code || undefined, code: e.code, message: e.message, $fault: e.$fault, $metadata: e.$metadata, $retryable: e.$retryable };
  return describeAwsError(plain, shared);
}

async function asgCall<T>(ctx: Ctx, operation: string, subject: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    throw new CallFailed(describeAutoScalingError(err, operation, subject, ctx));
  }
}

async function ec2Call<T>(ctx: Ctx, operation: string, send: () => Promise<T>, version?: string): Promise<T> {
  try {
    return await send();
  } catch (err) {
    throw new CallFailed(describeAwsError(err, { operation, templateName: ctx.templateName, region: ctx.region, endpoint: ctx.endpoint, version, command: "rollout" }));
  }
}

/** The region and endpoint the Auto Scaling client uses, for messages; a missing region is a failure. */
async function openContext(client: AutoScalingClient, templateName: string): Promise<Ctx> {
  let region: string;
  try {
    region = await client.config.region();
  } catch (err) {
    throw new CallFailed(describeAwsError(err, { operation: "ResolveRegion", templateName, region: "(no region)" }));
  }
  let endpoint: string | undefined;
  try {
    const ep = await client.config.endpoint?.();
    if (ep) endpoint = `${ep.protocol}//${ep.hostname}${ep.port ? `:${ep.port}` : ""}${ep.path === "/" ? "" : ep.path}`;
  } catch {
    endpoint = undefined;
  }
  return { region, endpoint, templateName };
}

function groupFacts(g: AutoScalingGroup): GroupFacts {
  const instances = g.Instances ?? [];
  return {
    name: g.AutoScalingGroupName ?? "",
    found: true,
    ...(g.LaunchTemplate ? { launchTemplate: g.LaunchTemplate } : {}),
    ...(g.MixedInstancesPolicy ? { mixedInstancesPolicy: g.MixedInstancesPolicy } : {}),
    ...(g.LaunchConfigurationName ? { launchConfigurationName: g.LaunchConfigurationName } : {}),
    desiredCapacity: g.DesiredCapacity ?? 0,
    instances: instances.length,
    protectedInstances: instances.filter((i) => i.ProtectedFromScaleIn).length,
    standbyInstances: instances.filter((i) => i.LifecycleState?.startsWith("Standby")).length,
  };
}

/**
 * DescribeAutoScalingGroups, every page. There is no filter for "uses this
 * launch template" (its Filters match tags only), so finding the groups of a
 * template means reading all of them.
 */
export async function describeGroups(client: AutoScalingClient, ctx: Pick<Ctx, "region" | "endpoint">, names?: string[]): Promise<AutoScalingGroup[]> {
  const out: AutoScalingGroup[] = [];
  let token: string | undefined;
  do {
    const page = await asgCall({ ...ctx, templateName: "" }, "DescribeAutoScalingGroups", "the Auto Scaling groups", () =>
      client.send(new DescribeAutoScalingGroupsCommand({ ...(names && names.length > 0 ? { AutoScalingGroupNames: names } : {}), MaxRecords: 100, ...(token ? { NextToken: token } : {}) })),
    );
    out.push(...(page.AutoScalingGroups ?? []));
    token = page.NextToken;
  } while (token);
  return out;
}

/** The newest refresh of a group that is still moving, if any. */
async function activeRefresh(client: AutoScalingClient, ctx: Ctx, group: string): Promise<{ id: string; status: string } | undefined> {
  const out = await asgCall(ctx, "DescribeInstanceRefreshes", `group ${group}`, () => client.send(new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: group, MaxRecords: 10 })));
  const found = (out.InstanceRefreshes ?? []).find((r) => ACTIVE.has(r.Status ?? ""));
  return found ? { id: found.InstanceRefreshId ?? "?", status: found.Status ?? "?" } : undefined;
}

export type FactsResult = { ok: true; facts: RolloutFacts } | { ok: false; failure: AwsFailure };

/**
 * Everything planRollout needs: the template and the version resolved to its
 * number (EC2), the groups (named, or all that use the template), the AMI of
 * the versions they run now (for rollback), and refreshes already running.
 */
export async function gatherRolloutFacts(ec2: EC2Client, asg: AutoScalingClient, req: RolloutRequest): Promise<FactsResult> {
  try {
    const ctx = await openContext(asg, req.templateName);
    const described = await ec2Call(ctx, "DescribeLaunchTemplates", () => ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [req.templateName] })));
    const lt = described.LaunchTemplates?.find((x) => x.LaunchTemplateName === req.templateName);
    if (!lt?.LaunchTemplateId) {
      return { ok: false, failure: { kind: "not-found", code: "InvalidLaunchTemplateName.NotFoundException", operation: "DescribeLaunchTemplates", message: `launch template ${req.templateName} not found in ${ctx.region}` } };
    }
    const template: TemplateFacts = {
      id: lt.LaunchTemplateId,
      name: req.templateName,
      defaultVersion: lt.DefaultVersionNumber ?? 1,
      latestVersion: lt.LatestVersionNumber ?? lt.DefaultVersionNumber ?? 1,
    };
    let version: number;
    if (req.version.from === "push") version = req.version.version;
    else if (req.version.from === "default") version = template.defaultVersion;
    else if (req.version.selector === "$Default") version = template.defaultVersion;
    else if (req.version.selector === "$Latest") version = template.latestVersion;
    else {
      // A number: make sure it exists before any group is asked to use it.
      const selector = req.version.selector;
      const out = await ec2Call(ctx, "DescribeLaunchTemplateVersions", () => ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: template.id, Versions: [selector] })), selector);
      const found = out.LaunchTemplateVersions?.[0]?.VersionNumber;
      if (found === undefined) {
        return { ok: false, failure: { kind: "version-not-found", code: "EmptyResponse", operation: "DescribeLaunchTemplateVersions", message: `launch template ${template.name} has no version ${selector}` } };
      }
      version = found;
    }

    let groups: GroupFacts[];
    if (req.groups.length > 0) {
      const byName = new Map((await describeGroups(asg, ctx, req.groups)).map((g) => [g.AutoScalingGroupName, g]));
      groups = req.groups.map((name) => {
        const g = byName.get(name);
        return g ? groupFacts(g) : { name, found: false, desiredCapacity: 0, instances: 0, protectedInstances: 0, standbyInstances: 0 };
      });
    } else {
      groups = (await describeGroups(asg, ctx)).map(groupFacts).filter((g) => groupUsesTemplate(g, template));
    }

    const imageIds: Record<number, string | undefined> = {};
    if (req.preferences.autoRollback !== false) {
      const numbered = [
        ...new Set(
          groups
            .flatMap((g) => groupSpecs(g).filter((s) => usesTemplate(s, template)))
            .map(versionOf)
            .filter((v) => !DYNAMIC.has(v)),
        ),
      ];
      if (numbered.length > 0) {
        const out = await ec2Call(ctx, "DescribeLaunchTemplateVersions", () =>
          ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: template.id, Versions: numbered })),
        );
        for (const v of out.LaunchTemplateVersions ?? []) if (v.VersionNumber !== undefined) imageIds[v.VersionNumber] = v.LaunchTemplateData?.ImageId;
      }
    }

    const active: RolloutFacts["active"] = {};
    for (const g of groups) {
      if (!g.found || !groupUsesTemplate(g, template)) continue;
      const a = await activeRefresh(asg, ctx, g.name);
      if (a) active[g.name] = a;
    }
    return { ok: true, facts: { template, version, groups, imageIds, active, region: ctx.region } };
  } catch (err) {
    if (err instanceof CallFailed) return { ok: false, failure: err.failure };
    throw err;
  }
}

// ── Starting, cancelling, rolling back ────────────────────────────────

export interface StartedRefresh {
  group: string;
  id: string;
}

export type StartResult =
  | { ok: true; started: StartedRefresh[] }
  /** `started`: the groups whose refresh did start before `group` failed (they go on). */
  | { ok: false; group: string; failure: AwsFailure; started: StartedRefresh[]; inProgress?: { id: string; status: string } };

/** StartInstanceRefresh for each group of the plan, in order; stops at the first failure. */
export async function startRefreshes(client: AutoScalingClient, plan: RolloutPlan): Promise<StartResult> {
  const ctx: Ctx = { region: plan.region, templateName: plan.templateName };
  const started: StartedRefresh[] = [];
  for (const g of plan.groups) {
    try {
      const out = await asgCall(ctx, "StartInstanceRefresh", `group ${g.name}`, () => client.send(new StartInstanceRefreshCommand(g.request)));
      started.push({ group: g.name, id: out.InstanceRefreshId ?? "?" });
    } catch (err) {
      if (!(err instanceof CallFailed)) throw err;
      let inProgress: { id: string; status: string } | undefined;
      if (err.failure.code === "InstanceRefreshInProgress") {
        // Started by someone else since the plan looked: name it.
        inProgress = await activeRefresh(client, ctx, g.name).catch(() => undefined);
      }
      return { ok: false, group: g.name, failure: err.failure, started, ...(inProgress ? { inProgress } : {}) };
    }
  }
  return { ok: true, started };
}

export interface GroupActionResult {
  group: string;
  ok: boolean;
  /** The refresh cancelled or rolled back. */
  id?: string;
  failure?: AwsFailure;
}

/** CancelInstanceRefresh or RollbackInstanceRefresh on each group; every group is tried. */
export async function stopRefreshes(client: AutoScalingClient, action: "cancel" | "rollback", groups: string[], region: string): Promise<GroupActionResult[]> {
  const ctx: Ctx = { region, templateName: "" };
  const results: GroupActionResult[] = [];
  for (const group of groups) {
    const operation = action === "cancel" ? "CancelInstanceRefresh" : "RollbackInstanceRefresh";
    try {
      const out = await asgCall(ctx, operation, `group ${group}`, () =>
        action === "cancel"
          ? client.send(new CancelInstanceRefreshCommand({ AutoScalingGroupName: group }))
          : client.send(new RollbackInstanceRefreshCommand({ AutoScalingGroupName: group })),
      );
      results.push({ group, ok: true, id: out.InstanceRefreshId ?? "?" });
    } catch (err) {
      if (!(err instanceof CallFailed)) throw err;
      results.push({ group, ok: false, failure: err.failure });
    }
  }
  return results;
}

/** The groups --cancel/--rollback act on when none are named: those that use the template. */
/** Of these groups, the ones with an instance refresh in progress (what --cancel/--rollback can act on). */
export async function groupsWithActiveRefresh(client: AutoScalingClient, groups: string[], region: string): Promise<{ ok: true; groups: string[] } | { ok: false; failure: AwsFailure }> {
  const ctx: Ctx = { region, templateName: "" };
  const running: string[] = [];
  try {
    for (const g of groups) if (await activeRefresh(client, ctx, g)) running.push(g);
  } catch (err) {
    if (err instanceof CallFailed) return { ok: false, failure: err.failure };
    throw err;
  }
  return { ok: true, groups: running };
}

export async function findGroupsUsing(ec2: EC2Client, asg: AutoScalingClient, templateName: string): Promise<{ ok: true; groups: string[]; region: string } | { ok: false; failure: AwsFailure }> {
  try {
    const ctx = await openContext(asg, templateName);
    const described = await ec2Call(ctx, "DescribeLaunchTemplates", () => ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [templateName] })));
    const id = described.LaunchTemplates?.find((x) => x.LaunchTemplateName === templateName)?.LaunchTemplateId;
    if (!id) return { ok: false, failure: { kind: "not-found", code: "InvalidLaunchTemplateName.NotFoundException", operation: "DescribeLaunchTemplates", message: `launch template ${templateName} not found in ${ctx.region}` } };
    const groups = (await describeGroups(asg, ctx)).map(groupFacts).filter((g) => groupUsesTemplate(g, { id, name: templateName }));
    return { ok: true, groups: groups.map((g) => g.name), region: ctx.region };
  } catch (err) {
    if (err instanceof CallFailed) return { ok: false, failure: err.failure };
    throw err;
  }
}

/** The client's region, for --cancel/--rollback with named groups (no template involved). */
export async function clientRegion(asg: AutoScalingClient): Promise<{ ok: true; region: string } | { ok: false; failure: AwsFailure }> {
  try {
    return { ok: true, region: (await openContext(asg, "")).region };
  } catch (err) {
    if (err instanceof CallFailed) return { ok: false, failure: err.failure };
    throw err;
  }
}

// ── Waiting ───────────────────────────────────────────────────────────

export interface RefreshProgress {
  group: string;
  id: string;
  status: string;
  percentage?: number;
  /** Instances still to replace. */
  instancesToUpdate?: number;
  reason?: string;
}

export type WaitResult =
  | { outcome: "successful" | "failed" | "interrupted" | "guarded"; progress: RefreshProgress[] }
  | { outcome: "aws-error"; failure: AwsFailure; progress: RefreshProgress[] };

export interface WaitOptions {
  /** Between polls; 15 s for real. */
  pollMs: number;
  /** Resolves after `ms` or as soon as `signal` aborts. Injected by tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Aborting stops the waiting, never a refresh. */
  signal?: AbortSignal;
  /** Called after every poll with every group's latest state. */
  onPoll: (progress: RefreshProgress[]) => void;
  /** rollout --verify: after every poll; "stop" ends the wait ("guarded": it has rolled back or cancelled). */
  guard?: (progress: RefreshProgress[]) => Promise<"stop" | undefined>;
}

export function realSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

function progressOf(group: string, id: string, r: InstanceRefresh | undefined): RefreshProgress {
  return {
    group,
    id,
    status: r?.Status ?? "Unknown",
    ...(r?.PercentageComplete !== undefined ? { percentage: r.PercentageComplete } : {}),
    ...(r?.InstancesToUpdate !== undefined ? { instancesToUpdate: r.InstancesToUpdate } : {}),
    ...(r?.StatusReason ? { reason: r.StatusReason } : {}),
  };
}

const isAbort = (err: unknown) => errorName(err) === "AbortError" || (err instanceof CallFailed && err.failure.code === "AbortError");

/** Polls in a row that may miss a started refresh before the wait gives up on it. */
const MAX_MISSING_POLLS = 3;

/**
 * Poll DescribeInstanceRefreshes (the SDK has no waiter for it) until every
 * refresh has ended: "successful" when all are Successful, "failed" when any
 * ended otherwise (Failed, Cancelled, RollbackSuccessful, RollbackFailed).
 * Pending, InProgress, Baking, Cancelling and RollbackInProgress keep it
 * waiting. An abort ends the wait ("interrupted"); the refreshes go on.
 */
export async function waitForRefreshes(client: AutoScalingClient, started: StartedRefresh[], region: string, opts: WaitOptions): Promise<WaitResult> {
  const sleep = opts.sleep ?? realSleep;
  const ctx: Ctx = { region, templateName: "" };
  const latest = new Map<string, RefreshProgress>(started.map((s) => [s.group, { group: s.group, id: s.id, status: "Pending" }]));
  const snapshot = () => started.map((s) => latest.get(s.group)!);
  /** Polls in a row that did not find a group's refresh; AWS keeps refreshes for weeks, so a few mean it is gone. */
  const missing = new Map<string, number>();
  for (;;) {
    if (opts.signal?.aborted) return { outcome: "interrupted", progress: snapshot() };
    try {
      for (const s of started) {
        // Ended refreshes are not asked again; any other status (a new one
        // AWS adds included) is polled until it ends.
        const status = latest.get(s.group)!.status;
        if (SUCCEEDED.has(status) || FAILED.has(status)) continue;
        const out = await asgCall(ctx, "DescribeInstanceRefreshes", `group ${s.group}`, () =>
          client.send(new DescribeInstanceRefreshesCommand({ AutoScalingGroupName: s.group, InstanceRefreshIds: [s.id] }), { abortSignal: opts.signal }),
        );
        const found = out.InstanceRefreshes?.find((r) => r.InstanceRefreshId === s.id);
        latest.set(s.group, progressOf(s.group, s.id, found));
        missing.set(s.group, found ? 0 : (missing.get(s.group) ?? 0) + 1);
        if ((missing.get(s.group) ?? 0) >= MAX_MISSING_POLLS) {
          const failure: AwsFailure = {
            kind: "not-found",
            code: "InstanceRefreshNotFound",
            operation: "DescribeInstanceRefreshes",
            message: `Auto Scaling no longer reports refresh ${s.id} of group ${s.group} (${MAX_MISSING_POLLS} polls in a row)`,
          };
          return { outcome: "aws-error", failure, progress: snapshot() };
        }
      }
    } catch (err) {
      if (opts.signal?.aborted || isAbort(err)) return { outcome: "interrupted", progress: snapshot() };
      if (err instanceof CallFailed) return { outcome: "aws-error", failure: err.failure, progress: snapshot() };
      throw err;
    }
    const progress = snapshot();
    opts.onPoll(progress);
    if (opts.guard && (await opts.guard(progress)) === "stop") return { outcome: "guarded", progress: snapshot() };
    if (progress.every((p) => SUCCEEDED.has(p.status))) return { outcome: "successful", progress };
    if (progress.every((p) => SUCCEEDED.has(p.status) || FAILED.has(p.status))) return { outcome: "failed", progress };
    await sleep(opts.pollMs, opts.signal);
  }
}
