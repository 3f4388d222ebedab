// `rollout --verify`: every new instance is asked (as `dockinit verify` asks)
// once it is InService on the version rolled out; the first one not in place
// on that version's bundle rolls the refresh back (else cancels it).
//
// A checkpoint does not hold a refresh by itself: it goes on after
// CheckpointDelay, and the 100 % point has no pause; a refresh can be rolled
// back only until it ends. So --verify needs checkpoints and raises
// CheckpointDelay and BakeTime to at least the verify deadline: each batch is
// checked while the refresh waits at its checkpoint, the last while Baking.
// Nothing here imports the AWS SDK (types only); the modules come in `deps`.
import type { AutoScalingClient } from "@aws-sdk/client-auto-scaling";
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { SSMClient } from "@aws-sdk/client-ssm";
import type { RefreshProgress, RolloutPlan, RolloutPreferences } from "../aws/rollout.js";
import type { InstanceReport } from "../aws/verify.js";
import type { CliIO } from "./io.js";

/** How long one new instance may take to answer (its agent coming online included). */
export const VERIFY_SECONDS = 120;

/** The preferences --verify needs: checkpoints (else an error), and the pauses at least VERIFY_SECONDS. */
export function verifyPreferences(p: RolloutPreferences): { preferences: RolloutPreferences; raised: string[] } | { error: string } {
  if (p.checkpoints.length === 0) {
    return {
      error:
        "--verify needs checkpoints (--checkpoints 20,50,100 or rollout.checkpoints): without a pause nothing holds the refresh while its new instances are checked, and a finished refresh cannot be rolled back",
    };
  }
  const raised: string[] = [];
  const checkpointDelay = Math.max(p.checkpointDelay, VERIFY_SECONDS);
  const bakeTime = Math.max(p.bakeTime, VERIFY_SECONDS);
  if (checkpointDelay !== p.checkpointDelay) raised.push(`checkpoint_delay ${p.checkpointDelay} -> ${checkpointDelay} s`);
  if (bakeTime !== p.bakeTime) raised.push(`bake_time ${p.bakeTime} -> ${bakeTime} s`);
  return { preferences: { ...p, checkpointDelay, bakeTime }, raised };
}

/** The plan's words for it. */
export const verifyNote = (raised: string[]) =>
  `--verify: each new instance is asked through SSM (dockinit-firewall status --json) once InService on this version, within ${VERIFY_SECONDS} s, while the refresh waits at its checkpoint (the last batch while Baking); the first not in place rolls the refresh back (else cancels it)${raised.length > 0 ? `; raised for it: ${raised.join(", ")}` : ""}`;

export interface GuardDeps {
  ec2: EC2Client;
  asg: AutoScalingClient;
  ssm: SSMClient;
  ro: typeof import("../aws/rollout.js");
  v: typeof import("../aws/verify.js");
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  firstPollMs?: number;
}

/** Agents that are not online yet (a new instance's may take a minute): asked again until their deadline. */
const notYetReachable = (r: InstanceReport) => r.verdict === "unreachable" && /^(not managed by SSM|SSM agent )/.test(r.detail);

/**
 * The guard waitForRefreshes calls after each poll. `expected`: the bundle id
 * in the rolled-out version's UserData.
 */
export function verifyGuard(io: CliIO, deps: GuardDeps, plan: RolloutPlan, expected: string, asJson: boolean): (progress: RefreshProgress[]) => Promise<"stop" | undefined> {
  const now = deps.now ?? (() => Date.now());
  const verified = new Set<string>();
  const firstSeen = new Map<string, number>();
  const say = (event: Record<string, unknown>, text: string) => (asJson ? io.stdout(`${JSON.stringify({ event: "verify", ...event })}\n`) : io.stderr(`dockinit: ${text}\n`));
  return async (progress) => {
    const moving = progress.filter((p) => !deps.ro.FAILED.has(p.status)).map((p) => p.group);
    if (moving.length === 0) return undefined;
    let groups;
    try {
      groups = await deps.ro.describeGroups(deps.asg, { region: plan.region }, moving);
    } catch (err) {
      say({ ok: false, error: String((err as Error).message) }, `warning: --verify could not list the new instances (${(err as Error).message}); trying again at the next poll`);
      return undefined;
    }
    const candidates: { id: string; group: string }[] = [];
    for (const g of groups) {
      for (const i of g.Instances ?? []) {
        if (!i.InstanceId || i.LifecycleState !== "InService" || i.LaunchTemplate?.Version !== String(plan.version) || verified.has(i.InstanceId)) continue;
        if (!firstSeen.has(i.InstanceId)) firstSeen.set(i.InstanceId, now());
        candidates.push({ id: i.InstanceId, group: g.AutoScalingGroupName ?? "" });
      }
    }
    if (candidates.length === 0) return undefined;
    const result = await deps.v.verifyFleet(
      { ec2: deps.ec2, asg: deps.asg, ssm: deps.ssm },
      {
        templateName: plan.templateName,
        groups: [],
        instanceIds: candidates.map((c) => c.id),
        configBundle: expected,
        timeoutMs: VERIFY_SECONDS * 1000,
        ...(deps.now ? { now: deps.now } : {}),
        ...(deps.sleep ? { sleep: deps.sleep } : {}),
        ...(deps.firstPollMs ? { firstPollMs: deps.firstPollMs } : {}),
      },
    );
    if (!result.ok) {
      say({ ok: false, error: result.failure }, `warning: --verify: ${result.failure.message}; trying again at the next poll`);
      return undefined;
    }
    const groupOf = new Map(candidates.map((c) => [c.id, c.group]));
    const bad: InstanceReport[] = [];
    for (const r of result.report.instances) {
      const group = groupOf.get(r.instanceId) ?? "";
      if (r.verdict === "in-place") {
        verified.add(r.instanceId);
        say({ ok: true, group, instanceId: r.instanceId, verdict: r.verdict }, `verified: ${r.instanceId} (${group}) in place: ${r.detail}`);
      } else if (notYetReachable(r) && now() - firstSeen.get(r.instanceId)! < VERIFY_SECONDS * 1000) {
        continue; // its agent may still be starting: next poll
      } else bad.push({ ...r, group });
    }
    if (bad.length === 0) return undefined;
    for (const r of bad) say({ ok: false, group: r.group, instanceId: r.instanceId, verdict: r.verdict, detail: r.detail }, `${r.instanceId} (${r.group}) is not in place: ${r.verdict}: ${r.detail}`);
    const failedGroups = [...new Set(bad.map((r) => r.group!))];
    const rolled = await deps.ro.stopRefreshes(deps.asg, "rollback", failedGroups, plan.region);
    for (const r of rolled) {
      if (r.ok) {
        say({ action: "rollback", group: r.group, id: r.id }, `rolling back the refresh of ${r.group} (${r.id}): AWS replaces the new instances with the previous configuration`);
        continue;
      }
      // Not reversible (a $Default/$Latest group, say): cancelling at least stops it spreading.
      const [cancelled] = await deps.ro.stopRefreshes(deps.asg, "cancel", [r.group], plan.region);
      if (cancelled?.ok) say({ action: "cancel", group: r.group, id: cancelled.id, why: r.failure?.message }, `cannot roll back ${r.group} (${r.failure?.message}); cancelled its refresh (${cancelled.id}): instances already replaced stay replaced`);
      else say({ action: "none", group: r.group, error: cancelled?.failure?.message }, `could neither roll back nor cancel the refresh of ${r.group}: ${cancelled?.failure?.message ?? r.failure?.message}`);
    }
    return "stop";
  };
}
