// A PATH of its own for running the rendered scripts with faults: every
// command of /usr/sbin and /usr/bin as a symlink, minus the ones a test hides,
// with some replaced by small scripts (a restore that kills itself, a save
// that cannot read a table...). Passed to the scripts as DOCKINIT_PATH, which
// replaces their fixed PATH.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, type ExecResult } from "../system/lib/exec.js";

export interface Shim {
  /** The directory that is the whole PATH. */
  dir: string;
  /** Run a script in a network namespace with this PATH and its own state directory. */
  run(ns: string, script: string, args: string[], env?: Record<string, string>): Promise<ExecResult>;
  cleanup(): void;
}

export interface ShimOptions {
  /** Commands that are not there. */
  hide?: string[];
  /** Commands that are these bash scripts instead ("REAL" in the text is the real binary's path). */
  replace?: Record<string, string>;
  /** iptables* are iptables-legacy* (as update-alternatives --set iptables iptables-legacy makes them). */
  legacy?: boolean;
}

const SYSTEM_DIRS = ["/usr/sbin", "/usr/bin"];
const IPT = ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"];

export function shimPath(opts: ShimOptions = {}): Shim {
  const root = mkdtempSync(join(tmpdir(), "dockinit-shim-"));
  const dir = join(root, "bin");
  const state = join(root, "state");
  mkdirSync(dir);
  const real = new Map<string, string>();
  for (const d of SYSTEM_DIRS) {
    for (const name of readdirSync(d)) if (!real.has(name)) real.set(name, join(d, name));
  }
  if (opts.legacy) for (const t of IPT) real.set(t, `/usr/sbin/${t.replace(/^(ip6?tables)/, "$1-legacy")}`);
  for (const [name, target] of real) {
    if (opts.hide?.includes(name) || opts.replace?.[name] !== undefined) continue;
    symlinkSync(target, join(dir, name));
  }
  for (const [name, body] of Object.entries(opts.replace ?? {})) {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/bash\n${body.split("REAL").join(real.get(name) ?? `/usr/sbin/${name}`).split("SHIMDIR").join(root)}\n`);
    chmodSync(file, 0o755);
  }
  return {
    dir,
    run: (ns, script, args, env = {}) =>
      run("nsenter", [`--net=/run/netns/${ns}`, "/bin/bash", script, ...args], {
        env: { ...(process.env as Record<string, string>), DOCKINIT_PATH: dir, DOCKINIT_STATE_DIR: state, ...env },
        timeoutMs: 60_000,
      }),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A restore that, the first time it is asked to commit, reads all its input and is killed before doing anything. */
export const RESTORE_KILLED_BEFORE_COMMIT = `for a; do [ "$a" = --test ] && exec REAL "$@"; done
if [ -e SHIMDIR/killed ]; then exec REAL "$@"; fi
: >SHIMDIR/killed
cat >/dev/null
kill -9 $$`;

/** A restore that, the first time it is asked to commit, commits the first table of its input and is then killed. */
export const RESTORE_KILLED_AFTER_FIRST_TABLE = `for a; do [ "$a" = --test ] && exec REAL "$@"; done
if [ -e SHIMDIR/killed ]; then exec REAL "$@"; fi
: >SHIMDIR/killed
input=$(cat)
printf '%s\\n' "\${input%%COMMIT*}COMMIT" | REAL "$@"
kill -9 $$`;

/** A save that cannot read the nat table, as when iptable_nat / ip6table_nat is not in the kernel. */
export const SAVE_WITHOUT_NAT = `for a; do
  if [ "$a" = nat ]; then echo "iptables-save: Table does not exist (do you need to insmod?)" >&2; exit 1; fi
done
exec REAL "$@"`;
