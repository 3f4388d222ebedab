// The catalogue of every diagnostic dockinit can report. Codes are stable:
// users grep for them, CI scripts match on them, the README lists them. Add
// new codes at the end of their group; never renumber or reuse one.

export type Severity = "error" | "warning";

export interface CatalogueEntry {
  /** One-line summary used by `dockinit explain-code` and the README. */
  title: string;
  /** Default hint: how to fix it. A rule may give a more specific one. */
  hint: string;
  severity: Severity;
}

export const catalogue = {
  // ── Reading the file ────────────────────────────────────────────────
  DI001: { title: "YAML syntax error", hint: "fix the YAML syntax at the marked position", severity: "error" },
  DI002: { title: "duplicate key", hint: "remove one of the two keys; YAML keeps only one and dockinit will not guess which", severity: "error" },
  DI003: { title: "YAML feature not allowed", hint: "write the value out in full; anchors, aliases, merge keys and custom tags are not accepted in dockinit.yaml", severity: "error" },
  DI004: { title: "configuration file too large", hint: "dockinit.yaml is limited to 256 KiB; move large file contents into files referenced with `source:`", severity: "error" },
  DI005: { title: "configuration file not found or unreadable", hint: "pass the path with -c, or run `dockinit init` to write a starter dockinit.yaml", severity: "error" },
  DI006: { title: "not a UTF-8 text file", hint: "give a YAML file in UTF-8 text (convert other encodings, e.g. `iconv -f latin1 -t utf-8`); a value that needs a control character writes it as an escape in double quotes, e.g. \"\\u001b\"", severity: "error" },

  // ── Schema ──────────────────────────────────────────────────────────
  DI010: { title: "unknown key", hint: "remove the key or correct its spelling", severity: "error" },
  DI011: { title: "wrong type", hint: "give a value of the type the message names", severity: "error" },
  DI012: { title: "value not allowed", hint: "use one of the allowed values", severity: "error" },
  DI013: { title: "missing required key", hint: "add the key", severity: "error" },
  DI014: { title: "unsupported configuration version", hint: "set `version: 1`", severity: "error" },
  DI015: { title: "list too long", hint: "shorten the list", severity: "error" },
  DI016: { title: "value out of range", hint: "use a value inside the allowed range", severity: "error" },
  DI017: { title: "invalid name", hint: "use lower-case letters, digits and '-' (at most 63 characters)", severity: "error" },
  DI018: { title: "number with a leading zero", hint: "write the number in plain decimal: YAML 1.2 (dockinit) reads 010 as 10, YAML 1.1 (cloud-init, many editors) as 8", severity: "error" },

  // ── Addresses and ports ─────────────────────────────────────────────
  DI020: { title: "not an IP address or CIDR", hint: "write an address like 203.0.113.7, a network like 203.0.113.0/24, or 2001:db8::/32", severity: "error" },
  DI021: { title: "invalid port range", hint: "write LOW-HIGH with 1024 <= LOW <= HIGH <= 65535, e.g. 49152-61000", severity: "error" },
  DI022: { title: "too many DNS servers", hint: "resolv.conf honours at most 3 nameservers; keep the 3 that matter", severity: "error" },
  DI023: { title: "invalid DNS server", hint: "use `vpc`, `amazon` or an IPv4/IPv6 address", severity: "error" },
  DI024: { title: "port forward to a loopback address", hint: "forwarding to 127.0.0.0/8 needs net.ipv4.conf.*.route_localnet=1, which exposes host-local services to the network (CVE-2020-8558); let the service listen on the host's address (or 0.0.0.0) and forward to that, or run it in a container and publish its port", severity: "error" },
  DI025: { title: "invalid network interface name", hint: "an interface name is a kernel name: 1-15 characters of letters, digits, '.', '_', '-', '@', not starting with '-', and a trailing '+' (within the 15) for every name it starts (ens+); or `auto` alone for every interface but lo, Docker's bridges and veths", severity: "error" },
  DI026: { title: "invalid forward target", hint: "write ADDRESS:PORT, e.g. 198.51.100.10:80 or [2001:db8::10]:80", severity: "error" },
  DI027: { title: "port forward to an instance service address", hint: "169.254.0.0/16 and fd00:ec2::/32 hold the instance metadata service (the instance's credentials), its DNS and time servers; a forward would let every client of the host port, containers included, reach them. Forward to a container or host address instead", severity: "error" },
  DI028: { title: "match and to ranges do not overlap sensibly", hint: "`to` must be a range the upstream ACL admits, and `match` the ports to rewrite; make `match` include ports outside `to`", severity: "warning" },
  DI029: { title: "invalid DNS search domain", hint: "use a domain name like internal.example (letters, digits, '-' and '.')", severity: "error" },
  DI030: { title: "duplicate published port rule", hint: "give each port/protocol pair one rule; merge the allow lists", severity: "error" },
  // DI032 is retired: the nftables backend enforces every policy since issue 10 (kept so the code is never reused).
  DI032: { title: "policy not available with the nftables backend (retired: no longer reported)", hint: "published-port rules, egress_allow and port_forwards are enforced by both backends", severity: "error" },
  DI031: { title: "daemon setting managed by dockinit", hint: "set DNS with docker.daemon.dns / dns_search, not in docker.daemon.settings", severity: "error" },
  DI033: { title: "IPv4 catch-all without its IPv6 counterpart", hint: "0.0.0.0/0 covers IPv4 only; add `::/0` to the same list (or write `any` where the list accepts it) so IPv6 is treated alike", severity: "warning" },
  DI034: { title: "network written with host bits set", hint: "write the network address itself (10.0.0.0/8, not 10.0.0.1/8), or a /32 (/128 for IPv6) for one address", severity: "warning" },
  DI035: { title: "route_localnet is not supported", hint: "dockinit never sets net.ipv4.conf.*.route_localnet: with it, every neighbour on the link can reach the host's 127.0.0.1 services (CVE-2020-8558). Remove `route_localnet` (or set it to false) and forward to an address the service listens on beside loopback (the host's address, 0.0.0.0), or publish it from a container", severity: "error" },

  // ── Files and user-data ─────────────────────────────────────────────
  DI040: { title: "file mode given as a number", hint: "quote the mode: permissions: \"0644\" (YAML reads 0644 as the number 644)", severity: "error" },
  DI041: { title: "invalid file mode", hint: "write an octal mode as a quoted string, e.g. \"0644\" or \"0755\"", severity: "error" },
  DI042: { title: "path escapes the configuration directory", hint: "keep `source:` and part `file:` paths inside the directory of dockinit.yaml", severity: "error" },
  DI043: { title: "file not found", hint: "check the path; it is relative to the directory of dockinit.yaml", severity: "error" },
  DI044: { title: "path written by dockinit itself", hint: "dockinit writes this file; remove the entry or choose another path", severity: "error" },
  DI045: { title: "write_files entry needs exactly one of content or source", hint: "give either `content:` or `source:`", severity: "error" },
  DI046: { title: "invalid file path", hint: "use an absolute path without '..' segments, e.g. /etc/motd", severity: "error" },
  DI047: { title: "user-data over EC2's 16,384-byte limit", hint: "make user-data smaller: move large files out of it (fetch them at boot, or bake them into the AMI), or set `user_data.gzip: auto` if it is `never`", severity: "error" },
  DI048: { title: "invalid package name", hint: "use a distribution package name (letters, digits, '+', '-', '.', ':', '=')", severity: "error" },
  DI049: { title: "invalid owner", hint: "write USER or USER:GROUP with letters, digits, '_' and '-'", severity: "error" },
  DI050: { title: "invalid part type", hint: "use a cloud-init part type such as x-shellscript, cloud-config, x-shellscript-per-boot, jinja2, cloud-boothook", severity: "error" },
  DI051: { title: "parts need MIME", hint: "set `user_data.format: mime` or `auto` when `parts` are given", severity: "error" },
  DI052: { title: "duplicate write_files path", hint: "write each path once", severity: "error" },
  DI053: { title: "invalid merge type", hint: "write cloud-init merge rules like list(append)+dict(recurse_array)+str(): list, dict or str, each with its options in parentheses", severity: "error" },
  DI054: { title: "referenced file too large", hint: "a `source:` or part file is limited to 256 KiB; user-data itself is limited to 16 KiB, so fetch large files at boot instead", severity: "error" },
  DI055: { title: "cloud-config would be read as MIME", hint: "cloud-init treats user-data whose first 4096 bytes contain \"MIME-Version:\" as a MIME message and would lose the cloud-config; set `user_data.format: mime` (or auto), or remove that text from the values near the top (daemon settings)", severity: "error" },
  DI057: { title: "userland-proxy-path set under default deny", hint: "dockinit sets Docker's userland-proxy-path to its own wrapper so that `published.default: deny` also closes docker-proxy's IPv6 path; remove `userland-proxy-path` from docker.daemon.settings (or set `userland-proxy: false`)", severity: "error" },
  DI058: { title: "iptables backend beside Docker's nftables firewall", hint: "Docker's nftables firewall has no DOCKER-USER chain and its NAT runs at the same priority as iptables' nat, so the order of the two is undefined; use `firewall.backend: nftables` (or auto), whose table runs before Docker's", severity: "error" },
  DI056: { title: "part content does not match its type", hint: "a shell-script part starts with #!, a cloud-config part is a YAML mapping (starting #cloud-config); fix the file or its `type`", severity: "error" },

  // ── Security ────────────────────────────────────────────────────────
  DI060: { title: "value looks like a secret", hint: "user-data is readable by every process on the instance through the metadata service (and by anyone with ec2:DescribeLaunchTemplateVersions); fetch secrets at boot from SSM Parameter Store or Secrets Manager with the instance role instead", severity: "warning" },
  DI061: { title: "world-writable file", hint: "any local user could change this file, which root reads or runs; use a mode without the write bit for others, e.g. \"0644\" or \"0755\"", severity: "warning" },

  // ── Writing the bundle (render -o DIR) ─────────────────────────────
  DI080: { title: "output folder holds what dockinit did not write", hint: "render writes only into a folder that is new, empty, or holds a previous render alone: name another with -o, or move those entries away", severity: "error" },
  DI081: { title: "output folder holds the configuration file", hint: "the output folder is dockinit's alone: name another with -o (by default out/), not one holding the configuration file", severity: "error" },

  // ── Rollout (Auto Scaling instance refresh) ─────────────────────────
  DI070: { title: "invalid checkpoints", hint: "list checkpoint percentages between 1 and 100 in increasing order, ending with 100, e.g. [20, 50, 100]", severity: "error" },
  DI071: { title: "Auto Scaling group listed twice", hint: "name each group once", severity: "error" },
  DI072: { title: "healthy percentages do not fit", hint: "keep min_healthy_percentage <= max_healthy_percentage and their difference at most 100 (AWS's rule), e.g. 90 and 100", severity: "error" },
  DI073: { title: "checkpoint_delay without checkpoints", hint: "add checkpoints (e.g. [20, 50, 100]) or remove checkpoint_delay", severity: "error" },

  // ── cloud-init target (check/render --cloud-init, user_data.cloud_init) ──
  DI090: { title: "unknown cloud-init target", hint: "name a cloud-init version as a quoted string, MAJOR.MINOR (e.g. \"22.2\"; `cloud-init --version` on an instance prints it), or an OS name such as al2023, debian-12 or ubuntu-24.04", severity: "error" },
  DI091: { title: "no schema for this cloud-init version", hint: "dockinit ships the cloud-config schemas of cloud-init 22.2, 22.4, 25.1 and 26.2: name a version from 22.2 to 26.2", severity: "error" },
  DI092: { title: "not valid for the target cloud-init's cloud-config schema", hint: "change the value to what the message says that cloud-init's schema allows (its docs: https://cloudinit.readthedocs.io, choose the version)", severity: "error" },
  DI093: { title: "cloud-config key newer than the target cloud-init", hint: "remove the key, or name the cloud-init your images really carry if it is that new (--cloud-init, user_data.cloud_init)", severity: "error" },
  DI094: { title: "cloud-config key may not exist in the target cloud-init", hint: "dockinit ships no schema between the two versions named: check with `cloud-init schema` on an instance, or name a shipped version your images carry", severity: "warning" },
  DI095: { title: "cloud-config key removed before the target cloud-init", hint: "remove the key: the target cloud-init no longer has the module that read it", severity: "error" },
  DI096: { title: "cloud-config key no cloud-init version knows", hint: "check its spelling: no cloud-config schema from 22.2 to 26.2 has this key, and the target cloud-init ignores it", severity: "warning" },
} as const satisfies Record<string, CatalogueEntry>;

export type DiagnosticCode = keyof typeof catalogue;

export interface Diagnostic {
  code: DiagnosticCode;
  severity: Severity;
  message: string;
  hint: string;
  /** The configuration file, as the user named it. */
  file?: string;
  /** YAML path, e.g. ["firewall", "published", "rules", 0, "allow", 0]. */
  path: (string | number)[];
  /** 1-based; 0 when the position is unknown (e.g. a rendered-size error). */
  line: number;
  col: number;
}

/** Build a diagnostic from the catalogue; position is filled in later by the loader. */
export function diagnostic(
  code: DiagnosticCode,
  message: string,
  path: (string | number)[] = [],
  hint?: string,
): Diagnostic {
  const entry: CatalogueEntry = catalogue[code];
  return { code, severity: entry.severity, message, hint: hint ?? entry.hint, path, line: 0, col: 0 };
}

/** Render a YAML path the way users write it: firewall.published.rules[0].allow[1] */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out === "" ? "(root)" : out;
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === "error");
}
