// Small process helpers for the system-test harness.
//
// Why not execFile/execa directly: every command here must be bounded in time,
// must be killable as a whole process group (a `sh -c` or `nsenter` wrapper must
// not leave its children behind), and must never outlive the test run. So each
// child is spawned in its own process group, tracked in a registry, and killed
// on timeout, on `killAllTracked()` (call it from afterAll) and on process exit.
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";

/** Outcome of a finished command. Never thrown unless `check` was asked for. */
export interface ExecResult {
  /** argv as run (after any nsenter prefix), for error messages. */
  cmd: string[];
  stdout: string;
  stderr: string;
  /** Exit code, or null when the process died from a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when we killed it because `timeoutMs` elapsed. */
  timedOut: boolean;
  durationMs: number;
}

export interface RunOptions {
  /** Kill the process group after this long (default 30 s). */
  timeoutMs?: number;
  /** Written to stdin, then stdin is closed. Without it stdin is /dev/null. */
  input?: string;
  /** Throw a CommandError unless the command exits 0 in time. */
  check?: boolean;
  /** Run inside the named network namespace (see nsArgv). */
  netns?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Stop early (SIGTERM the group) as soon as this returns true for the stdout
   * collected so far; the result then counts as finished, not timed out.
   * For clients that would otherwise linger (a UDP socat waiting out -t).
   */
  until?: (stdout: string) => boolean;
}

/** Thrown by `check: true` runs; carries the full result for diagnostics. */
export class CommandError extends Error {
  constructor(readonly result: ExecResult) {
    super(describeFailure(result));
    this.name = "CommandError";
  }
}

/** One-paragraph description of a failed command (argv, status, output tails). */
export function describeFailure(r: ExecResult): string {
  const status = r.timedOut
    ? `timed out after ${r.durationMs} ms`
    : r.signal
      ? `killed by ${r.signal}`
      : `exit code ${String(r.code)}`;
  const parts = [`command failed (${status}): ${r.cmd.map(shellQuote).join(" ")}`];
  if (r.stderr.trim()) parts.push(`stderr: ${tail(r.stderr, 20)}`);
  if (r.stdout.trim()) parts.push(`stdout: ${tail(r.stdout, 10)}`);
  return parts.join("\n");
}

/** Last `lines` lines of a text (for error messages and log tails). */
export function tail(text: string, lines: number): string {
  const all = text.replace(/\s+$/, "").split("\n");
  return all.slice(Math.max(0, all.length - lines)).join("\n");
}

/** Quote an argument for display only (never passed to a shell). */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Path of the bind-mounted namespace file `ip netns add NAME` creates. */
export function netnsPath(ns: string): string {
  return `/run/netns/${ns}`;
}

/**
 * argv that runs `cmd args` inside network namespace `ns`.
 * Uses nsenter --net only (not `ip netns exec`): `ip netns exec` also unshares
 * the mount namespace and remounts /sys, which hides the cgroup mounts dockerd
 * needs and makes mounts made by the child invisible to us.
 */
export function nsArgv(ns: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ["nsenter", [`--net=${netnsPath(ns)}`, "--", cmd, ...args]];
}

// ---------------------------------------------------------------------------
// Registry of live children, so nothing survives the test process.

const live = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // whole group: we spawned it detached
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if afterAll never ran (crash, worker teardown): synchronous kill.
  process.on("exit", () => {
    for (const child of live) killGroup(child, "SIGKILL");
  });
}

function track(child: ChildProcess): void {
  installExitHook();
  live.add(child);
  child.once("exit", () => live.delete(child));
  child.once("error", () => live.delete(child));
}

/** Kill every child still running that these helpers started (SIGTERM, then SIGKILL). */
export async function killAllTracked(graceMs = 2_000): Promise<void> {
  const children = [...live];
  for (const c of children) killGroup(c, "SIGTERM");
  await Promise.all(children.map((c) => waitExit(c, graceMs)));
  for (const c of children) killGroup(c, "SIGKILL");
  await Promise.all(children.map((c) => waitExit(c, 1_000)));
}

/** What a test set up and must take down: a server or daemon, a temporary directory, a topology. */
export type Disposable = { stop(): Promise<void> } | { cleanup(): void } | { destroy(): Promise<void> };

/**
 * A suite's teardown: each part in the order given (servers before the
 * daemon, the topology last), skipping what never started, then every child
 * process still tracked.
 */
export async function tearDown(...parts: (Disposable | Disposable[] | undefined)[]): Promise<void> {
  for (const part of parts.flat()) {
    if (part === undefined) continue;
    if ("stop" in part) await part.stop();
    else if ("cleanup" in part) part.cleanup();
    else await part.destroy();
  }
  await killAllTracked();
}

/** Resolves true when `child` has exited (or was never started), false after `ms`. */
export function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off("exit", onExit);
      resolve(false);
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once("exit", onExit);
  });
}

// ---------------------------------------------------------------------------

/**
 * Run a command to completion with a hard timeout. Resolves with stdout,
 * stderr and the exit status; rejects only when `check` is set and it failed,
 * or when the binary cannot be spawned at all.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  const [file, argv] = opts.netns ? nsArgv(opts.netns, cmd, args) : [cmd, [...args]];
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"];
    const child = spawn(file, argv, { stdio, detached: true, env: opts.env ?? process.env, cwd: opts.cwd });
    track(child);
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let stoppedEarly = false;
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (opts.until && !stoppedEarly && opts.until(stdout)) {
        stoppedEarly = true;
        killGroup(child, "SIGTERM");
      }
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => undefined); // EPIPE if it exits early
      child.stdin.end(opts.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGTERM");
      setTimeout(() => killGroup(child, "SIGKILL"), 1_000).unref();
    }, timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = {
        cmd: [file, ...argv],
        stdout,
        stderr,
        code: stoppedEarly ? 0 : code,
        signal: stoppedEarly ? null : signal,
        timedOut,
        durationMs: Date.now() - started,
      };
      if (opts.check && (code !== 0 || timedOut)) reject(new CommandError(result));
      else resolve(result);
    });
  });
}

/** `run` that throws on failure and returns trimmed stdout. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, { ...opts, check: true });
  return r.stdout.trim();
}

/** Run inside a network namespace (nsenter --net). Never throws unless `check`. */
export function runIn(ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  return run(cmd, args, { ...opts, netns: ns });
}

/** `runIn` that throws on failure and returns trimmed stdout. */
export function runInOk(ns: string, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return runOk(cmd, args, { ...opts, netns: ns });
}

/** Run a shell snippet (`sh -c`) inside a namespace; handy for iptables one-liners. */
export function shIn(ns: string, script: string, opts: RunOptions = {}): Promise<ExecResult> {
  return run("sh", ["-c", script], { ...opts, netns: ns });
}

// ---------------------------------------------------------------------------

/** A long-running child (daemon, server) that is killed with its whole group. */
export interface Background {
  child: ChildProcess;
  pid: number;
  /** Output collected so far (only when output was captured, not redirected to a file). */
  output(): string;
  /** True while the process runs. */
  running(): boolean;
  /** SIGTERM the group, wait up to graceMs, then SIGKILL. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  netns?: string;
  env?: NodeJS.ProcessEnv;
  /** File descriptor to send stdout+stderr to (e.g. an opened log file). Default: captured in memory (bounded). */
  logFd?: number;
}

/** Start a background process (tracked, own process group). Throws if it cannot be spawned. */
export async function spawnBackground(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<Background> {
  const [file, argv] = opts.netns ? nsArgv(opts.netns, cmd, args) : [cmd, [...args]];
  const stdio: StdioOptions = opts.logFd === undefined ? ["ignore", "pipe", "pipe"] : ["ignore", opts.logFd, opts.logFd];
  const child = spawn(file, argv, { stdio, detached: true, env: opts.env ?? process.env });
  track(child);
  let out = "";
  const keep = (d: string): void => {
    out += d;
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  child.stdout?.setEncoding("utf8").on("data", keep);
  child.stderr?.setEncoding("utf8").on("data", keep);
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", (err) => reject(new Error(`cannot run ${file}: ${err.message}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`no pid for ${file}`);
  let stopping: Promise<void> | undefined;
  return {
    child,
    pid,
    output: () => out,
    running: () => child.exitCode === null && child.signalCode === null,
    stop(graceMs = 3_000) {
      stopping ??= (async () => {
        killGroup(child, "SIGTERM");
        if (!(await waitExit(child, graceMs))) {
          killGroup(child, "SIGKILL");
          await waitExit(child, 2_000);
        }
      })();
      return stopping;
    },
  };
}

/** Sleep (bounded by definition). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Throw from a waitFor probe to stop waiting at once (e.g. the daemon died). */
export class WaitAborted extends Error {
  override name = "WaitAborted";
}

/**
 * Poll `probe` until it returns a value other than undefined/false, at most
 * `timeoutMs`. Throws with `what` and the last probe error/diagnostic on timeout;
 * a probe throwing WaitAborted ends the wait immediately with that error.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  { timeoutMs = 10_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof WaitAborted) throw new Error(`gave up waiting for ${what}: ${err.message}`);
      lastError = err;
    }
    if (Date.now() + intervalMs > deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms (${attempt + 1} attempts) waiting for ${what}${why}`);
    }
    await sleep(intervalMs);
  }
}
