// Running the rendered dockinit-firewall inside a test's "host" namespace,
// with its state under a temporary directory and, optionally, a PATH shim
// that makes iptables mean iptables-legacy.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, runInOk, type ExecResult } from "../system/lib/exec.js";

export type IptablesBackend = "nft" | "legacy";

const TOOLS = ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"];

export interface FirewallRunner {
  run(...args: string[]): Promise<ExecResult>;
  /** iptables-save of a family in the host namespace, counters and comments dropped. */
  save(family?: 4 | 6): Promise<string>;
  ipt(family: 4 | 6): string;
  cleanup(): void;
}

export function firewallRunner(ns: string, script: string, backend: IptablesBackend = "nft"): FirewallRunner {
  const dir = mkdtempSync(join(tmpdir(), "dockinit-fw-"));
  const state = join(dir, "state");
  let path = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (backend === "legacy") {
    const shim = join(dir, "bin");
    mkdirSync(shim);
    for (const t of TOOLS) symlinkSync(`/usr/sbin/${t.replace(/^(ip6?tables)/, "$1-legacy")}`, join(shim, t));
    path = `${shim}:${path}`;
  }
  const env = { ...process.env, DOCKINIT_STATE_DIR: state, DOCKINIT_PATH: path, PATH: path };
  const ipt = (family: 4 | 6) => {
    const base = family === 4 ? "iptables" : "ip6tables";
    return backend === "legacy" ? `${base}-legacy` : base;
  };
  return {
    run: (...args) => run("nsenter", [`--net=/run/netns/${ns}`, "bash", script, ...args], { env, timeoutMs: 60_000 }),
    ipt,
    async save(family = 4) {
      const out = await runInOk(ns, `${ipt(family)}-save`, []);
      return out
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .map((l) => l.replace(/\[\d+:\d+\]$/, "[0:0]"))
        .join("\n");
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
