// Packaging: cloud-config alone or MIME multipart, then gzip — encoding
// strictly last, as terraform's cloudinit provider does. The MIME boundary is
// derived from the content, so the same input gives the same bytes.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import type { Model, UserPart } from "../model.js";

/** EC2 refuses user-data larger than this (before base64). */
export const USER_DATA_BUDGET = 16_384;

export interface PackedUserData {
  bytes: Buffer;
  format: "cloud-config" | "mime";
  encoding: "gzip" | "none";
  /** Size before gzip. */
  rawBytes: number;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

function mimePart(contentType: string, filename: string, content: string, mergeType?: string): string {
  // 7bit is only honest for ASCII with short lines; 8bit covers UTF-8 text.
  // eslint-disable-next-line no-control-regex
  const encoding = /^[\u0000-\u007f]*$/.test(content) ? "7bit" : "8bit";
  const headers = [
    `Content-Type: ${contentType}; charset="utf-8"`,
    "MIME-Version: 1.0",
    `Content-Transfer-Encoding: ${encoding}`,
    `Content-Disposition: attachment; filename="${filename}"`,
    ...(mergeType ? [`X-Merge-Type: ${mergeType}`] : []),
  ];
  return `${headers.join("\n")}\n\n${content.endsWith("\n") ? content : `${content}\n`}`;
}

export function buildMime(cloudConfig: string, parts: UserPart[]): string {
  const bodies = [
    mimePart("text/cloud-config", "cloud-config.yaml", cloudConfig),
    ...parts.map((p) => mimePart(p.contentType, p.filename, p.content, p.mergeType)),
  ];
  const boundary = `==DOCKINIT-${sha256(bodies.join("\0")).slice(0, 24)}==`;
  if (bodies.some((b) => b.includes(boundary))) throw new Error("MIME boundary collides with a part's content");
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    "MIME-Version: 1.0",
    "",
    ...bodies.flatMap((b) => [`--${boundary}`, b.replace(/\n$/, "")]),
    `--${boundary}--`,
    "",
  ].join("\n");
}

export function packUserData(model: Model, cloudConfig: string): PackedUserData {
  const format = model.userData.format === "auto" ? (model.userData.parts.length > 0 ? "mime" : "cloud-config") : model.userData.format;
  const text = format === "mime" ? buildMime(cloudConfig, model.userData.parts) : cloudConfig;
  const raw = Buffer.from(text, "utf8");
  const gzip = model.userData.gzip === "always" || (model.userData.gzip === "auto" && raw.length > USER_DATA_BUDGET);
  // gzipSync writes mtime 0 and no file name: deterministic bytes.
  const bytes = gzip ? gzipSync(raw, { level: 9 }) : raw;
  return { bytes, format, encoding: gzip ? "gzip" : "none", rawBytes: raw.length };
}

export { sha256 };
