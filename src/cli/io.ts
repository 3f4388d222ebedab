// What every command shares: the process I/O the CLI is handed, the exit
// codes, and loading the configuration with its diagnostics printed. Its own
// module so main.ts (the program) and the command modules it registers
// (aws-commands.ts, rollout-commands.ts) import it instead of each other.
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { resolve } from "node:path";
import { directoryReader, loadConfig, loadConfigBytes, loadDefaultConfig, type LoadResult } from "../api.js";
import { diagnostic, type Diagnostic } from "../config/errors.js";
import { formatDiagnostic } from "../config/format.js";

export interface CliIO {
  stdout: (text: string | Uint8Array) => void;
  stderr: (text: string) => void;
  cwd: string;
  env: Record<string, string | undefined>;
  /** Whether stderr is a terminal (colour only then, and never with NO_COLOR). */
  stderrIsTTY?: boolean;
  /** Whether stdout is a terminal: `rollout` then shows its progress as one live line. */
  stdoutIsTTY?: boolean;
  /** Whether stdin is a terminal: only then does `rollout` ask for a confirmation. */
  stdinIsTTY?: boolean;
  /** Ask a question on the terminal and return the answer ("" when the user gives up, e.g. Ctrl-C). */
  ask?: (question: string) => Promise<string>;
  /** Read all of standard input (for `-c -`); without it, `-c -` is a usage error. */
  readStdin?: () => Buffer;
  /** Call `handler` on Ctrl-C (SIGINT) until the returned function is called; without it, Ctrl-C ends the process as usual. */
  onInterrupt?: (handler: () => void) => () => void;
}

/** 0 ok, 1 invalid configuration or a failed check (diff: differs), 2 usage (diff: any trouble), 3 AWS, 130 interrupted (SIGINT). */
export const EXIT = { ok: 0, invalid: 1, differs: 1, usage: 2, aws: 3, interrupted: 130 } as const;

export interface ConfigOpts {
  config?: string;
  json?: boolean;
}

/** The name a configuration read from standard input (`-c -`) is shown under. */
export const STDIN_NAME = "<stdin>";

export function resolveIn(io: CliIO, p: string): string {
  return resolve(io.cwd, p);
}

/** The CliIOs whose standard input held the configuration: no confirmation can be read from it. */
const stdinTaken = new WeakSet<CliIO>();

/** Whether a question can be asked and answered: stdin a terminal not already read for `-c -`, and stderr or stdout one too. */
export const canConfirm = (io: CliIO): boolean => Boolean(io.stdinIsTTY && !stdinTaken.has(io) && (io.stderrIsTTY || io.stdoutIsTTY) && io.ask);

/** Why no confirmation can be asked, in words, for the refusal that says to pass --yes. */
export const noConfirmation = (io: CliIO): string => (stdinTaken.has(io) ? "standard input held the configuration (-c -), so nothing can be confirmed on it" : "without a terminal to confirm on");

/** A configuration file as every command that takes one accepts it: `FILE` or `-c FILE` (`-` for standard input). */
export const configFileOptions = (cmd: Command): Command =>
  cmd.argument("[config]", "configuration file (same as -c)").option("-c, --config <file>", "configuration file (default ./dockinit.yaml; - reads standard input)");

/**
 * `dockinit check my.yaml` and `dockinit check -c my.yaml` are the same; both,
 * naming different files, are a usage error, as in git or terraform: said
 * here, and false returned (the caller exits 2).
 */
export function takeConfigArgument(io: CliIO, positional: string | undefined, opts: ConfigOpts): boolean {
  if (positional === undefined) return true;
  if (opts.config !== undefined && opts.config !== positional) {
    io.stderr(`dockinit: two configuration files given (${positional} and -c ${opts.config}); give one\n`);
    return false;
  }
  opts.config = positional;
  return true;
}

/** The file the user keeps their configuration in, looked for in the current folder. */
const LOCAL_CONFIG = "dockinit.yaml";

/** Whether the user has a configuration: given with -c (or as FILE), or ./dockinit.yaml. */
export const configGiven = (opts: ConfigOpts, io: CliIO): boolean => opts.config !== undefined || existsSync(resolve(io.cwd, LOCAL_CONFIG));

/**
 * The configuration a command works on: -c FILE (`-` for standard input),
 * else ./dockinit.yaml, else — for render, check and explain only
 * (`allowDefault`) — the built-in default, said so on stderr. The AWS
 * commands never fall back to it: a launch template must not be replaced by
 * a default nobody wrote; they get undefined, and a line saying so is printed.
 */
export function pickConfig(opts: ConfigOpts, io: CliIO): LoadResult;
export function pickConfig(opts: ConfigOpts, io: CliIO, allowDefault: false, command: string): LoadResult | undefined;
export function pickConfig(opts: ConfigOpts, io: CliIO, allowDefault = true, command = ""): LoadResult | undefined {
  if (opts.config === "-") return loadStdin(io);
  if (opts.config) return loadConfigAs(resolveIn(io, opts.config), opts.config);
  const local = resolve(io.cwd, LOCAL_CONFIG);
  if (existsSync(local)) return loadConfigAs(local, LOCAL_CONFIG);
  if (!allowDefault) {
    io.stderr(
      `dockinit: no dockinit.yaml here, and ${command} never acts on the built-in default; nothing sent to AWS. ` +
        "Write one with `dockinit init` (then `dockinit check`), or pass -c FILE\n",
    );
    return undefined;
  }
  io.stderr("dockinit: no dockinit.yaml here; using the built-in default (VPC DNS + the ephemeral-port fix). Run `dockinit init` to write one.\n");
  return loadDefaultConfig();
}

/** `-c -`: the configuration from standard input; `source:` paths resolve from the current folder. */
function loadStdin(io: CliIO): LoadResult {
  const failed = (d: Diagnostic): LoadResult => ({ diagnostics: [{ ...d, file: STDIN_NAME }], file: STDIN_NAME, source: "" });
  if (!io.readStdin) return failed(diagnostic("DI005", "cannot read the configuration from standard input here"));
  stdinTaken.add(io);
  // A terminal: the user may not know dockinit waits for them.
  if (io.stdinIsTTY) io.stderr("dockinit: reading the configuration from standard input (end it with Ctrl-D)\n");
  let bytes: Buffer;
  try {
    bytes = io.readStdin();
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    return failed(diagnostic("DI005", `cannot read standard input (${why})`));
  }
  if (bytes.length === 0) return failed(diagnostic("DI005", "standard input is empty", [], "pipe the configuration in, e.g. `dockinit check -c - < dockinit.yaml`"));
  // As loadConfig does for a file's bytes: the size, then strict UTF-8.
  return loadConfigBytes(bytes, { file: STDIN_NAME, what: "standard input", files: directoryReader(io.cwd) });
}

function loadConfigAs(path: string, shown: string): LoadResult {
  const r = loadConfig(path);
  return { ...r, file: shown, diagnostics: r.diagnostics.map((d) => ({ ...d, file: d.file === path ? shown : d.file })) };
}

export function printDiagnostics(io: CliIO, diags: Diagnostic[], source: string): void {
  if (diags.length === 0) return;
  const color = io.env.NO_COLOR === undefined && Boolean(io.stderrIsTTY);
  for (const d of diags) io.stderr(`${formatDiagnostic(d, source, { color })}\n`);
  const errors = diags.filter((d) => d.severity === "error").length;
  const warnings = diags.length - errors;
  io.stderr(`${errors} error${errors === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}\n`);
}

/** 16384 → "16,384" (toLocaleString would load ICU data: milliseconds at start-up). */
export const thousands = (n: number) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");

export const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** The words for a file-system error a user can act on; undefined for anything else (a bug, shown as one). */
export function fileFailure(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = {
    ENOENT: "a folder on the way does not exist",
    ENOTDIR: "a part of the path is a file, not a folder",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only file system",
    ENOSPC: "no space left on the device",
    EISDIR: "it is a folder",
    EEXIST: "something is in the way",
    EXDEV: "the temporary folder is on another device",
    ENAMETOOLONG: "the name is too long",
    ELOOP: "too many symbolic links",
    EBUSY: "it is busy (a mount point?)",
    ENOTEMPTY: "a folder in the way is not empty",
  };
  return code && words[code] ? `${words[code]} (${code})` : undefined;
}

/** --region's help: the order resolveEc2ClientSettings applies. */
export const REGION_HELP = "AWS region (default: launch_template.region, then AWS_REGION, then the profile's)";

const announced = new WeakSet<CliIO>();

/** Where each region source is set, in words. */
const REGION_FROM: Record<string, (file: string) => string> = {
  "--region": () => "from --region",
  "launch_template.region": (file) => `from launch_template.region in ${file}`,
  AWS_REGION: () => "from AWS_REGION",
};

/**
 * Every AWS command says on stderr which region it works in and why, and
 * warns when AWS_REGION names another one: a template looked for (or made)
 * in the wrong region is the mistake this prevents.
 */
export function announceRegion(io: CliIO, settings: { region?: string; regionSource: string }, file: string, configRegion?: string): void {
  // Once per run: push --rollout resolves it for EC2, then for Auto Scaling.
  if (announced.has(io)) return;
  announced.add(io);
  if (!settings.region) {
    io.stderr("dockinit: region: the AWS profile's (no --region, launch_template.region or AWS_REGION)\n");
    return;
  }
  io.stderr(`dockinit: region ${settings.region} (${REGION_FROM[settings.regionSource]?.(file) ?? settings.regionSource})\n`);
  // The mismatch worth a word: the one a user did not just type. --region is
  // their choice (over the file's region, said); the file's region is theirs
  // too, over a shell's AWS_REGION left from other work (said).
  if (settings.regionSource === "--region") {
    if (configRegion && configRegion !== settings.region) io.stderr(`dockinit: warning: --region ${settings.region} overrides launch_template.region (${configRegion}) in ${file}\n`);
    return;
  }
  const envRegion = io.env.AWS_REGION?.trim();
  if (envRegion && envRegion !== settings.region) {
    io.stderr(`dockinit: warning: AWS_REGION=${envRegion} is not used: launch_template.region comes first (pass --region ${envRegion} to work there)\n`);
  }
}
