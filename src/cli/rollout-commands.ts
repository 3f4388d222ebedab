// `dockinit rollout` and the rollout half of `dockinit push --rollout`:
// settings from dockinit.yaml and flags, the plan printed, confirmation,
// the refreshes started, their progress shown, the exit code.
//
// Nothing here imports the AWS SDK: ../aws/rollout.js (which loads
// @aws-sdk/client-auto-scaling) and ../aws/launch-template.js are import()ed
// when a rollout actually runs.
import { InvalidArgumentError, type Command } from "commander";
import type { LoadResult } from "../api.js";
import type { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import type { AwsFailure, Ec2ClientSettings } from "../aws/launch-template.js";
import type { GroupActionResult, RefreshProgress, RolloutPlan, RolloutPreferences, RolloutRequest, StartedRefresh, VersionChoice } from "../aws/rollout.js";
import { rolloutSchema } from "../config/schema.js";
import type { RolloutSettings } from "../model.js";
import { loadDefaultConfig } from "../api.js";
import { verifyGuard, verifyNote, verifyPreferences } from "./rollout-verify.js";
import { announceRegion, canConfirm, configFileOptions, configGiven, EXIT, noConfirmation, pickConfig, REGION_HELP, takeConfigArgument, type CliIO } from "./io.js";

/** The flags `rollout` (and, for the subset it has, `push --rollout`) takes. */
export interface RolloutFlags {
  autoScalingGroup?: string[];
  minHealthy?: number;
  warmup?: number;
  checkpoints?: number[];
  /** false only when --no-auto-rollback was given. */
  autoRollback?: boolean;
  /** false only when --no-wait was given. */
  wait?: boolean;
  dryRun?: boolean;
  yes?: boolean;
  json?: boolean;
  pollInterval?: number;
  /** rollout --verify: ask each new instance, roll back at the first not in place. */
  verify?: boolean;
  region?: string;
  profile?: string;
}

/** 15 s between DescribeInstanceRefreshes calls: refreshes move in minutes, and the API is rate-limited per account. */
export const DEFAULT_POLL_SECONDS = 15;

export const parseWholeNumber = (what: string) => (text: string) => {
  if (!/^[0-9]{1,9}$/.test(text.trim())) throw new InvalidArgumentError(`${what} is a whole number`);
  return Number(text.trim());
};

export function parseCheckpoints(text: string): number[] {
  const t = text.trim();
  if (t === "" || t === "none") return [];
  const parts = t.split(",").map((p) => p.trim());
  if (parts.some((p) => !/^[0-9]{1,3}$/.test(p))) throw new InvalidArgumentError("write percentages separated by commas, e.g. 20,50,100 (or none)");
  return parts.map(Number);
}

export function parsePollInterval(text: string): number {
  const n = Number(text.trim());
  if (!Number.isFinite(n) || n < 0.05 || n > 3600) throw new InvalidArgumentError("seconds between 0.05 and 3600");
  return n;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The rollout options both `rollout` and `push --rollout` accept. */
export function rolloutOptions(cmd: Command): Command {
  return cmd
    .option("--auto-scaling-group <name>", "a group to refresh (repeat for more; default: rollout.auto_scaling_groups, else every group that uses the template)", collect)
    .option("--yes", "start without asking, also on groups found by template (needed without a terminal)")
    .option("--no-wait", "exit 0 once every refresh has started")
    .option("--poll-interval <seconds>", `seconds between progress checks (default ${DEFAULT_POLL_SECONDS})`, parsePollInterval)
    .option("--verify", "ask each new instance through SSM whether its firewall is in place (as `dockinit verify`); roll back at the first that is not (needs checkpoints)");
}

/** Config settings with the flags on top, checked with the schema's own rules; a string is a usage error. */
export function mergePreferences(config: RolloutSettings, flags: RolloutFlags): { preferences: RolloutPreferences } | { error: string } {
  const merged = {
    min_healthy_percentage: flags.minHealthy ?? config.minHealthyPercentage,
    max_healthy_percentage: config.maxHealthyPercentage,
    instance_warmup: flags.warmup ?? config.instanceWarmup,
    checkpoints: flags.checkpoints ?? config.checkpoints,
    checkpoint_delay: config.checkpointDelay,
    alarms: config.alarms,
    bake_time: config.bakeTime,
    skip_matching: config.skipMatching,
    auto_rollback: flags.autoRollback === false ? false : config.autoRollback,
    protected_instances: config.protectedInstances,
    standby_instances: config.standbyInstances,
  };
  const checked = rolloutSchema.safeParse(merged);
  if (!checked.success) {
    const FLAG: Record<string, string> = { min_healthy_percentage: "--min-healthy", instance_warmup: "--warmup", checkpoints: "--checkpoints" };
    const issue = checked.error.issues[0]!;
    const key = String(issue.path[0] ?? "");
    return { error: `${FLAG[key] ?? `rollout.${key}`}: ${issue.message}` };
  }
  const r = checked.data;
  return {
    preferences: {
      minHealthyPercentage: r.min_healthy_percentage,
      maxHealthyPercentage: r.max_healthy_percentage,
      instanceWarmup: r.instance_warmup,
      checkpoints: r.checkpoints,
      checkpointDelay: r.checkpoint_delay,
      alarms: r.alarms,
      bakeTime: r.bake_time,
      skipMatching: r.skip_matching,
      autoRollback: r.auto_rollback,
      protectedInstances: r.protected_instances,
      standbyInstances: r.standby_instances,
    },
  };
}

/** Named groups (flags, then dockinit.yaml) or none (discover). */
export function chooseGroups(flags: RolloutFlags, config: RolloutSettings): Pick<RolloutRequest, "groups" | "groupsFrom"> {
  if (flags.autoScalingGroup && flags.autoScalingGroup.length > 0) return { groups: [...new Set(flags.autoScalingGroup)], groupsFrom: "--auto-scaling-group" };
  if (config.autoScalingGroups.length > 0) return { groups: config.autoScalingGroups, groupsFrom: "rollout.auto_scaling_groups" };
  return { groups: [], groupsFrom: "discovered" };
}

// ── Text ──────────────────────────────────────────────────────────────

const VERSION_FROM: Record<VersionChoice["from"], string> = { push: "the version push just made", "--version": "from --version", default: "the template's default version" };
const GROUPS_FROM: Record<RolloutRequest["groupsFrom"], string> = {
  "--auto-scaling-group": "named by --auto-scaling-group",
  "rollout.auto_scaling_groups": "named in rollout.auto_scaling_groups",
  discovered: "every group that uses the template (confirm, or --yes)",
};

const row = (label: string, value: string) => `${`${label}:`.padEnd(17)}${value}\n`;

/** The plan as people read it: what, where, which groups, every preference beside AWS's default. */
export function planText(plan: RolloutPlan, dryRun: boolean): string {
  let out = row("launch template", `${plan.templateName} (${plan.templateId}) in ${plan.region}`);
  out += row("version", `${plan.version} (${VERSION_FROM[plan.versionFrom]}); instances launched from it get the new user-data`);
  out += row("groups", `${plan.groups.length}, ${GROUPS_FROM[plan.groupsFrom]}`);
  const width = Math.max(...plan.groups.map((g) => g.name.length), 4);
  for (const g of plan.groups) {
    const rollback = g.autoRollback ? "auto rollback: on" : g.noRollbackReason ? `no automatic rollback: ${g.noRollbackReason}` : "auto rollback: off";
    out += `  ${g.name.padEnd(width)}  ${g.instances} instance${g.instances === 1 ? "" : "s"}, now version ${g.currentVersions.join("/")}; ${rollback}\n`;
    if (g.pinned) out += `  ${" ".repeat(width)}  after success AWS pins it to version ${plan.version} (it follows ${g.currentVersions.filter((v) => v.startsWith("$")).join("/")} until then)\n`;
    for (const w of g.warnings) out += `  ${" ".repeat(width)}  warning: ${w}\n`;
  }
  out += "preferences (AWS's own default in brackets):\n";
  const keyWidth = Math.max(...plan.settings.map((s) => s.key.length));
  for (const s of plan.settings) out += `  ${s.key.padEnd(keyWidth)}  ${s.value} [${s.awsDefault}]\n`;
  for (const n of plan.notes) out += `note: ${n}\n`;
  if (dryRun) out += "dry run: nothing started\n";
  return out;
}

function progressLine(p: RefreshProgress): string {
  const pct = p.percentage !== undefined ? ` ${p.percentage}%` : "";
  const left = p.instancesToUpdate !== undefined ? `, ${p.instancesToUpdate} instance${p.instancesToUpdate === 1 ? "" : "s"} to replace` : "";
  const reason = p.reason ? `: ${p.reason}` : "";
  return `${p.group}: ${p.status}${pct}${left}${reason}`;
}

const followHint = (s: StartedRefresh) =>
  `  follow: aws autoscaling describe-instance-refreshes --auto-scaling-group-name ${s.group} --instance-refresh-ids ${s.id}\n  cancel: dockinit rollout --cancel --auto-scaling-group ${s.group}\n`;

/**
 * Progress: one live line on a terminal (rewritten in place), one plain line
 * per change otherwise, one JSON line per change with --json.
 */
class ProgressView {
  private readonly last = new Map<string, string>();
  private live = false;
  constructor(
    private readonly io: CliIO,
    private readonly mode: "tty" | "lines" | "json",
  ) {}

  update(progress: RefreshProgress[]): void {
    if (this.mode === "tty") {
      this.io.stdout(`\r\x1b[K${progress.map(progressLine).join(" | ")}`);
      this.live = true;
      return;
    }
    for (const p of progress) {
      const key = JSON.stringify(p);
      if (this.last.get(p.group) === key) continue;
      this.last.set(p.group, key);
      this.io.stdout(this.mode === "json" ? `${JSON.stringify({ event: "progress", ...p })}\n` : `${progressLine(p)}\n`);
    }
  }

  /** End the live line; on a terminal, leave each group's final state as a line of its own. */
  finish(progress: RefreshProgress[]): void {
    if (!this.live) return;
    this.io.stdout("\r\x1b[K");
    for (const p of progress) this.io.stdout(`${progressLine(p)}\n`);
    this.live = false;
  }
}

// ── Running it ────────────────────────────────────────────────────────

export interface RolloutRun {
  flags: RolloutFlags;
  loaded: LoadResult;
  templateName: string;
  version: VersionChoice;
  /** push --rollout --dry-run: the version does not exist yet. */
  dryRun: boolean;
  /** JSON lines (push --rollout --json prints its own result as one first). */
  json: boolean;
}

type Aws = { lt: typeof import("../aws/launch-template.js"); ro: typeof import("../aws/rollout.js") };

async function loadAws(): Promise<Aws> {
  // The SDK warns on every run that its 2027 releases need Node 22; users of dockinit cannot act on that.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const [lt, ro] = await Promise.all([import("../aws/launch-template.js"), import("../aws/rollout.js")]);
  return { lt, ro };
}

function clients(aws: Aws, io: CliIO, flags: RolloutFlags, loaded: LoadResult) {
  const region = loaded.model?.launchTemplate?.region;
  const ec2Settings: Ec2ClientSettings = aws.lt.resolveEc2ClientSettings({ region: flags.region, profile: flags.profile }, io.env, region);
  const asgSettings = aws.ro.resolveAutoScalingClientSettings({ region: flags.region, profile: flags.profile }, io.env, region);
  announceRegion(io, asgSettings, loaded.file, region);
  const ec2 = aws.lt.createEc2Client(ec2Settings);
  const asg = aws.ro.createAutoScalingClient(asgSettings);
  return {
    ec2,
    asg,
    settings: asgSettings,
    destroy() {
      ec2.destroy();
      asg.destroy();
    },
  };
}

function reportFailure(io: CliIO, asJson: boolean, failure: AwsFailure, settings: Ec2ClientSettings, extra: Record<string, unknown> = {}): number {
  const regionNote = failure.kind === "not-found" && settings.regionSource !== "sdk" ? ` (region from ${settings.regionSource})` : "";
  io.stderr(`dockinit: ${failure.message}${regionNote}\n`);
  if (asJson) io.stdout(`${JSON.stringify({ event: "result", ok: false, error: failure, ...extra })}\n`);
  return EXIT.aws;
}

/** Ask on a terminal; without one, --yes is required. Returns the exit code to stop with, or undefined to go on. */
async function confirm(io: CliIO, flags: RolloutFlags, question: string, what: string): Promise<number | undefined> {
  if (flags.yes) return undefined;
  // The answer comes from stdin; the question is seen on whichever of stderr and stdout is a terminal.
  if (canConfirm(io) && io.ask) {
    const answer = (await io.ask(`${question} [y/N] `)).trim().toLowerCase();
    if (answer === "y" || answer === "yes") return undefined;
    io.stderr("dockinit: not confirmed; nothing started\n");
    return EXIT.invalid;
  }
  io.stderr(`dockinit: ${what}; ${noConfirmation(io)}: pass --yes (or name the groups with --auto-scaling-group); nothing started\n`);
  return EXIT.usage;
}

/** Plan, confirm, start, wait. Returns the exit code. */
export async function runRollout(io: CliIO, run: RolloutRun): Promise<number> {
  const config = run.loaded.model!.rollout;
  const merged = mergePreferences(config, run.flags);
  if ("error" in merged) {
    io.stderr(`dockinit: ${merged.error}\n`);
    return EXIT.usage;
  }
  let preferences = merged.preferences;
  let raised: string[] = [];
  // --verify, else rollout.verify.
  const verifying = run.flags.verify ?? config.verify;
  if (verifying && run.flags.wait === false) {
    io.stderr("dockinit: --verify checks the new instances while it waits: it cannot go with --no-wait; nothing started\n");
    return EXIT.usage;
  }
  if (verifying) {
    const v = verifyPreferences(preferences);
    if ("error" in v) {
      io.stderr(`dockinit: ${v.error}; nothing started\n`);
      return EXIT.usage;
    }
    preferences = v.preferences;
    raised = v.raised;
  }
  const request: RolloutRequest = { templateName: run.templateName, version: run.version, ...chooseGroups(run.flags, config), preferences };
  const aws = await loadAws();
  const c = clients(aws, io, run.flags, run.loaded);
  try {
    const facts = await aws.ro.gatherRolloutFacts(c.ec2, c.asg, request);
    if (!facts.ok) return reportFailure(io, run.json, facts.failure, c.settings);
    const plan = aws.ro.planRollout(request, facts.facts);
    if (verifying) plan.notes.push(verifyNote(raised));
    // A group that does not exist is a typo to fix, not a plan to read: the error alone.
    const missingGroup = plan.problems.some((p) => p.kind === "group-not-found");
    if (run.json) io.stdout(`${JSON.stringify({ event: "plan", dryRun: run.dryRun, ...plan })}\n`);
    else if (!missingGroup) io.stdout(planText(plan, run.dryRun && plan.problems.length === 0));

    if (plan.problems.length > 0) {
      for (const p of plan.problems) io.stderr(`dockinit: ${p.message}\n`);
      io.stderr("dockinit: nothing started\n");
      // What AWS says is not there or busy is exit 3; a plan refused on its merits, 1.
      const fromAws = plan.problems.some((p) => p.kind === "group-not-found" || p.kind === "in-progress");
      if (run.json) io.stdout(`${JSON.stringify({ event: "result", ok: false, problems: plan.problems })}\n`);
      return fromAws ? EXIT.aws : EXIT.invalid;
    }
    if (run.dryRun) {
      if (run.json) io.stdout(`${JSON.stringify({ event: "result", ok: true, dryRun: true })}\n`);
      return EXIT.ok;
    }
    if (plan.needsConfirmation) {
      const names = plan.groups.map((g) => g.name).join(", ");
      const stop = await confirm(
        io,
        run.flags,
        `Start an instance refresh of ${plan.groups.length} group${plan.groups.length === 1 ? "" : "s"} (${names}) to version ${plan.version}?`,
        `${plan.groups.length} group${plan.groups.length === 1 ? "" : "s"} use${plan.groups.length === 1 ? "s" : ""} ${plan.templateName}: ${names}`,
      );
      if (stop !== undefined) {
        if (run.json) io.stdout(`${JSON.stringify({ event: "result", ok: false, confirmed: false })}\n`);
        return stop;
      }
    }

    // From the first start on, Ctrl-C stops only the waiting: a rollout cut
    // between two StartInstanceRefresh calls would leave some groups started
    // and no word of which. So the starts finish, then it stops (exit 130).
    // --verify: the bundle the rolled-out version carries, known before anything starts.
    let guard: ((p: RefreshProgress[]) => Promise<"stop" | undefined>) | undefined;
    let ssm: { destroy(): void } | undefined;
    if (verifying) {
      // Our modules only: the SDK is required by them (a bare import() of a package fails in the code-cached binary).
      const v = await import("../aws/verify.js");
      let expected: string | undefined;
      try {
        expected = await v.versionBundleId(c.ec2, plan.templateId, plan.version);
      } catch (err) {
        return reportFailure(io, run.json, aws.lt.describeAwsError(err, { operation: "DescribeLaunchTemplateVersions", templateName: plan.templateName, region: plan.region, version: String(plan.version), command: "rollout" }), c.settings);
      }
      if (!expected) {
        io.stderr(`dockinit: --verify: ${plan.templateName} version ${plan.version} carries no dockinit bundle id (no BUNDLE_ID line in its UserData), so no instance could be found in place on it; nothing started\n`);
        return EXIT.invalid;
      }
      const client = v.createSsmClient(v.resolveSsmClientSettings({ region: run.flags.region, profile: run.flags.profile }, io.env, run.loaded.model?.launchTemplate?.region));
      ssm = client;
      guard = verifyGuard(io, { ec2: c.ec2, asg: c.asg, ssm: client, ro: aws.ro, v, ...(run.flags.pollInterval ? { firstPollMs: run.flags.pollInterval * 1000 } : {}) }, plan, expected, run.json);
    }
    const interrupt = new AbortController();
    const release = io.onInterrupt?.(() => interrupt.abort()) ?? (() => undefined);
    try {
      return await startAndWait(io, run, aws, c.asg, plan, interrupt.signal, guard);
    } finally {
      release();
      ssm?.destroy();
    }
  } finally {
    c.destroy();
  }
}

type Guard = (p: RefreshProgress[]) => Promise<"stop" | undefined>;

async function startAndWait(io: CliIO, run: RolloutRun, aws: Aws, asg: AutoScalingClient, plan: RolloutPlan, interrupted: AbortSignal, guard?: Guard): Promise<number> {
  const start = await aws.ro.startRefreshes(asg, plan);
  for (const s of start.started) {
    if (run.json) io.stdout(`${JSON.stringify({ event: "started", ...s })}\n`);
    else io.stdout(`started: ${s.group} refresh ${s.id}\n`);
  }
  if (!start.ok) {
    // InstanceRefreshInProgress also comes when the describe just before
    // showed none (a refresh started meanwhile, or not yet listed): the way
    // out is the same, with or without its id.
    const cancel = `dockinit rollout --cancel --auto-scaling-group ${start.group}`;
    const running = start.inProgress
      ? `; it is ${start.inProgress.status} as ${start.inProgress.id}: wait for it, or cancel it with ${cancel}`
      : start.failure.code === "InstanceRefreshInProgress"
        ? `; another refresh started meanwhile: wait for it, or cancel it with ${cancel}`
        : "";
    io.stderr(`dockinit: could not start the refresh of ${start.group}: ${start.failure.message}${running}\n`);
    const notStarted = plan.groups.map((g) => g.name).filter((n) => !start.started.some((s) => s.group === n));
    if (start.started.length > 0) {
      io.stderr(`dockinit: started (and still running): ${start.started.map((s) => `${s.group} (${s.id})`).join(", ")}; not started: ${notStarted.join(", ")}\n`);
      for (const s of start.started) io.stderr(followHint(s));
    } else io.stderr("dockinit: nothing started\n");
    if (run.json) io.stdout(`${JSON.stringify({ event: "result", ok: false, error: start.failure, group: start.group, started: start.started, notStarted })}\n`);
    return EXIT.aws;
  }
  if (run.flags.wait === false) {
    if (!run.json) for (const s of start.started) io.stdout(followHint(s));
    else io.stdout(`${JSON.stringify({ event: "result", ok: true, waited: false, started: start.started })}\n`);
    // Ctrl-C while the starts finished: they are running; say so by the exit code.
    return interrupted.aborted ? EXIT.interrupted : EXIT.ok;
  }
  return await wait(io, run, aws, asg, plan, start.started, interrupted, guard);
}

async function wait(io: CliIO, run: RolloutRun, aws: Aws, asg: AutoScalingClient, plan: RolloutPlan, started: StartedRefresh[], interrupted: AbortSignal, guard?: Guard): Promise<number> {
  const view = new ProgressView(io, run.json ? "json" : io.stdoutIsTTY ? "tty" : "lines");
  // An abort that came while starting ends the wait before its first poll.
  const result = await aws.ro.waitForRefreshes(asg, started, plan.region, {
    pollMs: (run.flags.pollInterval ?? DEFAULT_POLL_SECONDS) * 1000,
    signal: interrupted,
    onPoll: (p) => view.update(p),
    ...(guard ? { guard } : {}),
  });
  view.finish(result.progress);
  const emit = (value: Record<string, unknown>) => run.json && io.stdout(`${JSON.stringify({ event: "result", ...value, progress: result.progress })}\n`);
  switch (result.outcome) {
    case "successful": {
      if (!run.json) {
        io.stdout(`rolled out ${plan.templateName} version ${plan.version} to ${started.map((s) => s.group).join(", ")}\n`);
        for (const g of plan.groups) {
          if (g.previousVersion !== undefined && g.previousVersion !== plan.version) {
            io.stdout(`the way back for ${g.name}: dockinit rollout --version ${g.previousVersion} --auto-scaling-group ${g.name}\n`);
          }
        }
      }
      emit({ ok: true });
      return EXIT.ok;
    }
    case "failed": {
      for (const p of result.progress.filter((x) => !aws.ro.SUCCEEDED.has(x.status))) {
        io.stderr(`dockinit: the refresh of ${p.group} (${p.id}) ended ${p.status}${p.reason ? `: ${p.reason}` : ""}\n`);
      }
      emit({ ok: false });
      return EXIT.invalid;
    }
    case "guarded": {
      io.stderr("dockinit: --verify found a new instance not in place (above); the refresh is rolled back or cancelled as said\n");
      emit({ ok: false, verified: false });
      return EXIT.invalid;
    }
    case "interrupted": {
      io.stderr(`dockinit: stopped waiting; the refreshes go on${guard ? " unguarded: no new instance is verified from now on" : ""}:\n`);
      for (const s of started) io.stderr(followHint(s));
      emit({ ok: false, interrupted: true });
      return EXIT.interrupted;
    }
    case "aws-error": {
      io.stderr(`dockinit: ${result.failure.message}\ndockinit: stopped waiting; the refreshes go on:\n`);
      for (const s of started) io.stderr(followHint(s));
      emit({ ok: false, error: result.failure });
      return EXIT.aws;
    }
  }
}

/** --cancel / --rollback with --dry-run: what would be asked of Auto Scaling, nothing sent. */
function dryRunStop(io: CliIO, action: "cancel" | "rollback", groups: string[], flags: RolloutFlags): number {
  const verb = action === "cancel" ? "CancelInstanceRefresh" : "RollbackInstanceRefresh";
  for (const g of groups) io.stdout(flags.json ? `${JSON.stringify({ event: action, group: g, dryRun: true })}\n` : `dry run: would call ${verb} for ${g}; nothing changed\n`);
  return EXIT.ok;
}

/** --cancel / --rollback. */
export async function runStop(io: CliIO, action: "cancel" | "rollback", flags: RolloutFlags, loaded: LoadResult, templateName: string | undefined): Promise<number> {
  const config = loaded.model!.rollout;
  const chosen = chooseGroups(flags, config);
  const aws = await loadAws();
  const c = clients(aws, io, flags, loaded);
  try {
    let groups = chosen.groups;
    let region: string;
    if (groups.length === 0) {
      if (!templateName) {
        io.stderr(`dockinit: which groups? pass --auto-scaling-group NAME, set rollout.auto_scaling_groups, or name the launch template (--launch-template) to find its groups\n`);
        return EXIT.usage;
      }
      const found = await aws.ro.findGroupsUsing(c.ec2, c.asg, templateName);
      if (!found.ok) return reportFailure(io, Boolean(flags.json), found.failure, c.settings);
      region = found.region;
      if (found.groups.length === 0) {
        io.stderr(`dockinit: no Auto Scaling group in ${region} uses launch template ${templateName}\n`);
        return EXIT.invalid;
      }
      // Found, not named: only the groups with a refresh running have one to stop.
      const running = await aws.ro.groupsWithActiveRefresh(c.asg, found.groups, region);
      if (!running.ok) return reportFailure(io, Boolean(flags.json), running.failure, c.settings);
      groups = running.groups;
      if (groups.length === 0) {
        io.stderr(`dockinit: no group that uses ${templateName} (${found.groups.join(", ")}) has an instance refresh in progress; nothing to ${action === "cancel" ? "cancel" : "roll back"}\n`);
        return EXIT.ok;
      }
      if (flags.dryRun) return dryRunStop(io, action, groups, flags);
      const verb = action === "cancel" ? "Cancel the instance refresh" : "Roll back the instance refresh";
      const stop = await confirm(io, flags, `${verb} of ${groups.join(", ")}?`, `${groups.length} group${groups.length === 1 ? "" : "s"} use ${templateName}: ${groups.join(", ")}`);
      if (stop !== undefined) return stop;
    } else {
      const r = await aws.ro.clientRegion(c.asg);
      if (!r.ok) return reportFailure(io, Boolean(flags.json), r.failure, c.settings);
      region = r.region;
    }
    if (flags.dryRun) return dryRunStop(io, action, groups, flags);
    const results = await aws.ro.stopRefreshes(c.asg, action, groups, region);
    for (const r of results) io.stdout(flags.json ? `${JSON.stringify({ event: action, ...r })}\n` : stopLine(action, r));
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) io.stderr(`dockinit: ${r.failure!.message}${stopHint(action, r)}\n`);
    return failed.length > 0 ? EXIT.aws : EXIT.ok;
  } finally {
    c.destroy();
  }
}

function stopLine(action: "cancel" | "rollback", r: GroupActionResult): string {
  if (!r.ok) return "";
  if (action === "cancel") return `cancelling: ${r.group} refresh ${r.id}; instances already replaced stay replaced\n`;
  return (
    `rolling back: ${r.group} refresh ${r.id}; AWS replaces the new instances with the group's previous configuration\n` +
    `  after a refresh has succeeded --rollback cannot undo it: the way back is dockinit rollout --version <previous> --auto-scaling-group ${r.group}\n`
  );
}

function stopHint(action: "cancel" | "rollback", r: GroupActionResult): string {
  if (r.failure?.code !== "ActiveInstanceRefreshNotFound") return "";
  return action === "rollback"
    ? `; --rollback undoes a refresh while it runs. After one has succeeded, the way back is dockinit rollout --version <previous> --auto-scaling-group ${r.group} (the version the group ran before; rollout printed it as "the way back")`
    : "";
}

export function registerRolloutCommand(
  program: Command,
  io: CliIO,
  setExit: (code: number) => void,
  prepare: (opts: { config?: string; json?: boolean; launchTemplate?: string }, needsTemplate: boolean) => { loaded: LoadResult; templateName?: string } | undefined,
  parseVersionSelector: (text: string) => string,
): void {
  const cmd = configFileOptions(
    program
      .command("rollout")
      .description("start an Auto Scaling instance refresh of the groups that use the launch template, pinned to a numbered version, and wait for it"),
  )
    .option("--launch-template <name>", "launch template name (default: launch_template.name)")
    .option("--version <version>", "version to roll out: a number, $Default or $Latest, resolved to its number (default: the default version)", parseVersionSelector)
    .option("--min-healthy <percent>", "MinHealthyPercentage (default: rollout.min_healthy_percentage)", parseWholeNumber("--min-healthy"))
    .option("--warmup <seconds>", "InstanceWarmup (default: rollout.instance_warmup)", parseWholeNumber("--warmup"))
    .option("--checkpoints <list>", "checkpoint percentages, e.g. 20,50,100, or none (default: rollout.checkpoints)", parseCheckpoints)
    .option("--no-auto-rollback", "never ask AWS to roll back a failed refresh (default: rollout.auto_rollback)")
    .option("--dry-run", "print the plan; start nothing")
    .option("--cancel", "cancel the refresh in progress (CancelInstanceRefresh)")
    .option("--rollback", "roll back the refresh in progress (RollbackInstanceRefresh)")
    .option("--region <region>", REGION_HELP)
    .option("--profile <name>", "AWS profile (default: AWS_PROFILE)")
    .option("--json", "JSON lines on stdout: plan, started, progress, result");
  rolloutOptions(cmd).action(async (positional: string | undefined, opts: RolloutFlags & { config?: string; launchTemplate?: string; version?: string; cancel?: boolean; rollback?: boolean }, command: Command) => {
    if (!takeConfigArgument(io, positional, opts)) return setExit(EXIT.usage);
    // --no-x options default to true; only an explicit flag overrides dockinit.yaml.
    const flags: RolloutFlags = {
      ...opts,
      autoRollback: command.getOptionValueSource("autoRollback") === "cli" ? false : undefined,
      wait: command.getOptionValueSource("wait") === "cli" ? false : undefined,
    };
    if (opts.cancel && opts.rollback) {
      io.stderr("dockinit: --cancel and --rollback exclude each other\n");
      return setExit(EXIT.usage);
    }
    const stopping = opts.cancel ? "cancel" : opts.rollback ? "rollback" : undefined;
    // The emergency stop of named groups needs no bundle, no template and no
    // config: it works from any folder (with the region from --region or the
    // environment). Given a config, it still takes its region from it.
    if (stopping && opts.autoScalingGroup && opts.autoScalingGroup.length > 0) {
      // Nothing is rendered: a config that does not validate (or is over
      // budget) must not stand between a user and stopping a bad rollout.
      let loaded = configGiven(opts, io) ? pickConfig(opts, io) : loadDefaultConfig();
      if (!loaded.model) {
        io.stderr(`dockinit: warning: ${loaded.file} does not validate (\`dockinit check\` says why); stopping without its settings (its region too)\n`);
        loaded = loadDefaultConfig();
      }
      return setExit(await runStop(io, stopping, flags, loaded, opts.launchTemplate ?? loaded.model?.launchTemplate?.name));
    }
    if (stopping && !configGiven(opts, io)) {
      io.stderr(`dockinit: which groups? pass --auto-scaling-group NAME (no dockinit.yaml needed to stop a refresh); nothing sent to AWS\n`);
      return setExit(EXIT.usage);
    }
    // --cancel/--rollback of named groups need no template; everything else does.
    const prepared = prepare(opts, stopping === undefined);
    if (!prepared) return;
    if (stopping) return setExit(await runStop(io, stopping, flags, prepared.loaded, prepared.templateName));
    const version: VersionChoice = opts.version ? { from: "--version", selector: opts.version } : { from: "default" };
    setExit(await runRollout(io, { flags, loaded: prepared.loaded, templateName: prepared.templateName!, version, dryRun: Boolean(opts.dryRun), json: Boolean(opts.json) }));
  });
}
