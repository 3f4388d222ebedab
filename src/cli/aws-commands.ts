// `dockinit diff` and `dockinit push`: the two commands that talk to EC2.
//
// The AWS SDK is heavy, and `render`/`check` must not pay for it: this file
// imports nothing from it, and each action loads ../aws/launch-template.js
// (which imports @aws-sdk/client-ec2) with a dynamic import() only when it runs.
// Like the rest of src/cli, this layer prints; the module below it only returns data.
import { InvalidArgumentError, type Command } from "commander";
import { renderBundle, type LoadResult } from "../api.js";
import type { Bundle } from "../bundle/render-bundle.js";
import { hasErrors } from "../config/errors.js";
import type { AwsFailure, DiffOutcome, Ec2ClientSettings, PushOutcome } from "../aws/launch-template.js";
import { announceRegion, canConfirm, configFileOptions, noConfirmation, EXIT, json, pickConfig, printDiagnostics, REGION_HELP, takeConfigArgument, thousands, type CliIO } from "./io.js";
import { chooseGroups, mergePreferences, registerRolloutCommand, rolloutOptions, runRollout, type RolloutFlags } from "./rollout-commands.js";
import { verifyPreferences } from "./rollout-verify.js";
import { registerVerifyCommand } from "./verify-commands.js";

interface AwsOpts {
  config?: string;
  json?: boolean;
  launchTemplate?: string;
  region?: string;
  profile?: string;
}

interface DiffOpts extends AwsOpts {
  version?: string;
}

interface PushOpts extends AwsOpts, Pick<RolloutFlags, "autoScalingGroup" | "yes" | "pollInterval" | "verify"> {
  sourceVersion?: string;
  rollout?: boolean;
  /** undefined: neither --set-default nor --no-set-default (dockinit.yaml decides). */
  setDefault?: boolean;
  dryRun?: boolean;
  create?: boolean;
}

/**
 * "$Latest", "$Default" or a version number. `latest`/`default` (without the
 * dollar) are accepted too, because an unquoted `$Latest` is expanded away by
 * the shell before dockinit sees it.
 */
export function parseVersionSelector(text: string): string {
  const t = text.trim();
  if (/^\$?latest$/i.test(t)) return "$Latest";
  if (/^\$?default$/i.test(t)) return "$Default";
  if (/^[1-9][0-9]{0,8}$/.test(t)) return t;
  throw new InvalidArgumentError(
    t === "" ? "empty version; quote '$Latest' and '$Default' so the shell leaves them alone" : "use $Latest, $Default or a version number (quote the $ forms in the shell)",
  );
}

/** 6861 → "6,861 bytes", without toLocaleString (which loads ICU data). */
const bytesText = (n: number) => `${thousands(n)} bytes`;

/** The SDK warns on every run that its 2027 releases need Node 22; users of dockinit cannot act on that. */
function quietSdkNodeVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
}

export function registerAwsCommands(program: Command, io: CliIO, setExit: (code: number) => void): void {
  // `diff --version 3` must reach diff, not the program's own --version: with
  // positional options, program options count only before the subcommand.
  program.enablePositionalOptions();

  const awsOptions = (cmd: Command) =>
    configFileOptions(cmd)
      .option("--launch-template <name>", "launch template name (default: launch_template.name)")
      .option("--region <region>", REGION_HELP)
      .option("--profile <name>", "AWS profile (default: AWS_PROFILE)")
      .option("--json", "machine-readable output on stdout");

  /**
   * Load, validate and render; prints diagnostics. Undefined (exit code set)
   * when it cannot go on: no config file (never the built-in default here),
   * an invalid one (`invalidExit`: diff says 2, as diff(1) does for trouble),
   * or no template name.
   */
  function prepare(command: string, opts: AwsOpts): { loaded: LoadResult; bundle: Bundle; templateName: string } | undefined;
  function prepare(command: string, opts: AwsOpts, needsTemplate: boolean, invalidExit?: number): { loaded: LoadResult; bundle: Bundle; templateName?: string } | undefined;
  function prepare(command: string, opts: AwsOpts, needsTemplate = true, invalidExit: number = EXIT.invalid): { loaded: LoadResult; bundle: Bundle; templateName?: string } | undefined {
    const loaded = pickConfig(opts, io, false, command);
    if (!loaded) {
      if (opts.json) io.stdout(json({ ok: false, error: { kind: "no-config", message: "no dockinit.yaml; nothing sent to AWS" } }));
      setExit(EXIT.usage);
      return undefined;
    }
    const rendered = renderBundle(loaded);
    const ok = !hasErrors(rendered.diagnostics) && rendered.bundle !== undefined;
    if (!opts.json || !ok) printDiagnostics(io, rendered.diagnostics, loaded.source);
    if (!ok || !rendered.bundle) {
      // A bad file never reaches EC2: not a diff, not a version.
      if (opts.json) io.stdout(json({ ok: false, file: loaded.file, diagnostics: rendered.diagnostics }));
      setExit(invalidExit);
      return undefined;
    }
    const templateName = opts.launchTemplate ?? loaded.model?.launchTemplate?.name;
    if (!templateName && needsTemplate) {
      io.stderr("dockinit: no launch template: pass --launch-template NAME or set launch_template.name in dockinit.yaml\n");
      setExit(EXIT.usage);
      return undefined;
    }
    return { loaded, bundle: rendered.bundle, templateName };
  }

  const awsSettings = (aws: typeof import("../aws/launch-template.js"), opts: AwsOpts, loaded: LoadResult): Ec2ClientSettings => {
    const settings = aws.resolveEc2ClientSettings({ region: opts.region, profile: opts.profile }, io.env, loaded.model?.launchTemplate?.region);
    announceRegion(io, settings, loaded.file, loaded.model?.launchTemplate?.region);
    return settings;
  };

  const reportFailure = (opts: AwsOpts, settings: Ec2ClientSettings, failure: AwsFailure, extra: Record<string, unknown> = {}) => {
    // "Not found" is often the wrong region: say which setting chose it.
    const regionNote = failure.kind === "not-found" && settings.regionSource !== "sdk" ? ` (region from ${settings.regionSource})` : "";
    io.stderr(`dockinit: ${failure.message}${regionNote}\n`);
    if (opts.json) io.stdout(json({ ok: false, error: failure, ...extra }));
    setExit(EXIT.aws);
  };

  /** The positional config and -c agree, else exit 2: true when the command may go on. */
  const configArgumentOk = (positional: string | undefined, opts: AwsOpts) => {
    if (takeConfigArgument(io, positional, opts)) return true;
    setExit(EXIT.usage);
    return false;
  };

  awsOptions(program.command("diff").description("show how the rendered user-data differs from a launch template version; exit 0 same, 1 differs, 2 trouble, 3 AWS error"))
    .option("--version <version>", "template version to compare: $Latest, $Default or a number (default: launch_template.source_version, i.e. what push compares)", parseVersionSelector)
    .action(async (positional: string | undefined, opts: DiffOpts) => {
      if (!configArgumentOk(positional, opts)) return;
      const prepared = prepare("diff", opts, true, EXIT.usage);
      if (!prepared) return;
      const { loaded, bundle, templateName } = prepared;
      quietSdkNodeVersionWarning();
      const aws = await import("../aws/launch-template.js");
      const settings = awsSettings(aws, opts, loaded);
      const client = aws.createEc2Client(settings);
      try {
        const result = await aws.diffTemplate(client, {
          templateName: templateName!,
          version: opts.version ?? loaded.model?.launchTemplate?.sourceVersion ?? "$Latest",
          userData: bundle.userData,
          renderedLabel: loaded.file,
        });
        if (!result.ok) return reportFailure(opts, settings, result.failure);
        const d = result.outcome;
        if (opts.json) io.stdout(json({ ok: true, ...d }));
        else {
          io.stdout(d.patch);
          io.stderr(`${diffSummary(d)}\n`);
        }
        // As diff(1) and `git diff --exit-code`: 1 means "differs", nothing else.
        setExit(d.equal ? EXIT.ok : EXIT.differs);
      } finally {
        client.destroy();
      }
    });

  const push = awsOptions(program.command("push").description("upload the user-data as a new launch template version (only UserData changes)"))
    .option("--source-version <version>", "version the new one is based on: $Latest, $Default or a number (default: launch_template.source_version)", parseVersionSelector)
    .option("--set-default", "make the new version the template's default (default: launch_template.set_default)")
    .option("--no-set-default", "leave the default version alone even if dockinit.yaml says set_default: true")
    .option("--dry-run", "ask EC2 whether the push would succeed (DryRun) and print the plan; change nothing")
    .option("--create", "create the launch template, with this user-data as version 1, when it does not exist")
    .option("--rollout", "then start an Auto Scaling instance refresh to the version just made (see `dockinit rollout`)");
  rolloutOptions(push).action(async (positional: string | undefined, opts: PushOpts, command: Command) => {
    if (!configArgumentOk(positional, opts)) return;
    const prepared = prepare("push", opts);
    if (!prepared) return;
    const { loaded, bundle, templateName } = prepared;
    const lt = loaded.model?.launchTemplate;
    // push --rollout to groups it would find and confirm: without a terminal
    // to confirm on, refuse before the push, not after a version was made.
    if (opts.rollout && !opts.dryRun && !opts.yes && loaded.model && chooseGroups({ autoScalingGroup: opts.autoScalingGroup }, loaded.model.rollout).groups.length === 0 && !canConfirm(io)) {
      io.stderr(`dockinit: push --rollout would roll out to every group that uses the template; ${noConfirmation(io)}: pass --yes (or name the groups with --auto-scaling-group); nothing pushed\n`);
      return setExit(EXIT.usage);
    }
    // push --rollout --verify that rollout would refuse: refused before the push, not after a version was made.
    if (opts.rollout && (opts.verify ?? loaded.model?.rollout.verify) && loaded.model) {
      const merged = mergePreferences(loaded.model.rollout, {});
      const checked = "error" in merged ? merged : verifyPreferences(merged.preferences);
      if ("error" in checked) {
        io.stderr(`dockinit: ${checked.error}; nothing pushed\n`);
        return setExit(EXIT.usage);
      }
    }
    quietSdkNodeVersionWarning();
    const aws = await import("../aws/launch-template.js");
    const settings = awsSettings(aws, opts, loaded);
    const client = aws.createEc2Client(settings);
    try {
      const result = await aws.pushUserData(client, {
        templateName,
        sourceVersion: opts.sourceVersion ?? lt?.sourceVersion ?? "$Latest",
        userData: bundle.userData,
        bundleName: bundle.manifest.name,
        setDefault: opts.setDefault ?? lt?.setDefault ?? false,
        dryRun: Boolean(opts.dryRun),
        create: Boolean(opts.create),
      });
      if (!result.ok) {
        const completed = result.completed ? { completed: result.completed } : {};
        if (!(opts.rollout && opts.json)) return reportFailure(opts, settings, result.failure, completed);
        // push --rollout --json speaks JSON lines, the failure included.
        reportFailure({ ...opts, json: false }, settings, result.failure);
        io.stdout(`${JSON.stringify({ event: "push", ok: false, error: result.failure, ...completed })}\n`);
        return;
      }
      if (!opts.rollout) {
        if (opts.json) io.stdout(json({ ok: true, ...result.outcome }));
        else io.stdout(pushReport(result.outcome));
        return setExit(EXIT.ok);
      }
      // push --rollout: JSON lines throughout (the push result is the first).
      if (opts.json) io.stdout(`${JSON.stringify({ event: "push", ok: true, ...result.outcome })}\n`);
      else io.stdout(pushReport(result.outcome));
      const flags: RolloutFlags = {
        autoScalingGroup: opts.autoScalingGroup,
        yes: opts.yes,
        wait: command.getOptionValueSource("wait") === "cli" ? false : undefined,
        pollInterval: opts.pollInterval,
        verify: opts.verify,
        region: opts.region,
        profile: opts.profile,
        json: opts.json,
      };
      setExit(
        await runRollout(io, {
          flags,
          loaded,
          templateName,
          version: { from: "push", version: result.outcome.version },
          dryRun: Boolean(opts.dryRun),
          json: Boolean(opts.json),
        }),
      );
    } finally {
      client.destroy();
    }
  });

  registerRolloutCommand(program, io, setExit, (opts, needsTemplate) => prepare("rollout", opts, needsTemplate), parseVersionSelector);
  registerVerifyCommand(program, io, setExit, (opts) => prepare("verify", opts, false));
}

function diffSummary(d: DiffOutcome): string {
  const which = `${d.templateName} version ${d.version} (${d.templateId}, ${d.region})`;
  if (d.equal) return `${which} has exactly this user-data (${bytesText(d.rendered.bytes)})`;
  if (d.sameText) {
    const enc = (gzip: boolean) => (gzip ? "gzip" : "plain");
    return `${which} has the same text but different bytes (${enc(d.current.gzip)} ${bytesText(d.current.bytes)} vs ${enc(d.rendered.gzip)} ${bytesText(d.rendered.bytes)}); push would create a version`;
  }
  return `${which} differs from the rendered user-data (${bytesText(d.current.bytes)} -> ${bytesText(d.rendered.bytes)})`;
}

/** The human report: template id, version, default version, bytes. */
export function pushReport(o: PushOutcome): string {
  const row = (label: string, value: string) => `${`${label}:`.padEnd(17)}${value}\n`;
  const where = `${o.templateName}${o.templateId ? ` (${o.templateId})` : ""} in ${o.region}`;
  const from = o.sourceVersion !== undefined ? ` from version ${o.sourceVersion}` : "";
  const before = o.previousDefaultVersion;
  const defaultRow = (unmoved: string) => {
    if (before === undefined || before === o.defaultVersion) return row("default version", unmoved);
    return row("default version", o.dryRun ? `${before} (would become ${o.defaultVersion})` : `${o.defaultVersion} (was ${before})`);
  };
  const userData = row("user-data", `${bytesText(o.bytes)}, sha256 ${o.sha256}`);
  switch (o.action) {
    case "created-template":
      return row("launch template", `${where} (created)`) + row("created version", String(o.version)) + row("default version", String(o.defaultVersion)) + userData;
    case "would-create-template":
      return row("launch template", `${where} (does not exist)`) + row("dry run", "EC2 says creating it with this user-data as version 1 would succeed; nothing changed") + userData;
    case "created-version":
      return row("launch template", where) + row("created version", `${o.version}${from}`) + defaultRow(`${o.defaultVersion} (unchanged; --set-default moves it)`) + userData;
    case "would-create-version":
      return (
        row("launch template", where) +
        row("dry run", `EC2 says creating version ${o.version}${from} would succeed; nothing changed`) +
        defaultRow(`${o.defaultVersion} (would stay)`) +
        userData
      );
    case "unchanged":
      return row("launch template", where) + row("unchanged", `version ${o.version} already has this user-data; nothing created`) + defaultRow(String(o.defaultVersion)) + userData;
  }
}
