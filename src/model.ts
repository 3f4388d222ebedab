// The normalised configuration every renderer reads: defaults applied,
// keywords resolved, addresses parsed. Building it also runs the cross-field
// rules that need more than the schema (file references, reserved paths).
import { posix } from "node:path";
import { parse as parseYaml } from "yaml";
import { diagnostic, type Diagnostic } from "./config/errors.js";
import { hostBitsCleared, isIpv4CatchAll, isIpv6CatchAll, parseCidr, parseHostPort, parsePortRange, type Cidr, type Family, type PortRange } from "./config/net.js";
import { AMAZON_RESOLVER, type Config } from "./config/schema.js";
import { findSecrets, findSecretsInFile } from "./config/secrets.js";
import { RESERVED_PATHS } from "./host-paths.js";

export type Protocol = "tcp" | "udp";

export type DnsServer = { kind: "vpc" } | { kind: "literal"; address: string; family: Family };

export interface PublishedRule {
  port: number;
  protocol: Protocol;
  /** `any` admits everyone; `loopback` only the host itself. */
  allowAny: boolean;
  allowLoopback: boolean;
  allow: Cidr[];
}

export interface PortForward {
  listen: number;
  protocol: Protocol;
  family: Family;
  address: string;
  port: number;
}

export interface UserFile {
  path: string;
  content: string;
  permissions: string;
  owner: string;
  defer: boolean;
  append: boolean;
}

export interface UserPart {
  /** As written in the config, used as the part's filename. */
  file: string;
  filename: string;
  contentType: string;
  mergeType?: string;
  content: string;
}

export interface Model {
  name: string;
  docker: {
    install: boolean;
    dns: DnsServer[];
    dnsSearch: string[];
    settings: Record<string, unknown>;
    /** Docker's own firewall backend (daemon.json "firewall-backend"; Docker's default is iptables). */
    firewall: Backend;
  };
  ephemeral: {
    enabled: boolean;
    match: PortRange;
    to: PortRange;
    protocols: Protocol[];
    /** Empty = any source. */
    sources: Cidr[];
    hostRange: boolean;
  };
  firewall: {
    backend: Backend;
    /** What the config asked for and why `backend` follows from it, in words (explain, status). */
    backendChoice: { requested: "auto" | Backend; reason: string };
    /** "auto": every interface but loopback, Docker's bridges and veths (rule-model.ts NOT_EXTERNAL); else exactly these (a trailing + is a prefix). */
    externalInterfaces: "auto" | string[];
    published: { default: "allow" | "deny"; rules: PublishedRule[] };
    containers: { blockMetadata: boolean; block: Cidr[]; egressAllow: Cidr[] };
  };
  portForwards: PortForward[];
  userData: {
    format: "cloud-config" | "mime" | "auto";
    gzip: "auto" | "always" | "never";
    parts: UserPart[];
    writeFiles: UserFile[];
    packages: string[];
    runcmd: (string | string[])[];
    /** user_data.cloud_init as written ("22.2", "al2023"): the cloud-init `check`/`render` validate against; resolved in bundle/cloud-init/. */
    cloudInit?: string;
  };
  launchTemplate?: {
    name: string;
    region?: string;
    sourceVersion: string;
    setDefault: boolean;
  };
  /** `dockinit rollout` / `push --rollout` preferences (defaults applied); no renderer reads them. */
  rollout: RolloutSettings;
}

/** An Auto Scaling instance refresh as dockinit.yaml asks for it; CLI flags override field by field. */
export interface RolloutSettings {
  /** Empty: every group that uses the launch template. */
  autoScalingGroups: string[];
  minHealthyPercentage: number;
  maxHealthyPercentage: number;
  /** Seconds. */
  instanceWarmup: number;
  /** Increasing percentages ending in 100, or empty. */
  checkpoints: number[];
  /** Seconds. */
  checkpointDelay: number;
  alarms: string[];
  /** Seconds. */
  bakeTime: number;
  skipMatching: boolean;
  autoRollback: "auto" | boolean;
  protectedInstances: "wait" | "refresh" | "ignore";
  standbyInstances: "wait" | "terminate" | "ignore";
  /** rollout --verify by default. */
  verify: boolean;
}

/** How the model reads files a config refers to (`source:`, part `file:`). */
export interface FileReader {
  /** Returns the file's text, or undefined when it does not exist (or is larger than MAX_REFERENCED_BYTES). */
  read(relativePath: string): string | undefined;
  /** Size in bytes of an existing file, so an oversized one is reported as such rather than as missing. Optional. */
  size?(relativePath: string): number | undefined;
}

/** A `source:` or part file: as large as dockinit.yaml may be. */
export const MAX_REFERENCED_BYTES = 256 * 1024;

/**
 * Characters a path on the instance should never contain: controls (C0, DEL,
 * C1), line and paragraph separators and the BOM. cloud-init would write them,
 * but no shell or log line shows such a path as it is.
 */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE_PATH = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/;

/** Why an absolute path cannot be a file on Linux (PATH_MAX 4096, NAME_MAX 255 bytes), or undefined. */
function pathProblem(raw: string): string | undefined {
  if (!raw.startsWith("/") || raw.split("/").includes("..")) return "is not an absolute path without '..'";
  if (UNPRINTABLE_PATH.test(raw)) return "contains a control or invisible character";
  const path = posix.normalize(raw);
  if (path === "/" || path.endsWith("/")) return "names a directory, not a file";
  if (Buffer.byteLength(path) > 4095) return "is longer than Linux's 4096-byte PATH_MAX";
  if (path.split("/").some((seg) => Buffer.byteLength(seg) > 255)) return "has a component longer than Linux's 255-byte NAME_MAX";
  return undefined;
}

/** Modes where others may write (the 0o002 bit), from "0644"-style strings. */
const worldWritable = (mode: string) => (parseInt(mode, 8) & 0o002) !== 0;

const PART_TYPES = new Set([
  "x-shellscript",
  "x-shellscript-per-boot",
  "x-shellscript-per-instance",
  "x-shellscript-per-once",
  "cloud-config",
  "cloud-config-archive",
  "cloud-boothook",
  "jinja2",
  "x-include-url",
  "x-include-once-url",
  "part-handler",
]);

function isSafeRelative(p: string): boolean {
  if (p === "" || p.startsWith("/") || p.includes("\0") || p.includes("\\")) return false;
  const norm = posix.normalize(p);
  return norm !== ".." && !norm.startsWith("../");
}

/**
 * What cloud-init would do wrong with a part, or undefined: a script it
 * executes needs a #! line, a cloud-config part must be a YAML mapping
 * (cloud-init logs "Failed loading yaml blob" and drops it otherwise).
 */
function partContentProblem(type: string, content: string): string | undefined {
  if (type.startsWith("x-shellscript") && !content.startsWith("#!")) return "does not start with #!, so cloud-init cannot execute it";
  if (type === "cloud-boothook" && !/^(#!|#cloud-boothook)/.test(content)) return "does not start with #! or #cloud-boothook";
  if (type === "cloud-config") {
    try {
      const doc: unknown = parseYaml(content, { version: "1.1", logLevel: "silent" });
      if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return "is not a YAML mapping, so cloud-init drops it";
    } catch {
      return "is not valid YAML, so cloud-init drops it";
    }
  }
  return undefined;
}

/** DI043 for a missing file, DI054 for one too large to read. */
function unreadable(files: FileReader, rel: string, path: (string | number)[]): Diagnostic {
  const size = files.size?.(rel);
  if (size !== undefined && size > MAX_REFERENCED_BYTES) {
    return diagnostic("DI054", `${rel} is ${size} bytes; the limit is ${MAX_REFERENCED_BYTES}`, path);
  }
  return diagnostic("DI043", `${rel} does not exist`, path);
}

const cidrs = (list: readonly string[]): Cidr[] =>
  list.flatMap((s) => {
    const c = parseCidr(s);
    return c ? [c] : [];
  });

/**
 * Every list of networks in the config, with what 0.0.0.0/0 alone means there:
 * each list is enforced per address family (iptables and ip6tables, or an
 * nftables set per family), so an IPv4 catch-all says nothing about IPv6.
 */
function networkLists(config: Config): { path: (string | number)[]; entries: readonly string[]; ipv4Only: string; hint: string }[] {
  const anyOrV6 = "add `::/0` to the list, or write `any`";
  return [
    {
      path: ["ephemeral_ports", "sources"],
      entries: config.ephemeral_ports.sources,
      ipv4Only: "rewrites the source ports of every IPv4 connection but not of every IPv6 one (the list has no ::/0 or `any`): IPv6 connections from outside the list leave with theirs",
      hint: anyOrV6,
    },
    ...config.firewall.published.rules.map((r, i) => ({
      path: ["firewall", "published", "rules", i, "allow"],
      entries: r.allow,
      ipv4Only: `admits every IPv4 client of port ${r.port}/${r.protocol} but not every IPv6 client (the list has no ::/0 or \`any\`): IPv6 clients outside the list are dropped`,
      hint: anyOrV6,
    })),
    {
      path: ["firewall", "containers", "block"],
      entries: config.firewall.containers.block,
      ipv4Only: "blocks every IPv4 destination but not every IPv6 one (the list has no ::/0): containers still reach IPv6 destinations outside the list",
      hint: "add `::/0` to the list to block IPv6 destinations as well",
    },
    {
      path: ["firewall", "containers", "egress_allow"],
      entries: config.firewall.containers.egress_allow,
      ipv4Only: "lets containers reach every IPv4 destination but not every IPv6 one (the list has no ::/0): IPv6 destinations outside the list are dropped",
      hint: "add `::/0` to the list (or remove egress_allow to let containers reach every destination)",
    },
  ];
}

/** DI033 (an IPv4 catch-all without ::/0 or `any`) and DI034 (host bits set) in every network list. */
function networkWarnings(config: Config): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const list of networkLists(config)) {
    const coversIpv6 = list.entries.some((e) => e === "any" || isIpv6CatchAll(e));
    list.entries.forEach((entry, j) => {
      if (!coversIpv6 && isIpv4CatchAll(entry)) {
        out.push(diagnostic("DI033", `${entry} ${list.ipv4Only}`, [...list.path, j], list.hint));
      }
      const network = hostBitsCleared(entry);
      if (network) {
        const one = `${entry.slice(0, entry.indexOf("/"))}/${network.family === 4 ? 32 : 128}`;
        out.push(diagnostic("DI034", `${entry} has host bits set: it stands for the whole network ${network.text}`, [...list.path, j], `write ${network.text}, or ${one} for that one address`));
      }
    });
  }
  return out;
}

export type Backend = "iptables" | "nftables";

/**
 * The backend a config gets. `auto` is decided here, at render time, from the
 * config alone: one rendered script carries one backend. nftables is the
 * default because its chain at srcnat - 10 runs before Docker's MASQUERADE
 * from the first packet on, where the iptables backend can only move its jump
 * back on top after Docker inserts its own (a window on every new network).
 * Port forwards, whose traffic also crosses iptables' FORWARD, get their
 * accepts there too (firewall-rules.ts, forwardAccepts). When Docker itself
 * runs its nftables firewall (daemon.json "firewall-backend"), it has no
 * DOCKER-USER and its NAT runs at srcnat like iptables' nat, so only
 * dockinit's nftables table (srcnat - 10) can run first: the reason says so.
 */
export function chooseBackend(
  requested: "auto" | Backend,
  dockerFirewall: Backend = "iptables",
): { backend: Backend; backendChoice: Model["firewall"]["backendChoice"] } {
  if (requested !== "auto") return { backend: requested, backendChoice: { requested, reason: "as firewall.backend asks" } };
  const reason =
    dockerFirewall === "nftables"
      ? "chosen by auto: Docker runs its nftables firewall, which only an nftables table can run before"
      : "chosen by auto: runs before Docker's rules from the first packet";
  return { backend: "nftables", backendChoice: { requested, reason } };
}

export function buildModel(config: Config, files: FileReader): { model?: Model; diagnostics: Diagnostic[] } {
  const diags: Diagnostic[] = [];
  const range = (text: string): PortRange => parsePortRange(text) ?? { low: 0, high: 0 };

  const ep = config.ephemeral_ports;
  const match = range(ep.match);
  const to = range(ep.to);
  if (ep.enabled && match.low >= to.low && match.high <= to.high) {
    diags.push(diagnostic("DI028", `match ${ep.match} lies inside to ${ep.to}: no port would be rewritten`, ["ephemeral_ports", "match"]));
  }

  diags.push(...networkWarnings(config));

  const settings = config.docker.daemon.settings;
  const dockerFirewall: Backend = settings["firewall-backend"] === "nftables" ? "nftables" : "iptables";
  if (dockerFirewall === "nftables" && config.firewall.backend === "iptables") {
    diags.push(diagnostic("DI058", "`firewall.backend: iptables` cannot run before Docker's nftables firewall (docker.daemon.settings firewall-backend: nftables)", ["firewall", "backend"]));
  }
  if (config.firewall.published.default === "deny" && settings["userland-proxy-path"] !== undefined && settings["userland-proxy"] !== false) {
    diags.push(diagnostic("DI057", "`published.default: deny` needs Docker's userland-proxy-path for dockinit-proxy", ["docker", "daemon", "settings", "userland-proxy-path"]));
  }

  const writeFiles: UserFile[] = [];
  const seenPaths = new Map<string, number>();
  config.user_data.write_files.forEach((wf, i) => {
    const at = ["user_data", "write_files", i];
    const path = posix.normalize(wf.path);
    const problem = pathProblem(wf.path);
    if (problem) {
      diags.push(diagnostic("DI046", `${JSON.stringify(wf.path)} ${problem}`, [...at, "path"]));
      return;
    }
    if (worldWritable(wf.permissions)) {
      diags.push(diagnostic("DI061", `${path} would be writable by every user (mode ${wf.permissions})`, [...at, "permissions"]));
    }
    if (RESERVED_PATHS.has(path)) {
      diags.push(diagnostic("DI044", `${path} is written by dockinit`, [...at, "path"]));
    }
    const first = seenPaths.get(path);
    if (first !== undefined && !wf.append) diags.push(diagnostic("DI052", `${path} is already written by write_files[${first}]`, [...at, "path"]));
    seenPaths.set(path, i);
    if (!/^[a-z_][a-z0-9_-]{0,31}(:[a-z_][a-z0-9_-]{0,31})?$/.test(wf.owner)) {
      diags.push(diagnostic("DI049", `${JSON.stringify(wf.owner)} is not USER or USER:GROUP`, [...at, "owner"]));
    }
    let content: string | undefined = wf.content;
    if ((wf.content === undefined) === (wf.source === undefined)) {
      diags.push(diagnostic("DI045", "give exactly one of content or source", at));
      return;
    }
    if (wf.source !== undefined) {
      if (!isSafeRelative(wf.source)) {
        diags.push(diagnostic("DI042", `${JSON.stringify(wf.source)} is outside the configuration directory`, [...at, "source"]));
        return;
      }
      content = files.read(wf.source);
      if (content === undefined) {
        diags.push(unreadable(files, wf.source, [...at, "source"]));
        return;
      }
      diags.push(...findSecretsInFile(wf.source, content, [...at, "source"]));
    }
    const permissions = wf.permissions.length === 3 ? `0${wf.permissions}` : wf.permissions;
    writeFiles.push({ path, content: content ?? "", permissions, owner: wf.owner, defer: wf.defer, append: wf.append });
  });
  // A file at /etc/docker would make /etc/docker/daemon.json impossible (and
  // cloud-init's write_files fail half-way): no path may be another's directory.
  config.user_data.write_files.forEach((wf, i) => {
    const path = posix.normalize(wf.path);
    if (pathProblem(wf.path)) return;
    const inside = [
      ...config.user_data.write_files.map((o, j) => [posix.normalize(o.path), `write_files[${j}]`] as const),
      ...[...RESERVED_PATHS].map((r) => [r, "dockinit"] as const),
    ].find(([other]) => other.startsWith(`${path}/`));
    if (inside) diags.push(diagnostic("DI046", `${path} is a directory of ${inside[0]} (written by ${inside[1]}), so it cannot be a file`, ["user_data", "write_files", i, "path"]));
    const under = [...RESERVED_PATHS].find((r) => path.startsWith(`${r}/`));
    if (under) diags.push(diagnostic("DI044", `${path} would make ${under}, which dockinit writes, a directory`, ["user_data", "write_files", i, "path"]));
  });

  const parts: UserPart[] = [];
  config.user_data.parts.forEach((p, i) => {
    const at = ["user_data", "parts", i];
    if (!PART_TYPES.has(p.type)) {
      diags.push(diagnostic("DI050", `text/${p.type} is not a part type cloud-init handles`, [...at, "type"], `use one of: ${[...PART_TYPES].join(", ")}`));
    }
    if (!isSafeRelative(p.file)) {
      diags.push(diagnostic("DI042", `${JSON.stringify(p.file)} is outside the configuration directory`, [...at, "file"]));
      return;
    }
    const content = files.read(p.file);
    if (content === undefined) {
      diags.push(unreadable(files, p.file, [...at, "file"]));
      return;
    }
    diags.push(...findSecretsInFile(p.file, content, [...at, "file"]));
    const filename = p.filename ?? posix.basename(p.file);
    if (!/^[A-Za-z0-9._-]{1,128}$/.test(filename)) {
      diags.push(diagnostic("DI046", `${JSON.stringify(filename)} is not a plain file name`, [...at, p.filename ? "filename" : "file"], "use letters, digits, '.', '_' and '-'"));
    }
    const mismatch = partContentProblem(p.type, content);
    if (mismatch) diags.push(diagnostic("DI056", `${p.file} ${mismatch}`, [...at, "type"]));
    parts.push({ file: p.file, filename, contentType: `text/${p.type}`, mergeType: p.merge_type, content });
  });
  if (parts.length > 0 && config.user_data.format === "cloud-config") {
    diags.push(diagnostic("DI051", "parts are given but format is cloud-config", ["user_data", "format"]));
  }
  config.user_data.packages.forEach((pkg, i) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9+.:=~_-]{0,127}$/.test(pkg)) {
      diags.push(diagnostic("DI048", `${JSON.stringify(pkg)} is not a package name`, ["user_data", "packages", i]));
    }
  });

  diags.push(...findSecrets(config));

  if (diags.some((d) => d.severity === "error")) return { diagnostics: diags };

  const dns: DnsServer[] = config.docker.daemon.dns.map((d) => {
    if (d === "vpc") return { kind: "vpc" } as const;
    const address = d === "amazon" ? AMAZON_RESOLVER : d;
    const c = parseCidr(address);
    return { kind: "literal", address: c?.address ?? address, family: c?.family ?? 4 } as const;
  });

  const model: Model = {
    name: config.name,
    docker: {
      install: config.docker.install,
      dns,
      dnsSearch: config.docker.daemon.dns_search,
      settings: config.docker.daemon.settings,
      firewall: dockerFirewall,
    },
    ephemeral: {
      enabled: ep.enabled,
      match,
      to,
      protocols: ep.protocols,
      sources: ep.sources.includes("any") ? [] : cidrs(ep.sources),
      hostRange: ep.host_range,
    },
    firewall: {
      ...chooseBackend(config.firewall.backend, dockerFirewall),
      // One name is a list of one: `external_interface: ens5` means what it always did.
      externalInterfaces: config.firewall.external_interface === "auto" ? "auto" : typeof config.firewall.external_interface === "string" ? [config.firewall.external_interface] : [...new Set(config.firewall.external_interface)],
      published: {
        default: config.firewall.published.default,
        rules: config.firewall.published.rules.map((r) => ({
          port: r.port,
          protocol: r.protocol,
          allowAny: r.allow.includes("any"),
          allowLoopback: r.allow.includes("loopback"),
          allow: cidrs(r.allow.filter((a) => a !== "any" && a !== "loopback")),
        })),
      },
      containers: {
        blockMetadata: config.firewall.containers.block_metadata,
        block: cidrs(config.firewall.containers.block),
        egressAllow: cidrs(config.firewall.containers.egress_allow),
      },
    },
    portForwards: config.port_forwards.map((f) => {
      const t = parseHostPort(f.to)!;
      return { listen: f.listen, protocol: f.protocol, family: t.family, address: t.address, port: t.port };
    }),
    userData: {
      format: config.user_data.format,
      gzip: config.user_data.gzip,
      parts,
      writeFiles,
      packages: config.user_data.packages,
      runcmd: config.user_data.runcmd,
      ...(config.user_data.cloud_init !== undefined ? { cloudInit: config.user_data.cloud_init } : {}),
    },
    launchTemplate: config.launch_template && {
      name: config.launch_template.name,
      region: config.launch_template.region,
      sourceVersion: String(config.launch_template.source_version),
      setDefault: config.launch_template.set_default,
    },
    rollout: {
      autoScalingGroups: config.rollout.auto_scaling_groups,
      minHealthyPercentage: config.rollout.min_healthy_percentage,
      maxHealthyPercentage: config.rollout.max_healthy_percentage,
      instanceWarmup: config.rollout.instance_warmup,
      checkpoints: config.rollout.checkpoints,
      checkpointDelay: config.rollout.checkpoint_delay,
      alarms: config.rollout.alarms,
      bakeTime: config.rollout.bake_time,
      skipMatching: config.rollout.skip_matching,
      autoRollback: config.rollout.auto_rollback,
      protectedInstances: config.rollout.protected_instances,
      standbyInstances: config.rollout.standby_instances,
      verify: config.rollout.verify,
    },
  };
  return { model, diagnostics: diags };
}
