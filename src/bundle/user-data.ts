// Packaging: cloud-config alone or MIME multipart, then gzip — encoding
// strictly last, as terraform's cloudinit provider does. The MIME boundary is
// chosen from the content (the first one no part contains), so the same input
// gives the same bytes.
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

/**
 * Quoted-printable (RFC 2045 6.7) of UTF-8 text, with LF line ends: what
 * Python's email package decodes for cloud-init. Printable ASCII stays as it
 * is (so the part stays readable and gzip still compresses it), "=", other
 * bytes and blanks at a line end become =XX, lines are soft-broken at 76.
 */
export function quotedPrintable(text: string): string {
  return text.split("\n").map(quotedPrintableLine).join("\n");
}

/** Characters quoted-printable may carry as they are ("=" is its escape). */
const PLAIN_LINE = /^[\x21-\x3c\x3e-\x7e \t]*$/;
const NOT_PLAIN = /[^\x21-\x3c\x3e-\x7e \t]/gu;
const escapeBytes = (ch: string): string => {
  let out = "";
  for (const b of Buffer.from(ch, "utf8")) out += `=${b < 16 ? "0" : ""}${b.toString(16).toUpperCase()}`;
  return out;
};

function quotedPrintableLine(line: string): string {
  // Most lines of a script are plain and short: nothing to do.
  let enc = PLAIN_LINE.test(line) ? line : line.replace(NOT_PLAIN, escapeBytes);
  // A blank at the end of a line would be lost in transport.
  if (enc.endsWith(" ")) enc = `${enc.slice(0, -1)}=20`;
  else if (enc.endsWith("\t")) enc = `${enc.slice(0, -1)}=09`;
  if (enc.length <= 75) return enc;
  // Soft breaks ("=" at a line end) keep lines within 76, never inside "=XX";
  // every "=" in enc starts an escape.
  const out: string[] = [];
  let start = 0;
  while (enc.length - start > 75) {
    let end = start + 75;
    if (enc[end - 1] === "=") end -= 1;
    else if (enc[end - 2] === "=") end -= 2;
    out.push(`${enc.slice(start, end)}=`);
    start = end;
  }
  out.push(enc.slice(start));
  return out.join("\n");
}

function mimePart(contentType: string, filename: string, content: string, mergeType?: string): string {
  // 7bit only for ASCII. UTF-8 text goes quoted-printable: cloud-init parses
  // user-data as a str, and Python's email package hands back an 8bit part of
  // a str message encoded with raw-unicode-escape, so "é" would reach the
  // instance as an invalid byte and "—" as the six characters \u2014.
  // (base64 would be as correct, but gzip compresses it a third less: the
  // kitchen-sink bundle went from 11 to 20 KB, over EC2's 16 KB.)
  // eslint-disable-next-line no-control-regex
  const ascii = /^[\u0000-\u007f]*$/.test(content);
  const encoding = ascii ? "7bit" : "quoted-printable";
  const headers = [
    `Content-Type: ${contentType}; charset="utf-8"`,
    "MIME-Version: 1.0",
    `Content-Transfer-Encoding: ${encoding}`,
    `Content-Disposition: attachment; filename="${filename}"`,
    ...(mergeType ? [`X-Merge-Type: ${mergeType}`] : []),
  ];
  const body = content.endsWith("\n") ? content : `${content}\n`;
  return `${headers.join("\n")}\n\n${ascii ? body : quotedPrintable(body)}`;
}

/**
 * The first ==DOCKINIT-BOUNDARY-n== that no part contains: deterministic, and
 * never inside a part even when one embeds an earlier dockinit bundle. (No
 * content hash: hashing is what loads node:crypto, ~3 ms of `dockinit check`.)
 */
function boundaryFor(bodies: string[]): string {
  const taken = new Set<number>();
  // A lookahead, so that overlapping candidates ("...-0==DOCKINIT-BOUNDARY-1==") are all seen.
  for (const b of bodies) for (const m of b.matchAll(/(?===DOCKINIT-BOUNDARY-(\d+)==)/g)) taken.add(Number(m[1]));
  let n = 0;
  while (taken.has(n)) n++;
  return `==DOCKINIT-BOUNDARY-${n}==`;
}

export function buildMime(cloudConfig: string, parts: UserPart[]): string {
  const bodies = [
    mimePart("text/cloud-config", "cloud-config.yaml", cloudConfig),
    ...parts.map((p) => mimePart(p.contentType, p.filename, p.content, p.mergeType)),
  ];
  const boundary = boundaryFor(bodies);
  return [
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    "MIME-Version: 1.0",
    "",
    ...bodies.flatMap((b) => [`--${boundary}`, b.replace(/\n$/, "")]),
    `--${boundary}--`,
    "",
  ].join("\n");
}

/**
 * cloud-init (user_data.convert_string) takes any user-data whose first 4096
 * bytes contain "mime-version:", in any case, for a MIME message: a plain
 * cloud-config with that text near the top (a daemon setting, say) would be
 * parsed as mail headers and lost.
 */
export function readAsMime(cloudConfig: string): boolean {
  return Buffer.from(cloudConfig, "utf8").subarray(0, 4096).toString("latin1").toLowerCase().includes("mime-version:");
}

export function packUserData(model: Model, cloudConfig: string): PackedUserData {
  const format =
    model.userData.format === "auto" ? (model.userData.parts.length > 0 || readAsMime(cloudConfig) ? "mime" : "cloud-config") : model.userData.format;
  const text = format === "mime" ? buildMime(cloudConfig, model.userData.parts) : cloudConfig;
  const raw = Buffer.from(text, "utf8");
  const gzip = model.userData.gzip === "always" || (model.userData.gzip === "auto" && raw.length > USER_DATA_BUDGET);
  // gzipSync writes mtime 0 and no file name: deterministic bytes. zlib's
  // default level 6 takes half the time of level 9 for a few dozen bytes
  // more; level 9 is used when those bytes decide the budget.
  // (node:zlib is loaded here, on first use: with node:stream under it, its
  // import costs ~2 ms of every start, gzip or not.)
  let bytes = raw;
  if (gzip) {
    const { gzipSync } = process.getBuiltinModule("node:zlib");
    bytes = gzipSync(raw, { level: 6 });
    if (bytes.length > USER_DATA_BUDGET) bytes = gzipSync(raw, { level: 9 });
  }
  return { bytes, format, encoding: gzip ? "gzip" : "none", rawBytes: raw.length };
}

