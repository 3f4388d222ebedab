// A host made of stubs, for running the rendered scripts without root and
// without touching the machine: a PATH (DOCKINIT_PATH) that holds only small
// stand-ins for the kernel tools (iptables*, ip6tables*, nft, ipset, ip, id,
// docker, docker-proxy...), each of which records what it was asked (argv,
// the input it read, when, and for which run) and answers from files under
// the host's directory, plus links to the harmless real tools the scripts use
// (bash, sed, awk...; flock recorded, then run). A tool the list does not name is simply not
// there, so a script never reaches the real firewall or the real Docker.
//
// Tests say what the kernel was asked to do, not what the script text is:
// see test/unit/script-behaviour.test.ts.
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Bundle } from "../../src/index.js";

/** The kernel and Docker tools the scripts call, each a recording stub. */
export const STUBBED = [
  "iptables",
  "ip6tables",
  "iptables-save",
  "ip6tables-save",
  "iptables-restore",
  "ip6tables-restore",
  "nft",
  "ipset",
  "ip",
  "id",
  "docker",
  "docker-proxy",
  "systemctl",
  "sysctl",
  "logger",
] as const;
export type StubbedTool = (typeof STUBBED)[number];

/** Real tools the scripts may use: text processing, time. Nothing that changes the machine's network. */
const REAL = ["bash", "sh", "cat", "sed", "awk", "grep", "mkdir", "rm", "sort", "head", "tail", "tr", "paste", "cut", "tac", "sleep", "date", "readlink", "env", "wc", "uniq", "timeout", "python3", "mktemp", "touch", "ls", "dirname", "basename", "true", "false", "seq", "xargs", "chmod", "cp", "mv", "printf", "tee", "stat"];
/** Real tools that are recorded too (the call, when it began), then run: the lock. */
const RECORDED_REAL = ["flock"];

/**
 * One stub, written under each tool's name. It records the call in
 * $STUB_HOST/calls/<id>.{start,argv[,stdin],meta} (meta once it ends), then
 * answers: a hook of the test's ($STUB_HOST/hooks/<tool>, sourced with the
 * arguments) runs first and may print, wait, set rc, and set handled=1 to
 * skip the default answer below. Times are bash's $EPOCHREALTIME (no fork, microseconds).
 */
const STUB = `#!/bin/bash
tool=\${0##*/}
h=\${STUB_HOST:?}
id="\${EPOCHREALTIME/./}-$$-$RANDOM"
rec=$h/calls/$id
start=\${EPOCHREALTIME/./}
# Begun (a hook may wait for another run's calls): "tool tag start".
printf '%s %s %s\\n' "$tool" "\${STUB_TAG:--}" "$start" >"$rec.start"
reads=0
case $tool in
  *-restore) reads=1 ;;
  nft) for a; do [ "$a" = -f ] && reads=1; done ;;
  ipset) [ "\${1:-}" = restore ] && reads=1 ;;
esac
if [ "$reads" = 1 ]; then cat >"$rec.stdin"; fi
printf '%s\\0' "$@" >"$rec.argv"
rc=0
table=filter
prev=""
for a; do [ "$prev" = -t ] && table=$a; prev=$a; done
handled=0
# shellcheck disable=SC1090
if [ -f "$h/hooks/$tool" ]; then . "$h/hooks/$tool"; fi
if [ "$handled" = 0 ]; then
  case $tool in
    iptables | ip6tables) if [ "\${1:-}" = -V ]; then echo "$tool v1.8.9 (nf_tables)"; fi ;;
    iptables-save | ip6tables-save)
      fam=4
      [ "$tool" = ip6tables-save ] && fam=6
      if [ -f "$h/tables/v$fam-$table" ]; then cat "$h/tables/v$fam-$table"
      elif [ "$table" = nat ]; then printf '*nat\\n:PREROUTING ACCEPT [0:0]\\n:INPUT ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n'
      else printf '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n'; fi ;;
    nft)
      # The last input loaded stands for dockinit's table; any other table is missing.
      if [ "$reads" = 1 ]; then cp "$rec.stdin" "$h/nft-loaded"
      else case " $* " in
        *" list table inet dockinit "*) if [ -f "$h/nft-loaded" ]; then cat "$h/nft-loaded"; else rc=1; fi ;;
        *" list "*) rc=1 ;;
      esac; fi ;;
    ip) case " $* " in *" -4 route show default "*) echo "default via 192.0.2.1 dev eth0 proto static" ;; esac ;;
    id) echo 0 ;;
    docker) rc=1 ;;
  esac
fi
printf '%s %s %s %s\\n' "$tool" "\${STUB_TAG:--}" "$start" "\${EPOCHREALTIME/./}" >"$rec.meta"
exit "$rc"
`;

/** A real tool, recorded as it starts (it is exec'd, so its end is not known: end = start). */
const recordedReal = (real: string) => `#!/bin/bash
h=\${STUB_HOST:?}
rec="$h/calls/\${EPOCHREALTIME/./}-$$-$RANDOM"
start=\${EPOCHREALTIME/./}
printf '%s %s %s\\n' "\${0##*/}" "\${STUB_TAG:--}" "$start" >"$rec.start"
printf '%s\\0' "$@" >"$rec.argv"
printf '%s %s %s %s\\n' "\${0##*/}" "\${STUB_TAG:--}" "$start" "$start" >"$rec.meta"
exec ${real} "$@"
`;

export interface StubCall {
  tool: string;
  args: string[];
  /** What the tool read on stdin (restores, nft -f -, ipset restore). */
  stdin?: string;
  /** STUB_TAG of the run that made the call. */
  tag: string;
  /** Microseconds since the epoch. */
  start: number;
  end: number;
}

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string>;
  /** Recorded with every stub call the run makes (tell concurrent runs apart). */
  tag?: string;
  /** Started by this executable instead of node (its dirname is where dockinit-proxy looks for docker-proxy first). */
  parent?: string;
  timeoutMs?: number;
}

export interface StubHost {
  root: string;
  /** The whole PATH the scripts see. */
  bin: string;
  /** DOCKINIT_STATE_DIR (the lock, the saved state). */
  state: string;
  /** Write a bundle's files under root/files (host path → file), scripts executable. */
  install(bundle: Bundle): void;
  /** The installed copy of a host path. */
  file(hostPath: string): string;
  /** What <tool>-save prints for a table (iptables-save / ip6tables-save). */
  setTable(family: 4 | 6, table: "nat" | "filter", save: string): void;
  /** A bash fragment the stub sources before its default answer ("$@" are the tool's arguments; rc=1 fails the call; handled=1 skips the default). */
  hook(tool: StubbedTool, body: string): void;
  run(hostPath: string, args: string[], opts?: RunOptions): Promise<ScriptRun>;
  /** Every recorded call, in the order they started. */
  calls(): StubCall[];
  /** Forget the calls recorded so far. */
  clearCalls(): void;
  cleanup(): void;
}

function realTool(name: string): string | undefined {
  try {
    return execFileSync("sh", ["-c", 'command -v "$1"', "sh", name], { encoding: "utf8", env: { PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin" } }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function stubHost(): StubHost {
  const root = mkdtempSync(join(tmpdir(), "dockinit-stubhost-"));
  const bin = join(root, "bin");
  const state = join(root, "state");
  for (const d of [bin, state, join(root, "calls"), join(root, "hooks"), join(root, "tables"), join(root, "files")]) mkdirSync(d, { recursive: true });
  for (const name of REAL) {
    const target = realTool(name);
    if (target) symlinkSync(target, join(bin, name));
  }
  for (const name of RECORDED_REAL) {
    const target = realTool(name);
    if (!target) continue;
    writeFileSync(join(bin, name), recordedReal(target));
    chmodSync(join(bin, name), 0o755);
  }
  for (const name of STUBBED) {
    writeFileSync(join(bin, name), STUB);
    chmodSync(join(bin, name), 0o755);
  }
  const file = (hostPath: string) => join(root, "files", hostPath);
  const baseEnv = (tag: string): Record<string, string> => ({
    PATH: bin,
    DOCKINIT_PATH: bin,
    DOCKINIT_STATE_DIR: state,
    // No Docker here: no socket, no client configuration, daemon.json of the bundle's.
    DOCKINIT_DOCKER_SOCKET: join(root, "no-docker.sock"),
    DOCKER_CONFIG: join(root, "no-docker-config"),
    DOCKINIT_DAEMON_JSON: file("/etc/docker/daemon.json"),
    HOME: root,
    LC_ALL: "C",
    STUB_HOST: root,
    STUB_TAG: tag,
  });
  return {
    root,
    bin,
    state,
    install(bundle) {
      for (const f of bundle.files) {
        const p = file(f.path);
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, f.content);
        chmodSync(p, Number.parseInt(f.permissions, 8));
      }
    },
    file,
    setTable: (family, table, save) => writeFileSync(join(root, "tables", `v${family}-${table}`), save.endsWith("\n") ? save : `${save}\n`),
    hook: (tool, body) => writeFileSync(join(root, "hooks", tool), `${body}\n`),
    run(hostPath, args, opts = {}) {
      const script = file(hostPath);
      if (!existsSync(script)) throw new Error(`${hostPath} is not in the installed bundle`);
      const env = { ...baseEnv(opts.tag ?? "-"), ...opts.env };
      // A parent other than node: `PARENT -c '"$0" "$@"; exit $?' SCRIPT ARGS`
      // (the `exit` keeps bash from exec'ing the script in its own place).
      const [cmd, argv] = opts.parent ? [opts.parent, ["-c", '"$0" "$@"; exit $?', script, ...args]] : ["bash", [script, ...args]];
      return new Promise((resolve, reject) => {
        const child = spawn(cmd, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    },
    calls() {
      const dir = join(root, "calls");
      const out: StubCall[] = [];
      for (const name of readdirSync(dir)) {
        if (!name.endsWith(".meta")) continue;
        const base = join(dir, name.slice(0, -".meta".length));
        const [tool, tag, start, end] = readFileSync(`${base}.meta`, "utf8").trim().split(" ");
        const argv = readFileSync(`${base}.argv`, "utf8");
        out.push({
          tool: tool!,
          tag: tag!,
          start: Number(start),
          end: Number(end),
          args: argv === "" ? [] : argv.slice(0, -1).split("\0"),
          ...(existsSync(`${base}.stdin`) ? { stdin: readFileSync(`${base}.stdin`, "utf8") } : {}),
        });
      }
      return out.sort((a, b) => a.start - b.start);
    },
    clearCalls() {
      const dir = join(root, "calls");
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir);
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * A copy of bash named `dockerd` in the stub PATH: a process started by it has
 * /proc/PPID/exe in that directory, as docker-proxy's parent is the dockerd
 * beside it (dockinit-proxy runs the docker-proxy found there first).
 */
export function fakeDockerd(host: StubHost): string {
  const p = join(host.bin, "dockerd");
  if (!existsSync(p)) {
    copyFileSync(realTool("bash")!, p);
    chmodSync(p, 0o755);
  }
  return p;
}

/** One process of a fake /proc (fakeProc). */
export interface FakeProcess {
  pid: number;
  /** What /proc/PID/exe points to: a file, or a path that need not exist (e.g. "… (deleted)"). */
  exe: string;
  argv: string[];
  /** Real, effective, saved, filesystem uid (one number: all four). Default 0. */
  uid?: number | [number, number, number, number];
  /** The mount namespace: the script's own ("host", the default) or another ("container"). */
  mnt?: "host" | "container";
  /** /proc/PID/comm; default the exe's file name. */
  comm?: string;
}

/**
 * A /proc of these processes, for DOCKINIT_PROC (a tests-only hook of
 * dockinit-firewall's proxy_ports): PID/{exe,cmdline,comm,status,ns/mnt}, and
 * self/ns/mnt (the script's own mount namespace). exe and ns/mnt are symlinks,
 * which bash's `-ef` follows as it follows the kernel's magic links: two
 * namespace files stand for the host's and a container's.
 */
export function fakeProc(host: StubHost, processes: FakeProcess[]): string {
  const proc = mkdtempSync(join(host.root, "proc-"));
  const ns = join(proc, ".ns");
  mkdirSync(ns);
  writeFileSync(join(ns, "host"), "");
  writeFileSync(join(ns, "container"), "");
  mkdirSync(join(proc, "self", "ns"), { recursive: true });
  symlinkSync(join(ns, "host"), join(proc, "self", "ns", "mnt"));
  for (const p of processes) {
    const dir = join(proc, String(p.pid));
    mkdirSync(join(dir, "ns"), { recursive: true });
    symlinkSync(p.exe, join(dir, "exe"));
    symlinkSync(join(ns, p.mnt ?? "host"), join(dir, "ns", "mnt"));
    writeFileSync(join(dir, "cmdline"), p.argv.map((a) => `${a}\0`).join(""));
    writeFileSync(join(dir, "comm"), `${(p.comm ?? p.exe.split("/").pop()!).slice(0, 15)}\n`);
    const uid = typeof p.uid === "object" ? p.uid : [p.uid ?? 0, p.uid ?? 0, p.uid ?? 0, p.uid ?? 0];
    writeFileSync(join(dir, "status"), `Name:\t${p.comm ?? "x"}\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t${p.pid}\nUid:\t${uid.join("\t")}\nGid:\t0\t0\t0\t0\n`);
  }
  return proc;
}
