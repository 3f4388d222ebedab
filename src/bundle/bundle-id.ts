// The bundle id: which rendered bundle a host runs. The firewall script
// carries it as one line, `readonly BUNDLE_ID='<sha256 hex>'`, so the id of a
// launch-template version is found in its UserData (base64 → maybe gzip →
// cloud-config or MIME multipart, a part maybe quoted-printable) without
// anything else shipped. No AWS SDK here: `verify` and the tests use it alike.
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import type { Bundle } from "./render-bundle.js";

const LINE = /readonly BUNDLE_ID='([0-9a-f]{64})'/;

/** Gunzipping stops here: a gzip bomb in someone's template must not eat the memory. */
const MAX_DECODED_BYTES = 4 * 1024 * 1024;

/** Quoted-printable → text (soft line breaks joined, =XX decoded as bytes). */
function unquotePrintable(text: string): string {
  const joined = text.replace(/=\r?\n/g, "");
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    const hex = joined[i] === "=" ? /^[0-9A-Fa-f]{2}$/.exec(joined.slice(i + 1, i + 3)) : null;
    if (hex) {
      bytes.push(parseInt(hex[0], 16));
      i += 2;
    } else bytes.push(...Buffer.from(joined[i]!, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The BUNDLE_ID line's id in user-data text (plain, or a MIME part quoted-printable or base64), if any. */
export function findBundleId(text: string): string | undefined {
  const plain = LINE.exec(text)?.[1];
  if (plain) return plain;
  if (/quoted-printable/i.test(text)) {
    const qp = LINE.exec(unquotePrintable(text))?.[1];
    if (qp) return qp;
  }
  // A base64 MIME part: every run of base64 lines long enough to hold the line.
  for (const m of text.matchAll(/(?:^[A-Za-z0-9+/=]{16,}\r?\n){2,}/gm)) {
    const inner = LINE.exec(Buffer.from(m[0].replace(/\s+/g, ""), "base64").toString("utf8"))?.[1];
    if (inner) return inner;
  }
  return undefined;
}

/** A launch-template version's UserData (base64, as EC2 returns it) → its bundle id, if it has one. */
export function bundleIdOfUserData(base64: string | undefined): string | undefined {
  if (!base64) return undefined;
  let bytes: Buffer = Buffer.from(base64, "base64");
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_DECODED_BYTES });
    } catch {
      return undefined;
    }
  }
  return findBundleId(bytes.toString("utf8"));
}

/**
 * The id of a bundle rendered here: the one place `verify` asks. The render's
 * own (issue 29: `bundle.bundleId` and manifest.json's `bundleId`, computed by
 * render-bundle's bundleIdOf) when it has one, else the BUNDLE_ID line of the
 * firewall script in its cloud-config, else — a render whose script has no
 * such line — the sha256 of its files, which no host reports (so nothing is
 * taken for in place by mistake). Once every render has the id, this is
 * `bundle.bundleId`.
 */
export function renderedBundleId(bundle: Pick<Bundle, "cloudConfig" | "files" | "manifest">): string {
  const own = (bundle as unknown as { bundleId?: unknown }).bundleId ?? (bundle.manifest as unknown as { bundleId?: unknown }).bundleId;
  if (typeof own === "string" && /^[0-9a-f]{64}$/.test(own)) return own;
  const inScript = findBundleId(bundle.cloudConfig);
  if (inScript) return inScript;
  const h = createHash("sha256");
  for (const f of bundle.files) h.update(`${f.path}\0${f.content}\0`);
  return h.digest("hex");
}
