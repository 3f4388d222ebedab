// What every command shares: the process I/O the CLI is handed, the exit
// codes, and loading the configuration with its diagnostics printed. Its own
// module so main.ts (the program) and the command modules it registers
// (aws-commands.ts, rollout-commands.ts) import it instead of each other.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadConfig, loadDefaultConfig, type LoadResult } from "../api.js";
import type { Diagnostic } from "../config/errors.js";
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
  /** Call `handler` on Ctrl-C (SIGINT) until the returned function is called; without it, Ctrl-C ends the process as usual. */
  onInterrupt?: (handler: () => void) => () => void;
}

/** 0 ok, 1 invalid configuration or a failed check, 2 usage, 3 AWS, 130 interrupted (SIGINT). */
export const EXIT = { ok: 0, invalid: 1, usage: 2, aws: 3, interrupted: 130 } as const;

export interface ConfigOpts {
  config?: string;
  json?: boolean;
}

export function resolveIn(io: CliIO, p: string): string {
  return resolve(io.cwd, p);
}

export function pickConfig(opts: ConfigOpts, io: CliIO): LoadResult {
  if (opts.config) return loadConfigAs(resolveIn(io, opts.config), opts.config);
  const local = resolve(io.cwd, "dockinit.yaml");
  if (existsSync(local)) return loadConfigAs(local, "dockinit.yaml");
  io.stderr("dockinit: no dockinit.yaml here; using the built-in default (VPC DNS + the ephemeral-port fix). Run `dockinit init` to write one.\n");
  return loadDefaultConfig();
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
