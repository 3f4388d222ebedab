// The bundle id: sha256 of the bundle's files rendered with the id left
// empty (before gzip). Stable for the same input, different when any byte of
// any file differs, and the same id in manifest.json, the firewall script and
// the rules the script loads (nftables' chain, iptables' comment).
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { sha256Js } from "../../src/hash.js";
import { describe, expect, it } from "vitest";
import { bundleIdOf, renderArtifacts } from "../../src/bundle/render-bundle.js";
import { packUserData } from "../../src/bundle/user-data.js";
import { renderCloudConfig } from "../../src/render/cloud-config.js";
import { HOST_PATHS } from "../../src/host-paths.js";
import { loadConfigString, renderBundle, type Bundle } from "../../src/index.js";

const files: Record<string, string> = { "motd.txt": "hello\n", "part.sh": "#!/bin/sh\necho part\n", "part2.sh": "#!/bin/sh\necho part 2\n" };

const BASE = `version: 1
name: id
docker: { daemon: { dns: [amazon] } }
firewall:
  published: { default: deny, rules: [{ port: 8080, allow: [203.0.113.0/24] }] }
user_data:
  parts: [{ file: part.sh, type: x-shellscript }]
  write_files: [{ path: /opt/motd, source: motd.txt }]
  packages: [jq]
`;

function render(yaml: string): Bundle {
  const { bundle, diagnostics } = renderBundle(loadConfigString(yaml, { files: { read: (p) => files[p] } }));
  if (!bundle) throw new Error(JSON.stringify(diagnostics));
  return bundle;
}

const script = (b: Bundle) => b.files.find((f) => f.path === HOST_PATHS.firewallScript)!.content;

describe("the bundle id", () => {
  it("is hashed by a SHA-256 in plain JavaScript (render and check load no node:crypto) that agrees with node:crypto's", () => {
    const inputs = [Buffer.alloc(0), Buffer.from("abc"), ...[55, 56, 63, 64, 65, 119, 120, 1000, 65_537].map((n) => randomBytes(n))];
    for (const b of inputs) expect(sha256Js(b), `${b.length} bytes`).toBe(createHash("sha256").update(b).digest("hex"));
    expect(sha256Js(Buffer.from("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("is the same for the same input, and is the sha256 of the bundle rendered with the id left empty", () => {
    const a = render(BASE);
    const b = render(BASE);
    expect(a.bundleId).toMatch(/^[0-9a-f]{64}$/);
    expect(b.bundleId).toBe(a.bundleId);
    const loaded = loadConfigString(BASE, { files: { read: (p) => files[p] } });
    const model = loaded.model!;
    const blank = renderArtifacts(model, "");
    expect(blank.find((f) => f.path === HOST_PATHS.firewallScript)!.content).toContain("readonly BUNDLE_ID=''\n");
    const raw = packUserData({ ...model, userData: { ...model.userData, gzip: "never" } }, renderCloudConfig(model, blank)).bytes;
    expect(bundleIdOf(raw, blank)).toBe(a.bundleId);
    // Rendered with its id, the script differs from the blank one in the id alone.
    expect(script(a).replace(a.bundleId, "")).toBe(blank.find((f) => f.path === HOST_PATHS.firewallScript)!.content);
  });

  it.each([
    ["the name (in headers)", BASE.replace("name: id", "name: id2")],
    ["daemon.json", BASE.replace("dns: [amazon]", "dns: [vpc]")],
    ["a firewall policy", BASE.replace("203.0.113.0/24", "203.0.113.0/25")],
    ["the firewall backend", `${BASE}`.replace("firewall:\n", "firewall:\n  backend: iptables\n")],
    ["a user file's content", BASE.replace("source: motd.txt", "content: other")],
    ["a user-data part", BASE.replace("file: part.sh", "file: part2.sh")],
    ["the cloud-config alone (packages)", BASE.replace("packages: [jq]", "packages: [jq, curl]")],
  ])("changes when %s changes", (_, yaml) => {
    expect(render(yaml).bundleId).not.toBe(render(BASE).bundleId);
  });

  it("changes when any one byte of any file, or of the user-data, changes (and the framing of paths and contents is unambiguous)", () => {
    const model = loadConfigString(BASE, { files: { read: (p) => files[p] } }).model!;
    const blank = renderArtifacts(model, "");
    const raw = Buffer.from(packUserData({ ...model, userData: { ...model.userData, gzip: "never" } }, renderCloudConfig(model, blank)).bytes);
    const id = bundleIdOf(raw, blank);
    const ids = new Set([id]);
    for (let i = 0; i < blank.length; i++) {
      const changed = blank.map((f, k) => (k === i ? { ...f, content: `${f.content.slice(0, -1)}${f.content.endsWith("x") ? "y" : "x"}` } : f));
      ids.add(bundleIdOf(raw, changed));
      ids.add(bundleIdOf(raw, blank.map((f, k) => (k === i ? { ...f, path: `${f.path}x` } : f))));
    }
    const flipped = Buffer.from(raw);
    flipped[flipped.length >> 1]! ^= 1;
    ids.add(bundleIdOf(flipped, blank));
    // A byte moved from one file's end to the next one's start is another bundle.
    const [f0, f1] = blank;
    ids.add(bundleIdOf(raw, [{ ...f0!, content: f0!.content.slice(0, -1) }, { ...f1!, content: f0!.content.slice(-1) + f1!.content }, ...blank.slice(2)]));
    expect(ids.size).toBe(2 * blank.length + 3);
  });

  it("does not depend on the order the files are listed in", () => {
    const model = loadConfigString(BASE, { files: { read: (p) => files[p] } }).model!;
    const blank = renderArtifacts(model, "");
    expect(bundleIdOf("u", [...blank].reverse())).toBe(bundleIdOf("u", blank));
  });

  it.each(["nftables", "iptables"])("%s: manifest.json, the script and the rules it loads carry the same id", (backend) => {
    const b = render(BASE.replace("firewall:\n", `firewall:\n  backend: ${backend}\n`));
    expect(b.manifest.bundleId).toBe(b.bundleId);
    expect(Object.keys(b.manifest).slice(0, 3)).toEqual(["name", "generator", "bundleId"]);
    const text = script(b);
    expect(text).toContain(`readonly BUNDLE_ID='${b.bundleId}'\n`);
    // The rules as the script prints them for its loader, run through bash (main not called).
    const defs = text.replace(/main "\$@"\n$/, "");
    if (backend === "nftables") {
      const table = execFileSync("bash", ["-c", `${defs}\nnft_ruleset`], { encoding: "utf8" });
      expect(table.split("\n").slice(0, 3)).toEqual(["table inet dockinit {", `\tchain bundle_${b.bundleId} {`, "\t}"]);
      expect(execFileSync("bash", ["-c", `${defs}\nnft_loaded_bundle "$(nft_ruleset)"`], { encoding: "utf8" })).toBe(`${b.bundleId}\n`);
    } else {
      for (const table of ["nat", "filter"]) {
        const payload = execFileSync("bash", ["-c", `${defs}\npayload_4_${table} eth0`], { encoding: "utf8" });
        expect(payload).toMatch(new RegExp(`^-A DOCKINIT-[A-Z]+ -m comment --comment dockinit-bundle-${b.bundleId}$`, "m"));
        expect(payload.length).toBeGreaterThan(0);
        expect(execFileSync("bash", ["-c", `${defs}\nbundle_in_save "$(payload_4_${table} eth0)"`], { encoding: "utf8" })).toBe(`${b.bundleId}\n`);
      }
      // iptables' limit on a comment.
      expect(`dockinit-bundle-${b.bundleId}`.length).toBeLessThanOrEqual(256);
    }
  });
});
