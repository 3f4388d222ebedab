// Real validators for a rendered dockinit bundle (out/user-data,
// out/manifest.json, out/files/...). Each one runs the tool that will really
// consume the file on the instance (cloud-init 22.4, bash, systemd 252) or
// the closest offline equivalent (shellcheck), and reports instead of
// throwing: `{ ok, output }`, where `output` carries the command line, exit
// status and everything the tool printed, ready for an assertion message:
//
//   const r = shellcheck(path);
//   expect(r.ok, r.output).toBe(true);
//
// Every subprocess is bounded (default 30 s, SIGKILL on expiry). Gate suites
// that use these with `describe.skipIf(skipUnless(VALIDATOR_NEEDS.xxx))`.
//
// Tool behaviour these validators rely on (observed on Debian bookworm:
// cloud-init 22.4.2, ShellCheck 0.9.0, systemd 252):
//
// * `cloud-init schema -c FILE`: exit 1 with "Error:\nCloud config schema
//   errors: ..." on stderr for wrong types (permissions: 0644 -> 420 is not of
//   type 'string'; runcmd: "x" is not of type 'array'), invalid YAML, a
//   non-mapping document, or a file not starting with "#cloud-config" (so a
//   MIME or gzipped user-data can't go through it directly). Unknown top-level
//   keys are accepted. Deprecated keys (e.g. apt_update) exit 0 and print
//   "Cloud config schema deprecations: apt_update: DEPRECATED ..." on stdout;
//   we fail on those unless { allowDeprecations: true }.
// * cloud-init user-data processing: see cloudinit_check.py. A part whose type
//   no default handler takes (text/plain with no known "#..." prefix,
//   text/x-unknown-thing, application/octet-stream; a non-MIME blob without a
//   known prefix becomes text/x-not-multipart) is only logged at boot
//   ("Unhandled unknown content-type" / "Unhandled non-multipart") and
//   dropped: we fail. Gzip is undone first, both for the whole blob and for
//   application/gzip parts.
// * shellcheck: exit 1 on any finding, including "info" ones such as SC2086
//   (unquoted $1); no shebang -> SC2148 (error) unless a shell is forced.
//   SC1091 ("not following" a sourced file) is excluded by default because
//   sourced paths like /etc/dockinit/env exist on the instance, not on the
//   test host.
// * bash -n: exit 2 and "syntax error near unexpected token" on `if then fi`;
//   it knows nothing about quoting. dash -n (sh scripts): exit 2.
// * systemd-analyze verify --root=ROOT: exit 1 with "Command X is not
//   executable: No such file or directory" (missing or non-executable
//   ExecStart, checked inside ROOT, so host binaries like /usr/sbin/iptables
//   are missing too), "Neither a valid executable name nor an absolute path"
//   (relative ExecStart), "Service has no ExecStart=...", a Requires= on a
//   unit that does not exist, or a timer without a valid trigger. Exit 0 with
//   only a warning for: unknown keys ("Unknown key 'X' in section [Service],
//   ignoring"), unparsable values ("Failed to parse service restart specifier,
//   ignoring"), unknown sections, a unit file marked executable — so any
//   output line naming a generated unit or a generated file is a failure too.
//   Executables of *dependency* units are not checked (docker.service's
//   /usr/sbin/dockerd need not exist in ROOT when a generated unit only has
//   After=/Requires=docker.service), a Wants= on a missing unit is silent, a
//   timer whose service does not exist passes, and WantedBy= a nonexistent
//   target passes: the last two are checked here ourselves.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

export interface ValidationResult {
  ok: boolean;
  output: string;
}

/** Commands each validator needs, for `describe.skipIf(skipUnless(...))`. */
export const SYSTEM_PYTHON = "/usr/bin/python3";
export const CLOUD_INIT = "/usr/bin/cloud-init";
export const VALIDATOR_NEEDS: Record<"cloudInit" | "shellcheck" | "bash" | "sh" | "systemd" | "all", string[]> = {
  cloudInit: [SYSTEM_PYTHON, CLOUD_INIT],
  shellcheck: ["shellcheck"],
  bash: ["bash"],
  sh: ["dash"],
  systemd: ["systemd-analyze"],
  all: [SYSTEM_PYTHON, CLOUD_INIT, "shellcheck", "bash", "dash", "systemd-analyze"],
};

/** EC2 rejects user-data larger than 16 KB in raw form (before base64). */
export const EC2_USER_DATA_LIMIT = 16 * 1024;

const DEFAULT_TIMEOUT_MS = 30_000;
const HERE = dirname(fileURLToPath(import.meta.url));
export const CLOUDINIT_CHECK_PY = join(HERE, "cloudinit_check.py");

interface RunOptions {
  input?: Buffer | string;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** "$ cmd args", exit status, stdout and stderr, for assertion messages. */
  transcript: string;
  /** Spawn failure or timeout, already described in transcript. */
  failedToRun: boolean;
}

function quoteArg(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function run(cmd: string, args: string[], opts: RunOptions = {}): RunResult {
  const timeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    input: opts.input,
    encoding: "utf8",
    timeout,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, LC_ALL: "C.UTF-8", SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "cat", ...opts.env },
  });
  const stdout = r.stdout ?? "";
  const stderr = r.stderr ?? "";
  const lines = [`$ ${[cmd, ...args].map(quoteArg).join(" ")}`];
  let failedToRun = false;
  if (r.error) {
    failedToRun = true;
    const code = (r.error as NodeJS.ErrnoException).code;
    lines.push(
      code === "ETIMEDOUT"
        ? `(killed after ${timeout} ms timeout)`
        : `(failed to run: ${r.error.message})`,
    );
  } else if (r.signal) {
    failedToRun = true;
    lines.push(`(killed by ${r.signal})`);
  } else {
    lines.push(`(exit ${r.status})`);
  }
  if (stdout.trim()) lines.push(`stdout:\n${stdout.trimEnd()}`);
  if (stderr.trim()) lines.push(`stderr:\n${stderr.trimEnd()}`);
  return { status: r.status, stdout, stderr, transcript: lines.join("\n"), failedToRun };
}

function isGzip(b: Buffer): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function withTempDir<T>(prefix: string, fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// 1. cloud-init schema (the CLI)

export interface CloudInitSchemaOptions {
  /** Accept deprecated keys (the CLI exits 0 on them). Default false. */
  allowDeprecations?: boolean;
  timeoutMs?: number;
}

/**
 * `/usr/bin/python3 /usr/bin/cloud-init schema -c FILE` on a "#cloud-config"
 * document. Accepts a path, the document text (any string that contains a
 * newline or is not an existing file), or its bytes. Gzipped input is
 * gunzipped first; MIME input fails (the CLI wants "#cloud-config" on line 1).
 */
export function cloudInitSchema(
  userDataPathOrText: string | Buffer,
  opts: CloudInitSchemaOptions = {},
): ValidationResult {
  let content: Buffer | undefined;
  let path: string | undefined;
  if (Buffer.isBuffer(userDataPathOrText)) {
    content = userDataPathOrText;
  } else if (!userDataPathOrText.includes("\n") && existsSync(userDataPathOrText)) {
    const raw = readFileSync(userDataPathOrText);
    if (isGzip(raw)) content = raw;
    else path = userDataPathOrText;
  } else {
    content = Buffer.from(userDataPathOrText, "utf8");
  }
  if (content && isGzip(content)) {
    try {
      content = gunzipSync(content);
    } catch (e) {
      return { ok: false, output: `cloudInitSchema: input looks gzipped but does not gunzip: ${String(e)}` };
    }
  }
  const check = (file: string): ValidationResult => {
    const r = run(SYSTEM_PYTHON, [CLOUD_INIT, "schema", "-c", file], { timeoutMs: opts.timeoutMs });
    const problems: string[] = [];
    if (r.failedToRun || r.status !== 0) problems.push("cloud-init schema rejected the document");
    const depr = /^Cloud config schema deprecations: (.*\S.*)$/m.exec(r.stdout);
    if (depr && !opts.allowDeprecations) problems.push(`deprecated keys: ${depr[1]}`);
    if (r.status === 0 && !/^Valid cloud-config:/m.test(r.stdout)) {
      problems.push('exit 0 but no "Valid cloud-config:" line');
    }
    return { ok: problems.length === 0, output: [...problems, r.transcript].join("\n") };
  };
  if (path !== undefined) return check(path);
  const data = content ?? Buffer.alloc(0);
  return withTempDir("dockinit-schema-", (dir) => {
    const file = join(dir, "user-data.yaml");
    writeFileSync(file, data);
    return check(file);
  });
}

// ---------------------------------------------------------------------------
// 2. cloud-init's own user-data processing (cloudinit_check.py)

export interface UserDataPart {
  /** Content type after cloud-init's processing (e.g. text/cloud-config). */
  contentType: string;
  filename?: string;
  /** Size of the decoded (un-base64'd, gunzipped) payload. */
  bytes: number;
  /** The decoded payload, when it is UTF-8 text. */
  text?: string;
  /** Problems found in this part. */
  errors: string[];
}

export interface CloudInitUserDataResult extends ValidationResult {
  parts: UserDataPart[];
  /**
   * The cloud-config cloud-init ends up with: all text/cloud-config parts
   * loaded with cloud-init's YAML loader and merged by its own
   * CloudConfigPartHandler. undefined when there is no cloud-config part.
   * Non-JSON YAML values appear as {"$bytes_base64"}, {"$timestamp"}, ...
   */
  cloudConfig?: unknown;
  errors: string[];
  /** WARNINGs cloud-init logged while processing (each one fails). */
  warnings: string[];
  deprecations: string[];
}

export interface CloudInitUserDataOptions {
  allowDeprecations?: boolean;
  /** Raw size limit; default EC2_USER_DATA_LIMIT, null disables. */
  maxBytes?: number | null;
  timeoutMs?: number;
}

interface CheckPyOutput {
  ok: boolean;
  errors: string[];
  deprecations: string[];
  warnings: string[];
  parts: Array<{ contentType: string; filename: string | null; bytes: number; text: string | null; errors: string[] }>;
  cloudConfig: unknown;
}

function isCheckPyOutput(v: unknown): v is CheckPyOutput {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.ok === "boolean" &&
    Array.isArray(o.errors) &&
    Array.isArray(o.deprecations) &&
    Array.isArray(o.warnings) &&
    Array.isArray(o.parts)
  );
}

/**
 * Runs the exact bytes EC2 would hand to cloud-init through cloud-init's own
 * code (decomp_gzip -> UserDataProcessor.process -> part walk), validates
 * every cloud-config part against the 22.4 schema (strict) and returns the
 * parts and the merged cloud-config for round-trip assertions.
 */
export function cloudInitUserData(
  rawBytes: Buffer,
  opts: CloudInitUserDataOptions = {},
): CloudInitUserDataResult {
  const r = run(SYSTEM_PYTHON, [CLOUDINIT_CHECK_PY, "-"], { input: rawBytes, timeoutMs: opts.timeoutMs });
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    parsed = undefined;
  }
  if (r.failedToRun || (r.status !== 0 && r.status !== 1) || !isCheckPyOutput(parsed)) {
    return {
      ok: false,
      output: `cloudinit_check.py did not produce a result\n${r.transcript}`,
      parts: [],
      errors: ["cloudinit_check.py failed"],
      warnings: [],
      deprecations: [],
    };
  }
  const errors = [...parsed.errors];
  const maxBytes = opts.maxBytes === undefined ? EC2_USER_DATA_LIMIT : opts.maxBytes;
  const tooBig = maxBytes !== null && rawBytes.length > maxBytes;
  if (tooBig) errors.push(`user-data is ${rawBytes.length} bytes, over the ${maxBytes}-byte EC2 limit`);
  const deprecationsFail = !opts.allowDeprecations && parsed.deprecations.length > 0;
  const ok = parsed.ok && r.status === 0 && !tooBig && !deprecationsFail;
  const parts: UserDataPart[] = parsed.parts.map((p) => ({
    contentType: p.contentType,
    ...(p.filename !== null ? { filename: p.filename } : {}),
    bytes: p.bytes,
    ...(p.text !== null ? { text: p.text } : {}),
    errors: p.errors,
  }));
  const summary = [
    `cloud-init user-data (${rawBytes.length} bytes): ${ok ? "OK" : "INVALID"}`,
    ...parts.map((p, i) => `  part ${i + 1}: ${p.contentType} ${p.filename ?? "-"} ${p.bytes} bytes`),
    ...errors.map((e) => `error: ${e}`),
    ...parsed.warnings.map((w) => `cloud-init logged: ${w}`),
    ...parsed.deprecations.map((d) => `${opts.allowDeprecations ? "deprecated (allowed)" : "deprecated"}: ${d}`),
  ];
  return {
    ok,
    output: summary.join("\n"),
    parts,
    ...(parsed.cloudConfig !== null ? { cloudConfig: parsed.cloudConfig } : {}),
    errors,
    warnings: parsed.warnings,
    deprecations: parsed.deprecations,
  };
}

// ---------------------------------------------------------------------------
// 3. shell scripts

export interface ShellcheckOptions {
  /** Force a dialect (-s); by default the shebang decides. */
  shell?: "bash" | "sh" | "dash" | "ksh";
  /** Codes to exclude; default ["SC1091"]. */
  exclude?: string[];
  timeoutMs?: number;
}

/** `shellcheck -x --norc` (shebang decides the dialect unless `shell` is given). */
export function shellcheck(path: string, opts: ShellcheckOptions = {}): ValidationResult {
  const exclude = opts.exclude ?? ["SC1091"];
  const args = ["-x", "--norc", "--color=never"];
  if (opts.shell) args.push("-s", opts.shell);
  if (exclude.length) args.push("-e", exclude.join(","));
  args.push("--", path);
  const r = run("shellcheck", args, { timeoutMs: opts.timeoutMs });
  return { ok: !r.failedToRun && r.status === 0, output: r.transcript };
}

/** `bash -n`: parse without executing. */
export function bashSyntax(path: string, opts: { timeoutMs?: number } = {}): ValidationResult {
  const r = run("bash", ["-n", path], { timeoutMs: opts.timeoutMs });
  return { ok: !r.failedToRun && r.status === 0 && r.stderr.trim() === "", output: r.transcript };
}

/** `dash -n`, for #!/bin/sh scripts (Debian's /bin/sh). */
export function shSyntax(path: string, opts: { timeoutMs?: number } = {}): ValidationResult {
  const r = run("dash", ["-n", path], { timeoutMs: opts.timeoutMs });
  return { ok: !r.failedToRun && r.status === 0 && r.stderr.trim() === "", output: r.transcript };
}

/** The interpreter a "#!" line names ("bash" for "#!/usr/bin/env bash"), or undefined. */
export function shebangInterpreter(path: string): string | undefined {
  let head: string;
  try {
    head = readFileSync(path).subarray(0, 256).toString("utf8");
  } catch {
    return undefined;
  }
  const m = /^#!\s*(\S+)(?:[ \t]+(\S+))?/.exec(head);
  if (!m || m[1] === undefined) return undefined;
  const prog = basename(m[1]);
  if (prog === "env") {
    if (m[2] === undefined || m[2].startsWith("-")) return undefined;
    return basename(m[2]);
  }
  return prog;
}

// ---------------------------------------------------------------------------
// 4. systemd units

export interface SystemdVerifyOptions {
  /**
   * Modes to apply inside the root, keyed by absolute host path (as in
   * manifest.json: {"/usr/local/sbin/x": "0755"}). Without an entry a file
   * keeps the mode it has under filesDir.
   */
  modes?: Record<string, string>;
  /**
   * Executables the target image provides (e.g. "/usr/bin/docker") that the
   * generated units may call; stubbed into the root unless the bundle ships
   * them. Default none: every executable of a generated unit must be in the
   * bundle.
   */
  systemExecutables?: string[];
  /**
   * Units the target image provides; a stub is written into the root for each
   * one the host does not have. Default docker.service, docker.socket,
   * containerd.service.
   */
  stubUnits?: string[];
  /** Vendor unit directory copied to ROOT/usr/lib/systemd/system. */
  vendorUnitDir?: string;
  timeoutMs?: number;
}

export interface SystemdUnitResult {
  unit: string;
  ok: boolean;
  output: string;
}

export interface SystemdVerifyResult extends ValidationResult {
  units: SystemdUnitResult[];
}

const UNIT_DIRS = ["etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"];
const DEFAULT_STUB_UNITS = ["docker.service", "docker.socket", "containerd.service"];
const EXEC_KEYS = new Set([
  "ExecStart",
  "ExecStartPre",
  "ExecStartPost",
  "ExecStop",
  "ExecStopPost",
  "ExecReload",
  "ExecCondition",
]);

/** Minimal systemd unit-file reader: [{section, key, value}] (continuations joined). */
export function parseUnitFile(text: string): Array<{ section: string; key: string; value: string }> {
  const out: Array<{ section: string; key: string; value: string }> = [];
  let section = "";
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? "").trim();
    while (line.endsWith("\\") && i + 1 < lines.length) {
      line = `${line.slice(0, -1)} ${(lines[++i] ?? "").trim()}`;
    }
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec?.[1] !== undefined) {
      section = sec[1];
      continue;
    }
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

function execPath(value: string): string | undefined {
  const word = value.replace(/^[@\-:+!]+/, "").split(/\s+/)[0];
  return word && word.startsWith("/") ? word : undefined;
}

function unitFileIn(root: string, name: string): string | undefined {
  const candidates = [name];
  const tmpl = /^([^@]+@)[^.]+(\.[a-z]+)$/.exec(name);
  if (tmpl?.[1] !== undefined && tmpl[2] !== undefined) candidates.push(`${tmpl[1]}${tmpl[2]}`);
  for (const dir of UNIT_DIRS) {
    for (const c of candidates) {
      const p = join(root, dir, c);
      if (existsSync(p)) return p;
    }
  }
  return undefined;
}

function walkFiles(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...walkFiles(p));
    else out.push(p);
  }
  return out;
}

function writeStub(root: string, absPath: string, content: string, mode: number): boolean {
  const p = join(root, absPath);
  try {
    lstatSync(p);
    return false; // never replace what the bundle (or vendor tree) has
  } catch {
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, content, { mode });
    chmodSync(p, mode);
    return true;
  }
}

/**
 * `systemd-analyze verify --root=ROOT /etc/systemd/system/NAME` for each unit,
 * in a scratch root holding the host's vendor units (ROOT/usr/lib/systemd/
 * system) and the whole bundle tree (filesDir copied to ROOT, manifest modes
 * applied). A unit fails on a non-zero exit, on any output line naming a
 * generated unit or generated file (systemd only warns, exit 0, for unknown
 * keys and bad values), when a .timer/.path would activate a unit that does
 * not exist, or when [Install] WantedBy=/RequiredBy= names a missing unit.
 *
 * `unitNames` are unit file names ("dockinit-firewall.service"). A name the
 * bundle only ships drop-ins for (docker.service with
 * etc/systemd/system/docker.service.d/*.conf) is verified as the vendor unit
 * plus drop-ins; the executables the *vendor* unit file names (dockerd,
 * /bin/kill) are stubbed in ROOT, those in generated files never are.
 */
export function systemdVerify(
  filesDir: string,
  unitNames: string[],
  opts: SystemdVerifyOptions = {},
): SystemdVerifyResult {
  const absFiles = resolve(filesDir);
  if (!existsSync(absFiles) || !statSync(absFiles).isDirectory()) {
    return { ok: false, output: `systemdVerify: ${filesDir} is not a directory`, units: [] };
  }
  return withTempDir("dockinit-systemd-", (root) => {
    const notes: string[] = [];
    const vendorDir = opts.vendorUnitDir ?? "/lib/systemd/system";
    mkdirSync(join(root, "usr/lib/systemd"), { recursive: true });
    if (existsSync(vendorDir)) {
      cpSync(vendorDir, join(root, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
    } else {
      notes.push(`note: no vendor unit directory ${vendorDir}`);
    }
    // Bundle on top: its files win over vendor ones.
    cpSync(absFiles, root, { recursive: true, verbatimSymlinks: true, force: true });
    for (const [hostPath, mode] of Object.entries(opts.modes ?? {})) {
      const p = join(root, hostPath);
      if (existsSync(p)) chmodSync(p, parseInt(mode, 8));
    }

    // What the bundle generated, for attributing systemd's output lines.
    const generatedFiles = walkFiles(absFiles)
      .map((f) => relative(absFiles, f).split(sep).join("/"))
      .filter((rel) => UNIT_DIRS.some((d) => rel.startsWith(`${d}/`)));
    const isDropin = (rel: string): boolean => /\.d\/[^/]+$/.test(rel);
    const isLink = (rel: string): boolean => /\.(wants|requires|upholds)\//.test(rel);
    const generatedUnitNames = new Set(
      generatedFiles.filter((rel) => !isDropin(rel) && !isLink(rel)).map((rel) => basename(rel)),
    );
    const mentions = new Set<string>([...unitNames, ...generatedUnitNames]);
    for (const rel of generatedFiles) if (isDropin(rel)) mentions.add(rel.split("/").slice(-2).join("/"));
    const escape = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const mentionRe = new RegExp(`(?:^|[\\s/'"])(?:${[...mentions].map(escape).join("|")})(?:$|[\\s:'".,])`);

    for (const u of opts.stubUnits ?? DEFAULT_STUB_UNITS) {
      if (!unitFileIn(root, u)) {
        const body = u.endsWith(".socket")
          ? `[Unit]\nDescription=stub ${u} (dockinit test)\n[Socket]\nListenStream=/run/${u}.sock\n`
          : `[Unit]\nDescription=stub ${u} (dockinit test)\n[Service]\nExecStart=/bin/true\n`;
        writeStub(root, `/usr/lib/systemd/system/${u}`, body, 0o644);
        notes.push(`note: stubbed missing dependency unit ${u}`);
      }
    }
    for (const exe of opts.systemExecutables ?? []) {
      if (writeStub(root, exe, "#!/bin/sh\nexit 0\n", 0o755)) notes.push(`note: stubbed system executable ${exe}`);
    }
    for (const u of unitNames) {
      if (generatedUnitNames.has(u)) continue;
      const vendor = [join(root, "usr/lib/systemd/system", u), join(root, "lib/systemd/system", u)].find((p) =>
        existsSync(p),
      );
      if (!vendor) continue;
      for (const { key, value } of parseUnitFile(readFileSync(vendor, "utf8"))) {
        const exe = EXEC_KEYS.has(key) ? execPath(value) : undefined;
        if (exe && writeStub(root, exe, "#!/bin/sh\nexit 0\n", 0o755)) {
          notes.push(`note: stubbed ${exe} (named by vendor unit ${u})`);
        }
      }
    }

    const units: SystemdUnitResult[] = unitNames.map((unit) => {
      const problems: string[] = [];
      const unitPath = UNIT_DIRS.map((d) => `/${d}/${unit}`).find((p) => existsSync(join(root, p)));
      const target = generatedUnitNames.has(unit) && unitPath ? unitPath : unit;
      const r = run("systemd-analyze", ["verify", `--root=${root}`, target], { timeoutMs: opts.timeoutMs });
      if (r.failedToRun || r.status !== 0) problems.push(`systemd-analyze verify failed for ${unit}`);
      const flagged = `${r.stdout}\n${r.stderr}`
        .split("\n")
        .filter((l) => mentionRe.test(l));
      if (r.status === 0 && flagged.length) {
        problems.push(`systemd-analyze exited 0 but complained about generated units:\n  ${flagged.join("\n  ")}`);
      }
      // Our own checks for what systemd-analyze lets through.
      const file = unitFileIn(root, unit);
      const entries = file ? parseUnitFile(readFileSync(file, "utf8")) : [];
      const dropins = existsSync(join(root, "etc/systemd/system", `${unit}.d`))
        ? readdirSync(join(root, "etc/systemd/system", `${unit}.d`))
            .filter((f) => f.endsWith(".conf"))
            .flatMap((f) => parseUnitFile(readFileSync(join(root, "etc/systemd/system", `${unit}.d`, f), "utf8")))
        : [];
      const all = [...entries, ...dropins];
      const kind = unit.slice(unit.lastIndexOf(".") + 1);
      if (kind === "timer" || kind === "path") {
        const explicit = all.filter((e) => e.section === (kind === "timer" ? "Timer" : "Path") && e.key === "Unit").pop();
        const activated = explicit?.value || `${unit.slice(0, -kind.length - 1)}.service`;
        if (!unitFileIn(root, activated)) problems.push(`${unit} activates ${activated}, which does not exist`);
      }
      for (const e of all) {
        if (e.section !== "Install" || !["WantedBy", "RequiredBy", "UpheldBy", "Also"].includes(e.key)) continue;
        for (const dep of e.value.split(/\s+/).filter(Boolean)) {
          if (!unitFileIn(root, dep)) problems.push(`${unit}: [Install] ${e.key}=${dep}: no such unit`);
        }
      }
      return { unit, ok: problems.length === 0, output: [...problems, r.transcript].join("\n") };
    });
    const ok = units.length > 0 && units.every((u) => u.ok);
    const output = [
      ...notes,
      ...(units.length === 0 ? ["systemdVerify: no units given"] : []),
      ...units.map((u) => `== ${u.unit}: ${u.ok ? "OK" : "FAILED"}\n${u.output}`),
    ].join("\n");
    return { ok, output, units };
  });
}

// ---------------------------------------------------------------------------
// 5. JSON

export function jsonParse(path: string): ValidationResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { ok: false, output: `${path}: cannot read: ${String(e)}` };
  }
  try {
    JSON.parse(text);
    return { ok: true, output: `${path}: valid JSON (${text.length} chars)` };
  } catch (e) {
    return { ok: false, output: `${path}: invalid JSON: ${e instanceof Error ? e.message : String(e)}` };
  }
}

// ---------------------------------------------------------------------------
// 6. the whole bundle

export interface BundleCheck {
  /** Path relative to outDir ("user-data", "files/etc/docker/daemon.json"). */
  file: string;
  validator: string;
  ok: boolean;
  output: string;
}

export interface ValidateBundleOptions {
  allowDeprecations?: boolean;
  systemd?: Pick<SystemdVerifyOptions, "systemExecutables" | "stubUnits" | "timeoutMs">;
  timeoutMs?: number;
}

interface ManifestFile {
  path: string;
  mode?: string;
  owner?: string;
  bytes?: number;
  sha256?: string;
}

/** shellcheck + bash -n / dash -n for a file whose shebang names bash or sh; [] otherwise. */
function scriptChecks(path: string, timeoutMs?: number): Array<ValidationResult & { validator: string }> {
  const interp = shebangInterpreter(path);
  if (interp === "bash") {
    return [
      { validator: "shellcheck", ...shellcheck(path, { timeoutMs }) },
      { validator: "bashSyntax", ...bashSyntax(path, { timeoutMs }) },
    ];
  }
  if (interp === "sh" || interp === "dash") {
    return [
      { validator: "shellcheck", ...shellcheck(path, { timeoutMs }) },
      { validator: "shSyntax", ...shSyntax(path, { timeoutMs }) },
    ];
  }
  return [];
}

const SYSTEMD_UNIT_RE = /^\/etc\/systemd\/system\/[^/]+\.(service|timer|path|socket|mount|target)$/;
const SYSTEMD_DROPIN_RE = /^\/etc\/systemd\/system\/([^/]+)\.d\/[^/]+\.conf$/;

/**
 * Reads outDir/manifest.json and runs every applicable validator on every
 * file: manifest integrity (each listed file exists with the listed size and
 * sha256, nothing unlisted under files/), scripts by shebang (shellcheck +
 * bash -n, or + dash -n for sh; also the text/x-shellscript parts of
 * user-data, reported as "user-data#N(filename)"), systemd units and drop-ins under
 * /etc/systemd/system (systemdVerify with the manifest's modes), *.json
 * (jsonParse), and user-data (cloudInitUserData, plus cloudInitSchema when it
 * is a single cloud-config document). Never throws on a bad bundle: a missing
 * or unreadable manifest is reported as a failed check.
 */
export function validateBundle(outDir: string, opts: ValidateBundleOptions = {}): BundleCheck[] {
  const checks: BundleCheck[] = [];
  const filesDir = join(outDir, "files");
  const add = (file: string, validator: string, r: ValidationResult): void => {
    checks.push({ file, validator, ok: r.ok, output: r.output });
  };

  // user-data
  const udPath = join(outDir, "user-data");
  if (!existsSync(udPath)) {
    add("user-data", "exists", { ok: false, output: `${udPath} is missing` });
  } else {
    const raw = readFileSync(udPath);
    const ud = cloudInitUserData(raw, { allowDeprecations: opts.allowDeprecations, timeoutMs: opts.timeoutMs });
    add("user-data", "cloudInitUserData", ud);
    // Shell-script parts run on the instance too: lint them like files.
    ud.parts.forEach((part, i) => {
      if (!part.contentType.startsWith("text/x-shellscript") || part.text === undefined) return;
      const label = `user-data#${i + 1}(${part.filename ?? "-"})`;
      withTempDir("dockinit-part-", (dir) => {
        const p = join(dir, `part-${i + 1}-${(part.filename ?? "").replace(/[^\w.-]/g, "_")}`);
        writeFileSync(p, part.text ?? "");
        for (const c of scriptChecks(p, opts.timeoutMs)) add(label, c.validator, c);
      });
    });
    let plain: Buffer = raw;
    try {
      if (isGzip(raw)) plain = gunzipSync(raw);
    } catch {
      /* cloudInitUserData reports it */
    }
    if (/^#cloud-config[ \t]*\r?\n/.test(plain.subarray(0, 64).toString("utf8"))) {
      add("user-data", "cloudInitSchema", cloudInitSchema(plain, opts));
    }
  }

  // manifest
  const manifestPath = join(outDir, "manifest.json");
  const mj = jsonParse(manifestPath);
  add("manifest.json", "jsonParse", mj);
  if (!mj.ok) return checks;
  let files: ManifestFile[] = [];
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    const f = (manifest as { files?: unknown }).files;
    if (!Array.isArray(f) || !f.every((x) => typeof x === "object" && x !== null && typeof x.path === "string")) {
      throw new Error('"files" is not an array of {path: string, ...}');
    }
    files = f as ManifestFile[];
  } catch (e) {
    add("manifest.json", "manifest", { ok: false, output: `bad manifest: ${String(e)}` });
    return checks;
  }

  const ud = (manifest as { userData?: { bytes?: unknown; sha256?: unknown } }).userData;
  if (ud && existsSync(udPath)) {
    const raw = readFileSync(udPath);
    const problems: string[] = [];
    if (typeof ud.bytes === "number" && ud.bytes !== raw.length) {
      problems.push(`userData.bytes ${ud.bytes} != ${raw.length}`);
    }
    if (typeof ud.sha256 === "string" && ud.sha256 !== createHash("sha256").update(raw).digest("hex")) {
      problems.push("userData.sha256 does not match user-data");
    }
    add("user-data", "manifest", { ok: problems.length === 0, output: problems.join("\n") || "matches manifest" });
  }

  const modes: Record<string, string> = {};
  const listed = new Set<string>();
  const units = new Set<string>();
  for (const entry of files) {
    const rel = `files${entry.path}`;
    const local = join(outDir, rel);
    listed.add(resolve(local));
    if (entry.mode) modes[entry.path] = entry.mode;
    if (!existsSync(local) || !statSync(local).isFile()) {
      add(rel, "manifest", { ok: false, output: `${entry.path} is in the manifest but ${local} is missing` });
      continue;
    }
    const data = readFileSync(local);
    const problems: string[] = [];
    if (!entry.path.startsWith("/")) problems.push(`path ${entry.path} is not absolute`);
    if (entry.mode !== undefined && !/^0?[0-7]{3,4}$/.test(entry.mode)) problems.push(`mode ${entry.mode} is not octal`);
    if (entry.bytes !== undefined && entry.bytes !== data.length) problems.push(`bytes ${entry.bytes} != ${data.length}`);
    if (entry.sha256 !== undefined && entry.sha256 !== createHash("sha256").update(data).digest("hex")) {
      problems.push("sha256 does not match");
    }
    add(rel, "manifest", { ok: problems.length === 0, output: problems.join("\n") || "matches manifest" });

    for (const c of scriptChecks(local, opts.timeoutMs)) add(rel, c.validator, c);
    if (entry.path.endsWith(".json")) add(rel, "jsonParse", jsonParse(local));
    if (SYSTEMD_UNIT_RE.test(entry.path)) units.add(basename(entry.path));
    const dropin = SYSTEMD_DROPIN_RE.exec(entry.path);
    if (dropin?.[1] !== undefined) units.add(dropin[1]);
  }
  for (const f of walkFiles(filesDir)) {
    if (!listed.has(resolve(f))) {
      add(relative(outDir, f), "manifest", { ok: false, output: `${f} is not listed in manifest.json` });
    }
  }
  if (units.size > 0) {
    const sv = systemdVerify(filesDir, [...units], { ...opts.systemd, modes });
    for (const u of sv.units) {
      const entry = files.find((f) => f.path === `/etc/systemd/system/${u.unit}`);
      const file = entry ? `files${entry.path}` : `files/etc/systemd/system/${u.unit}.d`;
      add(file, "systemdVerify", u);
    }
  }
  return checks;
}

/** Formats the failed checks of validateBundle for an assertion message. */
export function describeFailures(checks: BundleCheck[]): string {
  return checks
    .filter((c) => !c.ok)
    .map((c) => `--- ${c.file} [${c.validator}]\n${c.output}`)
    .join("\n");
}
