// `dockinit verify`: flags, the report (a table on a terminal, one line per
// instance on a pipe, JSON), the exit code. Nothing here imports the AWS SDK:
// ../aws/verify.js (the only module that loads @aws-sdk/client-ssm) is
// import()ed when verify runs.
import { InvalidArgumentError, type Command } from "commander";
import type { LoadResult } from "../api.js";
import type { Bundle } from "../bundle/render-bundle.js";
import type { InstanceReport, VerifyReport } from "../aws/verify.js";
import { parsePollInterval } from "./rollout-commands.js";
import { announceRegion, configFileOptions, EXIT, json, REGION_HELP, takeConfigArgument, type CliIO } from "./io.js";

/** Two minutes: SSM delivers to an online agent in seconds; a host's status takes under one. */
export const DEFAULT_TIMEOUT_SECONDS = 120;

interface VerifyFlags {
  config?: string;
  json?: boolean;
  launchTemplate?: string;
  autoScalingGroup?: string[];
  instanceIds?: string[];
  document?: string;
  timeout?: number;
  pollInterval?: number;
  region?: string;
  profile?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function parseInstanceIds(text: string, previous: string[] = []): string[] {
  const ids = text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length === 0) throw new InvalidArgumentError("give instance ids separated by commas, e.g. i-0123456789abcdef0,i-0fedcba9876543210");
  const bad = ids.find((id) => !/^(i-[0-9a-f]{8}|i-[0-9a-f]{17}|mi-[0-9a-f]{17})$/.test(id));
  if (bad) throw new InvalidArgumentError(`${JSON.stringify(bad)} is not an instance id (i-0123456789abcdef0)`);
  return [...previous, ...ids];
}

export function parseDocumentName(text: string): string {
  const t = text.trim();
  // SSM's document name pattern (or its ARN).
  if (!/^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:document\/)?[a-zA-Z0-9_.-]{3,128}$/.test(t)) throw new InvalidArgumentError("an SSM document name: 3 to 128 of a-z A-Z 0-9 _ - . (or its ARN)");
  return t;
}

export function parseTimeout(text: string): number {
  const n = Number(text.trim());
  if (!Number.isFinite(n) || n < 1 || n > 3600) throw new InvalidArgumentError("seconds between 1 and 3600");
  return n;
}

const VERDICT_WORDS: Record<InstanceReport["verdict"], string> = {
  "in-place": "in place",
  drifted: "drifted",
  "another-bundle": "another bundle",
  unreachable: "unreachable",
  failed: "failed",
};

export function summaryLine(r: VerifyReport): string {
  const n = r.instances.length;
  if (n === 0) return "no instances to verify: nothing is known to be in place";
  const parts = (Object.keys(VERDICT_WORDS) as InstanceReport["verdict"][]).filter((v) => r.counts[v] > 0).map((v) => `${r.counts[v]} ${VERDICT_WORDS[v]}`);
  return `${n} instance${n === 1 ? "" : "s"}: ${parts.join(", ")}${r.ok ? "" : "; not every instance is in place on its expected bundle"}`;
}

const from = (i: InstanceReport) => (i.launchedFrom !== undefined ? `v${i.launchedFrom}` : "-");

/** A terminal: one row per instance under a header, the columns aligned. */
export function reportTable(r: VerifyReport): string {
  const rows = [["INSTANCE", "GROUP", "FROM", "VERDICT", "DETAIL"], ...r.instances.map((i) => [i.instanceId, i.group ?? "-", from(i), VERDICT_WORDS[i.verdict], i.detail])];
  const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => (c < 4 ? cell.padEnd(widths[c]!) : cell)).join("  ").trimEnd()).join("\n") + "\n";
}

/** A pipe: one line per instance, the verdict as one word (grep/awk). */
export function reportLines(r: VerifyReport): string {
  return r.instances.map((i) => `${i.instanceId} ${i.verdict} group=${i.group ?? "-"} from=${from(i)} ${i.detail}\n`).join("");
}

export function registerVerifyCommand(
  program: Command,
  io: CliIO,
  setExit: (code: number) => void,
  prepare: (opts: VerifyFlags) => { loaded: LoadResult; bundle: Bundle; templateName?: string } | undefined,
): void {
  configFileOptions(program.command("verify").description("ask each instance (SSM Run Command) whether its firewall is in place on the expected bundle; exit 0 only when every one is"))
    .option("--launch-template <name>", "launch template name (default: launch_template.name)")
    .option("--auto-scaling-group <name>", "a group whose InService instances to ask (repeat for more; default: every group that uses the launch template)", collect)
    .option("--instance-ids <ids>", "ask exactly these instances (comma-separated), compared with this configuration's bundle", parseInstanceIds)
    .option("--document <name>", "run this SSM Command document (no parameters; the README gives one that runs only the status) instead of AWS-RunShellScript")
    .option("--timeout <seconds>", `how long to wait for the answers (default ${DEFAULT_TIMEOUT_SECONDS})`, parseTimeout)
    .option("--poll-interval <seconds>", "seconds before the first look at the answers; it grows to 10 between looks (default 2)", parsePollInterval)
    .option("--region <region>", REGION_HELP)
    .option("--profile <name>", "AWS profile (default: AWS_PROFILE)")
    .option("--json", "machine-readable output on stdout")
    .action(async (positional: string | undefined, opts: VerifyFlags) => {
      if (!takeConfigArgument(io, positional, opts)) return setExit(EXIT.usage);
      if (opts.document !== undefined) {
        try {
          opts.document = parseDocumentName(opts.document);
        } catch (err) {
          io.stderr(`dockinit: --document: ${(err as Error).message}\n`);
          return setExit(EXIT.usage);
        }
      }
      const groups = [...new Set(opts.autoScalingGroup ?? [])];
      const instanceIds = opts.instanceIds ?? [];
      if (groups.length > 0 && instanceIds.length > 0) {
        io.stderr("dockinit: --auto-scaling-group and --instance-ids exclude each other: verify a group's instances, or named ones\n");
        return setExit(EXIT.usage);
      }
      const prepared = prepare(opts);
      if (!prepared) return;
      const { loaded, bundle, templateName } = prepared;
      if (groups.length === 0 && instanceIds.length === 0 && !templateName) {
        io.stderr("dockinit: which instances? pass --auto-scaling-group NAME, --instance-ids i-..., or name the launch template (--launch-template or launch_template.name) to find its groups\n");
        return setExit(EXIT.usage);
      }
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
      // bundle-id.js loads node:crypto and node:zlib: not at every start either.
      const [lt, ro, v, { renderedBundleId }] = await Promise.all([import("../aws/launch-template.js"), import("../aws/rollout.js"), import("../aws/verify.js"), import("../bundle/bundle-id.js")]);
      const region = loaded.model?.launchTemplate?.region;
      const flags = { region: opts.region, profile: opts.profile };
      const ssmSettings = v.resolveSsmClientSettings(flags, io.env, region);
      announceRegion(io, ssmSettings, loaded.file, region);
      const ec2 = lt.createEc2Client(lt.resolveEc2ClientSettings(flags, io.env, region));
      const asg = ro.createAutoScalingClient(ro.resolveAutoScalingClientSettings(flags, io.env, region));
      const ssm = v.createSsmClient(ssmSettings);
      try {
        const timeout = opts.timeout ?? DEFAULT_TIMEOUT_SECONDS;
        if (!opts.json) io.stderr(`dockinit: asking via SSM (${opts.document ?? v.RUN_SHELL_SCRIPT}); waiting up to ${timeout} s for the answers\n`);
        const result = await v.verifyFleet({ ec2, asg, ssm }, { templateName, groups, instanceIds, configBundle: renderedBundleId(bundle), document: opts.document, timeoutMs: timeout * 1000, ...(opts.pollInterval ? { firstPollMs: opts.pollInterval * 1000 } : {}) });
        if (!result.ok) {
          const regionNote = result.failure.kind === "not-found" && ssmSettings.regionSource !== "sdk" ? ` (region from ${ssmSettings.regionSource})` : "";
          io.stderr(`dockinit: ${result.failure.message}${regionNote}\n`);
          if (opts.json) io.stdout(json({ ok: false, error: result.failure }));
          return setExit(EXIT.aws);
        }
        const r = result.report;
        if (opts.json) io.stdout(json(r));
        else {
          io.stdout(io.stdoutIsTTY ? reportTable(r) : reportLines(r));
          for (const n of r.notes) io.stderr(`dockinit: note: ${n}\n`);
          io.stderr(`dockinit: ${summaryLine(r)}\n`);
        }
        setExit(r.ok ? EXIT.ok : EXIT.invalid);
      } finally {
        ec2.destroy();
        asg.destroy();
        ssm.destroy();
      }
    });
}
