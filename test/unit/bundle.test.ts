// Packaging: format, gzip as the last step, the 16,384-byte budget, MIME parts
// and files read with `source:`. Table-driven where the shape allows.
import { randomBytes } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { quotedPrintable } from "../../src/bundle/user-data.js";
import { loadConfigString, renderBundle, USER_DATA_BUDGET } from "../../src/index.js";

const files: Record<string, string> = {
  "motd.txt": "hello from a file\n",
  "parts/a.sh": "#!/bin/sh\necho a\n",
  "parts/b.yaml": "#cloud-config\nbootcmd: [[true]]\n",
  "parts/overlap.sh": "#!/bin/sh\n# ==DOCKINIT-BOUNDARY-0==DOCKINIT-BOUNDARY-1==\n",
  "parts/nested.sh": "#!/bin/sh\n# --==DOCKINIT-BOUNDARY-0==\n# --==DOCKINIT-BOUNDARY-1==--\necho nested\n",
  // Incompressible and compressible payloads around the budget.
  "random.b64": randomBytes(30_000).toString("base64"),
  "text.txt": "the same line of text, again and again\n".repeat(800),
};

/** The user-data as text, gunzipped when the bundle was gzipped. */
const text = (b: { userData: Buffer; manifest: { userData: { encoding: string } } }) =>
  (b.manifest.userData.encoding === "gzip" ? gunzipSync(b.userData) : b.userData).toString("utf8");

function render(yaml: string) {
  const loaded = loadConfigString(`version: 1\ndocker: { daemon: { dns: [amazon] } }\n${yaml}`, { files: { read: (p) => files[p] } });
  return { loaded, ...renderBundle(loaded) };
}

describe("gzip and the 16,384-byte budget", () => {
  it.each([
    { gzip: "never", file: "text.txt", outcome: "DI047" },
    { gzip: "auto", file: "text.txt", outcome: "gzip" },
    { gzip: "always", file: "motd.txt", outcome: "gzip" },
    { gzip: "auto", file: "random.b64", outcome: "DI047" },
  ])("gzip: $gzip with $file → $outcome", ({ gzip, file, outcome }) => {
    const r = render(`user_data:\n  gzip: ${gzip}\n  write_files: [{ path: /opt/payload, source: ${file} }]\n`);
    if (outcome === "DI047") {
      expect(r.bundle).toBeUndefined();
      const d = r.diagnostics.find((x) => x.code === "DI047")!;
      expect(d.message).toMatch(/EC2 allows 16384\. Largest: (\S+ \d+ B, )?\/opt\/payload \d+ B/);
      return;
    }
    const b = r.bundle!;
    expect(b.manifest.userData.encoding).toBe(outcome);
    expect(b.userData.length).toBeLessThanOrEqual(USER_DATA_BUDGET);
    const decoded = text(b);
    expect(decoded.startsWith("#cloud-config\n")).toBe(true);
    expect(decoded).toContain("/opt/payload");
    expect(b.manifest.userData.rawBytes).toBe(Buffer.byteLength(decoded));
  });

  it("gzip output is deterministic (no timestamp, no file name)", () => {
    const a = render("user_data: { gzip: always }").bundle!.userData;
    const b = render("user_data: { gzip: always }").bundle!.userData;
    expect(a.equals(b)).toBe(true);
    expect(a.readUInt32LE(4)).toBe(0); // gzip MTIME field
  });
});

describe("formats and parts", () => {
  it("auto is a single cloud-config without parts, MIME with them", () => {
    expect(render("").bundle!.manifest.userData.format).toBe("cloud-config");
    expect(render("user_data: { parts: [{ file: parts/a.sh, type: x-shellscript }] }").bundle!.manifest.userData.format).toBe("mime");
  });

  it("MIME: dockinit's cloud-config first, then parts in order, each with its type, filename and merge type", () => {
    const b = render(
      "user_data:\n  parts:\n    - { file: parts/a.sh, type: x-shellscript }\n    - { file: parts/b.yaml, type: cloud-config, merge_type: 'list(append)+dict(recurse_array)+str()' }\n",
    ).bundle!;
    const mime = text(b);
    const boundary = /boundary="([^"]+)"/.exec(mime)![1]!;
    const parts = mime.split(`--${boundary}`).slice(1, -1);
    expect(parts.map((p) => /Content-Type: (\S+);/.exec(p)![1])).toEqual(["text/cloud-config", "text/x-shellscript", "text/cloud-config"]);
    expect(parts[1]).toContain('filename="a.sh"');
    expect(parts[2]).toContain("X-Merge-Type: list(append)+dict(recurse_array)+str()");
    expect(mime.endsWith(`--${boundary}--\n`)).toBe(true);
  });

  it.each([
    ["an ordinary part", "parts/a.sh", "==DOCKINIT-BOUNDARY-0=="],
    // A part that embeds earlier dockinit bundles: the boundary steps past every one it contains.
    ["a part containing boundaries 0 and 1", "parts/nested.sh", "==DOCKINIT-BOUNDARY-2=="],
    ["a part containing overlapping boundaries 0 and 1", "parts/overlap.sh", "==DOCKINIT-BOUNDARY-2=="],
  ])("the MIME boundary is deterministic and never inside a part: %s", (_name, file, expected) => {
    const config = `user_data: { parts: [{ file: ${file}, type: x-shellscript }] }`;
    const one = text(render(config).bundle!);
    expect(text(render(config).bundle!)).toBe(one);
    const boundary = /boundary="([^"]+)"/.exec(one)![1]!;
    expect(boundary).toBe(expected);
    // Exactly the delimiters dockinit wrote: two parts, so three lines; and no part contains the boundary.
    expect(one.split("\n").filter((l) => l.startsWith(`--${boundary}`))).toHaveLength(3);
    expect(files[file]).not.toContain(boundary);
  });
});

describe("user write_files, packages and runcmd", () => {
  it("source: reads the file relative to the config and ships it with its mode and owner", () => {
    const b = render("user_data:\n  write_files: [{ path: /etc/motd, source: motd.txt, permissions: '0600', owner: 'root:adm', defer: true }]\n").bundle!;
    const f = b.files.find((x) => x.path === "/etc/motd")!;
    expect(f).toMatchObject({ content: files["motd.txt"], permissions: "0600", owner: "root:adm", defer: true, origin: "user" });
    expect(b.cloudConfig).toMatch(/^-\n path: \/etc\/motd\n content: \|\n {2}hello from a file\n permissions: "0600"\n owner: root:adm\n defer: true/m);
  });

  it("packages and runcmd merge after dockinit's own boot step", () => {
    const b = render("user_data:\n  packages: [jq]\n  runcmd: [[systemctl, enable, --now, docker], 'echo done']\n").bundle!;
    expect(b.cloudConfig).toContain("packages:\n- jq\n");
    expect(b.cloudConfig).toMatch(/runcmd:\n- - \/usr\/local\/sbin\/dockinit-boot\n- - systemctl\n/);
    expect(b.cloudConfig).toContain("\n- echo done\n");
  });
});

describe("quoted-printable (MIME parts with non-ASCII text)", () => {
  /** RFC 2045 decoding: soft breaks ("=\n") vanish, =XX is one byte. */
  const decode = (qp: string) => {
    const joined = qp.replace(/=\n/g, "");
    const bytes: number[] = [];
    for (let i = 0; i < joined.length; i++) {
      if (joined[i] === "=") {
        bytes.push(parseInt(joined.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(joined.charCodeAt(i));
    }
    return Buffer.from(bytes).toString("utf8");
  };
  const text = fc.array(fc.oneof(fc.string({ unit: "grapheme", maxLength: 120 }), fc.constantFrom("", " ", "a=b", "x \t", "é".repeat(40), "-".repeat(75), "-".repeat(76))), { maxLength: 8 }).map((lines) => lines.join("\n"));

  it("decodes back to the text, with lines of at most 76 characters of printable ASCII", () => {
    fc.assert(
      fc.property(text, (t) => {
        const qp = quotedPrintable(t);
        expect(decode(qp)).toBe(t);
        for (const line of qp.split("\n")) {
          expect(line.length).toBeLessThanOrEqual(76);
          expect(line).toMatch(/^[\x20-\x7e\t]*$/);
          expect(line).not.toMatch(/[ \t]$/);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ["plain line kept as is", "echo hi", "echo hi"],
    ["'=' encoded", "a=b", "a=3Db"],
    ["trailing blank encoded", "x ", "x=20"],
    ["non-ASCII encoded by byte", "é", "=C3=A9"],
    ["long line soft-broken at 76", "a".repeat(80), `${"a".repeat(75)}=\naaaaa`],
  ])("%s", (_name, input, expected) => {
    expect(quotedPrintable(input)).toBe(expected);
  });
});
