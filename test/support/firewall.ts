// Running the rendered dockinit-firewall inside a test's "host" namespace,
// with its state under a temporary directory and, optionally, a PATH shim
// that makes iptables mean iptables-legacy.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Engine } from "../system/lib/engine.js";
import { run, runInOk, spawnBackground, type Background, type ExecResult } from "../system/lib/exec.js";

export type IptablesBackend = "nft" | "legacy";

const TOOLS = ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"];

export interface FirewallRunner {
  run(...args: string[]): Promise<ExecResult>;
  /** iptables-save of a family in the host namespace, counters and comments dropped. */
  save(family?: 4 | 6): Promise<string>;
  ipt(family: 4 | 6): string;
  /** Start a long-running subcommand (e.g. `watch`) in the host namespace. */
  spawn(...args: string[]): Promise<Background>;
  /** The folder first on the script's PATH: a test puts a tool's stand-in there (a refusing nft, say). */
  shimDir: string;
  cleanup(): void;
  /** The script's DOCKINIT_STATE_DIR (its lock and saved state); dockinit-proxy needs the same one. */
  stateDir: string;
}

export interface FirewallRunnerOptions {
  backend?: IptablesBackend;
  /** Point the script's `docker` (the watch's events) at a test dockerd. */
  dockerHost?: string;
  /**
   * Run the script with this engine's userland (its bash, iptables, nft,
   * ipset, docker CLI), as it runs on a host with that Docker: see lib/engine.ts.
   */
  engine?: Engine;
  /** Share another runner's state directory (two bundles' scripts on one host); its owner removes it. */
  stateDir?: string;
}

export function firewallRunner(ns: string, script: string, opts: IptablesBackend | FirewallRunnerOptions = {}): FirewallRunner {
  const { backend = "nft", dockerHost, engine: eng, stateDir } = typeof opts === "string" ? { backend: opts } : opts;
  const engine = eng?.chrooted ? eng : undefined;
  const dir = mkdtempSync(join(tmpdir(), "dockinit-fw-"));
  const state = stateDir ?? join(dir, "state");
  const shim = join(dir, "bin");
  mkdirSync(shim);
  // /usr/local/bin holds a newer docker client on some machines; the test
  // daemon is Debian's, so its own client goes first.
  symlinkSync("/usr/bin/docker", join(shim, "docker"));
  if (backend === "legacy") {
    for (const t of TOOLS) symlinkSync(`/usr/sbin/${t.replace(/^(ip6?tables)/, "$1-legacy")}`, join(shim, t));
  }
  const path = `${shim}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin`;
  const env: Record<string, string> = { ...(process.env as Record<string, string>), DOCKINIT_STATE_DIR: state, DOCKINIT_PATH: path, PATH: path };
  if (dockerHost) env.DOCKER_HOST = dockerHost;
  const ipt = (family: 4 | 6) => {
    const base = family === 4 ? "iptables" : "ip6tables";
    return backend === "legacy" ? `${base}-legacy` : base;
  };
  return {
    run: (...args) =>
      engine
        ? engine.run(ns, "bash", [script, ...args], { env, timeoutMs: 60_000 })
        : run("nsenter", [`--net=/run/netns/${ns}`, "bash", script, ...args], { env, timeoutMs: 60_000 }),
    ipt,
    shimDir: shim,
    spawn: (...args) => (engine ? engine.spawn(ns, "bash", [script, ...args], { env }) : spawnBackground("bash", [script, ...args], { netns: ns, env })),
    async save(family = 4) {
      const out = engine ? await engine.runOk(ns, `${ipt(family)}-save`, []) : await runInOk(ns, `${ipt(family)}-save`, []);
      const lines = out
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .map((l) => l.replace(/\[\d+:\d+\]$/, "[0:0]"));
      // A table that only ever got looked at shows up with its built-in
      // chains and nothing else; it is the same firewall as no table at all.
      const blocks = lines.join("\n").split(/(?=^\*)/m);
      const pristine = (b: string) => b.split("\n").every((l) => l === "" || l === "COMMIT" || l.startsWith("*") || /^:[A-Z]+ ACCEPT \[0:0\]$/.test(l));
      return blocks.filter((b) => !pristine(b)).join("");
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
    stateDir: state,
  };
}

/**
 * A must-drop's control (test/system/lib/verdict.ts): dockinit's rules taken
 * away with `remove`, put back with `apply` once the control's probes ran.
 * Both must succeed, or the control proves nothing.
 */
export const withoutDockinit = (fw: FirewallRunner) => async (): Promise<() => Promise<void>> => {
  const removed = await fw.run("remove");
  if (removed.code !== 0) throw new Error(`control: dockinit-firewall remove failed (exit ${String(removed.code)}): ${removed.stderr}`);
  return async () => {
    const applied = await fw.run("apply");
    if (applied.code !== 0) throw new Error(`control: dockinit-firewall apply after the control failed (exit ${String(applied.code)}): ${applied.stderr}`);
  };
};
