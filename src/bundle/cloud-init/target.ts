// Which cloud-init a `--cloud-init` target (or user_data.cloud_init) names,
// and which shipped schema checks it. Pure: the shipped versions come in from
// cloud-init-schemas/keys.json (read by check.ts), the OS names are here.
import type { DiagnosticCode } from "../../config/errors.js";

/** One shipped schema, as keys.json lists it. */
export interface ShippedSchema {
  /** MAJOR.MINOR, what targets name: "22.2". */
  version: string;
  /** The upstream tag the file is from: "22.2.2". */
  tag: string;
  /** Its file in cloud-init-schemas/. */
  file: string;
  /** The schema itself refuses top-level keys it does not list (25.1 and later). */
  refusesUnknownKeys: boolean;
}

/** A top-level key's history over the shipped schemas (scripts/cloud-init-keys.mjs). */
export interface KeyHistory {
  /** The oldest shipped version whose schema has it. */
  first: string;
  /** The newest shipped version whose schema has it, when the newest has it not. */
  last?: string;
  /** The definitions that describe it in `first`'s schema (cc_wireguard, base_config, …). */
  in: string;
  /** Only cloud-init's own configuration describes it (not a cc_* module): older than its schema entry. */
  core?: true;
}

export interface KeyTable {
  /** Oldest first. */
  schemas: ShippedSchema[];
  keys: Record<string, KeyHistory>;
}

/**
 * OS names a target may use, each with the oldest cloud-init its images
 * carry: the one of its first release (an image from later carries the same
 * or newer, so a config that passes this one passes those). The README's
 * table is this table.
 */
export const OS_TARGETS: readonly { name: string; os: string; cloudInit: string }[] = [
  { name: "al2", os: "Amazon Linux 2", cloudInit: "19.3" },
  { name: "al2023", os: "Amazon Linux 2023", cloudInit: "22.2.2" },
  { name: "debian-12", os: "Debian 12 (bookworm)", cloudInit: "22.4.2" },
  { name: "debian-13", os: "Debian 13 (trixie)", cloudInit: "25.1" },
  { name: "ubuntu-22.04", os: "Ubuntu 22.04 LTS as released (later images get newer cloud-init through updates)", cloudInit: "22.1" },
  { name: "ubuntu-24.04", os: "Ubuntu 24.04 LTS as released (later images get newer cloud-init through updates)", cloudInit: "24.1.3" },
];

/** What a target resolved to. */
export interface CloudInitTarget {
  /** As the user wrote it: "22.2", "al2023". */
  asked: string;
  /** The cloud-init version, MAJOR.MINOR: "22.2", "24.1". */
  version: string;
  /** The OS entry, when an OS name was given. */
  os?: (typeof OS_TARGETS)[number];
  /** The newest shipped schema not newer than `version`: what the cloud-config is validated against. */
  schema: ShippedSchema;
  /** The oldest shipped schema newer than `version`, when `version` lies between two shipped ones. */
  next?: ShippedSchema;
}

export interface TargetProblem {
  code: DiagnosticCode;
  message: string;
  hint?: string;
}

/** "22.2" / "22.2.2" / "22.10" → [22, 2] / [22, 2] / [22, 10]: compared as numbers, so 22.10 is after 22.4. */
export function parseVersion(text: string): [number, number] | undefined {
  const m = /^(\d{1,4})\.(\d{1,4})(?:\.\d{1,4})?$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function compareVersions(a: string, b: string): number {
  const [x0, x1] = parseVersion(a) ?? [0, 0];
  const [y0, y1] = parseVersion(b) ?? [0, 0];
  return x0 - y0 || x1 - y1;
}

const osNames = () => OS_TARGETS.map((o) => o.name).join(", ");

/**
 * A target's cloud-init and the shipped schema that checks it. A version
 * between two shipped schemas (22.3, 23.x, 24.x) is validated against the
 * older one, the newest not newer than it; the key check (check.ts) tells
 * keys certainly newer than it (errors) from keys only the next shipped
 * schema has, which it may or may not have (warnings). Older than the oldest
 * or newer than the newest shipped schema: no schema to check with (DI091).
 */
export function resolveTarget(asked: string, shipped: readonly ShippedSchema[]): { target: CloudInitTarget; problem?: undefined } | { target?: undefined; problem: TargetProblem } {
  const text = asked.trim();
  const os = OS_TARGETS.find((o) => o.name === text.toLowerCase());
  const parsed = parseVersion(os ? os.cloudInit : text);
  if (!parsed) {
    return { problem: { code: "DI090", message: `${JSON.stringify(asked)} is neither a cloud-init version nor an OS name dockinit knows (${osNames()})` } };
  }
  const version = `${parsed[0]}.${parsed[1]}`;
  const oldest = shipped[0]!;
  const newest = shipped[shipped.length - 1]!;
  const whose = os ? `${os.name} (${os.os}) carries cloud-init ${os.cloudInit},` : `cloud-init ${version} is`;
  const list = shipped.map((s) => s.version).join(", ");
  if (compareVersions(version, oldest.version) < 0) {
    return {
      problem: {
        code: "DI091",
        message: `${whose} older than ${oldest.version}, the oldest cloud-init whose schema dockinit ships (${list})`,
        hint: os
          ? `if your images carry a newer cloud-init (\`cloud-init --version\`), name that version, e.g. --cloud-init ${oldest.version}; else leave the target out: dockinit cannot check for cloud-init ${version}`
          : `name a version from ${oldest.version} to ${newest.version}, or leave the target out: dockinit cannot check for cloud-init ${version}`,
      },
    };
  }
  if (compareVersions(version, newest.version) > 0) {
    return {
      problem: {
        code: "DI091",
        message: `${whose} newer than ${newest.version}, the newest cloud-init whose schema dockinit ships (${list})`,
        hint: `name ${newest.version} (keys newer than it are refused), or update dockinit to one that ships cloud-init ${version}'s schema`,
      },
    };
  }
  let schema = oldest;
  for (const s of shipped) if (compareVersions(s.version, version) <= 0) schema = s;
  const next = schema.version === version ? undefined : shipped.find((s) => compareVersions(s.version, version) > 0);
  return { target: { asked, version, ...(os ? { os } : {}), schema, ...(next ? { next } : {}) } };
}

/** The target in words, for messages: "cloud-init 22.2", "cloud-init 22.2 of al2023". */
export function targetName(t: CloudInitTarget): string {
  return t.os ? `cloud-init ${t.version} of ${t.os.name}` : `cloud-init ${t.version}`;
}
