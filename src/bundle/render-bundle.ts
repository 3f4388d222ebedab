// Model → every artifact → cloud-config → packed user-data → manifest.
// Pure: returns the bundle or diagnostics, writes nothing.
import { diagnostic, type Diagnostic } from "../config/errors.js";
import type { Model } from "../model.js";
import { byCodeUnit } from "../order.js";
import type { Artifact } from "../render/artifact.js";
import { renderBootScript } from "../render/boot-script.js";
import { renderCloudConfig } from "../render/cloud-config.js";
import { renderDaemonJson } from "../render/daemon-json.js";
import { renderFirewallScript } from "../render/firewall-script.js";
import { needsVpcResolver, renderUnits } from "../render/units.js";
import { renderVpcDnsScript } from "../render/vpc-dns-script.js";
import { needsProxyWrapper, renderProxyScript } from "../render/proxy-script.js";
import { needsForwardingSysctl, renderForwardingSysctl } from "../render/forwarding-sysctl.js";
import { sha256, sha256Js } from "../hash.js";
import { VERSION } from "../version.js";
import { packUserData, readAsMime, USER_DATA_BUDGET, type PackedUserData } from "./user-data.js";

export interface ManifestFile {
  path: string;
  mode: string;
  owner: string;
  origin: "dockinit" | "user";
  bytes: number;
  sha256: string;
  defer?: boolean;
}

export interface Manifest {
  name: string;
  generator: string;
  /** The bundle's id (see bundleIdOf): also in the firewall script and the table it loads. */
  bundleId: string;
  files: ManifestFile[];
  parts: { filename: string; contentType: string; bytes: number; sha256: string }[];
  userData: {
    format: "cloud-config" | "mime";
    encoding: "gzip" | "none";
    bytes: number;
    rawBytes: number;
    budget: number;
    sha256: string;
  };
}

export interface Bundle {
  /** Exact bytes EC2 receives (before the API's base64). */
  userData: Buffer;
  /** How userData is encoded (also manifest.userData.encoding). */
  encoding: "gzip" | "none";
  /** The #cloud-config document inside it. */
  cloudConfig: string;
  /** Every file the instance gets, sorted by path. */
  files: Artifact[];
  /**
   * The bundle's id: sha256 (hex) of its files rendered with the id left
   * empty (see bundleIdOf). The firewall script carries it (BUNDLE_ID) and
   * puts it into the rules it loads, so a host says which bundle it runs.
   */
  bundleId: string;
  /**
   * Computed on first read (its hashes load node:crypto, which `check` does
   * without), then kept; it describes the bundle as rendered, so read it
   * before changing `files`.
   */
  readonly manifest: Manifest;
}

export const GENERATOR = `dockinit ${VERSION}`;

export function renderArtifacts(model: Model, bundleId = ""): Artifact[] {
  const own: Artifact[] = [renderDaemonJson(model), renderFirewallScript(model, bundleId), ...renderUnits(model), renderBootScript(model)];
  if (needsVpcResolver(model)) own.push(renderVpcDnsScript(model));
  if (needsProxyWrapper(model)) own.push(renderProxyScript(model));
  if (needsForwardingSysctl(model)) own.push(renderForwardingSysctl(model));
  const user: Artifact[] = model.userData.writeFiles.map((f) => ({ ...f, origin: "user" as const }));
  return [...own.sort((a, b) => byCodeUnit(a.path, b.path)), ...user];
}

/**
 * The id of a bundle rendered with the id left empty: sha256 (hex) of its
 * files as out/ holds them, gzip aside: "user-data" (the text before any
 * gzip), then each "files/<host path>" in code-unit order of the path, each
 * entry as its path, a line feed, its length in bytes, a line feed, its bytes.
 * The length makes the framing unambiguous. Same input, same id; any byte of
 * any file changes it.
 */
export function bundleIdOf(rawUserData: Uint8Array | string, files: Pick<Artifact, "path" | "content">[]): string {
  const entries: [string, Buffer][] = [
    ["user-data", Buffer.from(rawUserData)],
    ...[...files].sort((a, b) => byCodeUnit(a.path, b.path)).map((f): [string, Buffer] => [`files${f.path}`, Buffer.from(f.content, "utf8")]),
  ];
  const parts = entries.flatMap(([path, bytes]) => [Buffer.from(`${path}\n${bytes.length}\n`, "utf8"), bytes]);
  return sha256Js(Buffer.concat(parts));
}

function manifestOf(model: Model, files: Artifact[], packed: PackedUserData, bundleId: string): Manifest {
  return {
    name: model.name,
    generator: GENERATOR,
    bundleId,
    files: [...files]
      .sort((a, b) => byCodeUnit(a.path, b.path))
      .map((f) => ({
        path: f.path,
        mode: f.permissions,
        owner: f.owner,
        origin: f.origin,
        bytes: Buffer.byteLength(f.content),
        sha256: sha256(f.content),
        ...(f.defer ? { defer: true } : {}),
      })),
    parts: model.userData.parts.map((p) => ({ filename: p.filename, contentType: p.contentType, bytes: Buffer.byteLength(p.content), sha256: sha256(p.content) })),
    userData: {
      format: packed.format,
      encoding: packed.encoding,
      bytes: packed.bytes.length,
      rawBytes: packed.rawBytes,
      budget: USER_DATA_BUDGET,
      sha256: sha256(packed.bytes),
    },
  };
}

/**
 * DI047's hint for this user-data: turning gzip on helps only when it is off,
 * so say so only then, and only as far as it goes (gzip is tried to find out;
 * this runs on the failure path alone).
 */
function oversizeHint(model: Model, cloudConfig: string, packed: PackedUserData): string {
  const moveOut = "move large files out of user-data (fetch them at boot, e.g. from S3 or SSM Parameter Store, or bake them into the AMI) or make them smaller";
  if (packed.encoding === "gzip") return `user-data is already gzipped (user_data.gzip: ${model.userData.gzip}); ${moveOut}`;
  const gzipped = packUserData({ ...model, userData: { ...model.userData, gzip: "always" } }, cloudConfig).bytes.length;
  if (gzipped <= USER_DATA_BUDGET) return `set \`user_data.gzip: auto\` (it is ${model.userData.gzip}): gzipped, user-data is ${gzipped} bytes`;
  return `gzip would not be enough (${gzipped} bytes gzipped); ${moveOut}, then set \`user_data.gzip: auto\``;
}

export function renderBundle(model: Model): { bundle?: Bundle; diagnostics: Diagnostic[] } {
  // Rendered once with the id left empty to find the id, then with it.
  const blank = renderArtifacts(model, "");
  const blankRaw = packUserData({ ...model, userData: { ...model.userData, gzip: "never" } }, renderCloudConfig(model, blank)).bytes;
  const bundleId = bundleIdOf(blankRaw, blank);
  const files = renderArtifacts(model, bundleId);
  const cloudConfig = renderCloudConfig(model, files);
  const packed = packUserData(model, cloudConfig);
  if (packed.format === "cloud-config" && readAsMime(cloudConfig)) {
    return { diagnostics: [diagnostic("DI055", "the cloud-config contains \"MIME-Version:\" in its first 4096 bytes; cloud-init would parse it as a MIME message", ["user_data", "format"])] };
  }
  if (packed.bytes.length > USER_DATA_BUDGET) {
    const largest = [...files, ...model.userData.parts.map((p) => ({ path: `part ${p.file}`, content: p.content }))]
      .map((f) => ({ path: f.path, bytes: Buffer.byteLength(f.content) }))
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 3)
      .map((f) => `${f.path} ${f.bytes} B`)
      .join(", ");
    const how = packed.encoding === "gzip" ? `${packed.rawBytes} bytes raw, ${packed.bytes.length} gzipped` : `${packed.bytes.length} bytes (gzip: ${model.userData.gzip})`;
    return {
      diagnostics: [diagnostic("DI047", `user-data is ${how}; EC2 allows ${USER_DATA_BUDGET}. Largest: ${largest}`, ["user_data"], oversizeHint(model, cloudConfig, packed))],
    };
  }
  let manifest: Manifest | undefined;
  const bundle: Bundle = {
    userData: packed.bytes,
    encoding: packed.encoding,
    cloudConfig,
    files,
    bundleId,
    get manifest() {
      return (manifest ??= manifestOf(model, files, packed, bundleId));
    },
  };
  return { bundle, diagnostics: [] };
}
