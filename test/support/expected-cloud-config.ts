// The cloud-config cloud-init must read back from a bundle, built from the
// config's YAML as parsed independently of dockinit's loader (and never from
// dockinit's own cloudConfigObject): the oracle of the property and injection
// tests. dockinit's own files are taken as rendered; the user's entries as the
// input says.
import { posix } from "node:path";
import type { Bundle } from "../../src/index.js";

/** The YAML the generator produced, parsed independently of dockinit's loader, for oracles. */
export type Input = Record<string, unknown> & {
  docker?: { daemon?: { dns?: string[]; dns_search?: string[]; settings?: Record<string, unknown> } };
  user_data?: {
    write_files?: { path: string; content?: string; source?: string; permissions?: string; owner?: string; defer?: boolean; append?: boolean }[];
    packages?: string[];
    runcmd?: unknown[];
    parts?: { file: string }[];
  };
};

/** The cloud-config cloud-init must read: dockinit's files as rendered, the user's entries as the input says. */
export function expectedCloudConfig(input: Input, bundle: Bundle, readSource: (path: string) => string | undefined): unknown {
  const ud = input.user_data ?? {};
  const own = bundle.files.filter((f) => f.origin === "dockinit").map((f) => ({ path: f.path, content: f.content, permissions: f.permissions, owner: f.owner }));
  const user = (ud.write_files ?? []).map((w) => ({
    path: posix.normalize(w.path),
    content: w.content ?? readSource(w.source ?? ""),
    permissions: w.permissions === undefined ? "0644" : w.permissions.length === 3 ? `0${w.permissions}` : w.permissions,
    owner: w.owner ?? "root:root",
    ...(w.append ? { append: true } : {}),
    ...(w.defer ? { defer: true } : {}),
  }));
  // The policies need docker.service's drop-in on the first boot, before
  // write_files: bootcmd writes the drop-in file's directives (its lines
  // that are not comments); write_files puts the whole file over it.
  const fw = (input.firewall ?? {}) as { published?: { default?: string; rules?: unknown[] }; containers?: { block_metadata?: boolean; block?: unknown[]; egress_allow?: unknown[] } };
  const policies =
    (fw.published?.rules ?? []).length > 0 ||
    fw.published?.default === "deny" ||
    fw.containers?.block_metadata !== false ||
    (fw.containers?.block ?? []).length > 0 ||
    (fw.containers?.egress_allow ?? []).length > 0 ||
    ((input.port_forwards as unknown[] | undefined) ?? []).length > 0;
  const dropIn = "/etc/systemd/system/docker.service.d/50-dockinit.conf";
  const dropInText = own.find((f) => f.path === dropIn)?.content ?? "(missing drop-in)";
  const directives = dropInText.split("\n").filter((l) => !l.startsWith("#")).join("\n");
  const bootcmd = `f=${dropIn}; [ -f "$f" ] || { mkdir -p "\${f%/*}" && printf %s '${directives.replaceAll("'", "'\\''")}' >"$f" && systemctl daemon-reload; }`;
  return {
    ...(policies ? { bootcmd: [["/bin/sh", "-c", bootcmd]] } : {}),
    write_files: [...own, ...user],
    ...((ud.packages ?? []).length > 0 ? { packages: ud.packages } : {}),
    runcmd: [["/usr/local/sbin/dockinit-boot"], ...(ud.runcmd ?? [])],
  };
}

