// Proves each validator in test/support/validators.ts can fail: for every one,
// a known-good input must pass and a deliberately broken input must fail, for
// the reason we broke it (the tool's message is asserted, not just `ok`).
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipUnless } from "../support/system.js";
import {
  bashSyntax,
  cloudInitSchema,
  cloudInitUserData,
  describeFailures,
  jsonParse,
  shellcheck,
  shSyntax,
  systemdVerify,
  validateBundle,
  VALIDATOR_NEEDS,
  type SystemdVerifyOptions,
  type ValidationResult,
} from "../support/validators.js";

let tmp = "";
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "dockinit-validators-"));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Writes `content` at `rel` under `base` (default: the suite's temp dir). */
function put(rel: string, content: string | Buffer, mode = 0o644, base = tmp): string {
  const p = join(base, rel);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

const BOUNDARY = "==DOCKINIT-TEST-BOUNDARY==";
interface MimePart {
  type: string;
  filename: string;
  body: string;
  encoding?: "7bit" | "base64";
}
/** A multipart/mixed message the way dockinit (and cloud-init's make-mime) lays it out. */
function mime(parts: MimePart[]): Buffer {
  const out = [`Content-Type: multipart/mixed; boundary="${BOUNDARY}"`, "MIME-Version: 1.0", ""];
  for (const p of parts) {
    const enc = p.encoding ?? "7bit";
    out.push(
      `--${BOUNDARY}`,
      `Content-Type: ${p.type}; charset="us-ascii"`,
      "MIME-Version: 1.0",
      `Content-Transfer-Encoding: ${enc}`,
      `Content-Disposition: attachment; filename="${p.filename}"`,
      "",
      enc === "base64" ? (Buffer.from(p.body).toString("base64").match(/.{1,76}/g) ?? []).join("\n") : p.body,
    );
  }
  out.push(`--${BOUNDARY}--`, "");
  return Buffer.from(out.join("\n"), "utf8");
}

const GOOD_CLOUD_CONFIG = `#cloud-config
write_files:
  - path: /etc/docker/daemon.json
    permissions: "0644"
    owner: root:root
    content: |
      {"iptables": false}
  - path: /etc/dockinit/flags
    permissions: "0600"
    content: "yes"
runcmd:
  - [systemctl, enable, --now, dockinit-firewall.service]
dockinit_unknown_key: "on"
`;
const GOOD_SCRIPT = `#!/bin/bash
set -euo pipefail
rm -f -- "$1"
`;
const BAD_SCHEMA_PERMISSIONS = "#cloud-config\nwrite_files:\n  - path: /x\n    permissions: 0644\n";
const BAD_SCHEMA_RUNCMD = '#cloud-config\nruncmd: "notalist"\n';

function expectPass(r: ValidationResult): void {
  expect(r.ok, r.output).toBe(true);
}
function expectFail(r: ValidationResult, ...needles: Array<string | RegExp>): void {
  expect(r.ok, `expected failure, got:\n${r.output}`).toBe(false);
  for (const n of needles) {
    if (typeof n === "string") expect(r.output).toContain(n);
    else expect(r.output).toMatch(n);
  }
}

describe.skipIf(skipUnless(VALIDATOR_NEEDS.cloudInit))("cloudInitSchema (cloud-init schema -c)", () => {
  it.each([
    { name: "good document text", input: () => GOOD_CLOUD_CONFIG },
    { name: "good document as a file path", input: () => put("schema/good.yaml", GOOD_CLOUD_CONFIG) },
    { name: "good document gzipped", input: () => gzipSync(GOOD_CLOUD_CONFIG) },
    { name: "deprecated key, when allowed", input: () => "#cloud-config\napt_update: true\n", allowDeprecations: true },
  ])("passes: $name", ({ input, allowDeprecations }) => {
    expectPass(cloudInitSchema(input(), { allowDeprecations }));
  });

  it.each([
    {
      name: "permissions as a YAML number",
      input: () => BAD_SCHEMA_PERMISSIONS,
      needle: "write_files.0.permissions: 420 is not of type 'string'",
    },
    { name: "runcmd as a string", input: () => BAD_SCHEMA_RUNCMD, needle: "runcmd: 'notalist' is not of type 'array'" },
    { name: "bad YAML", input: () => "#cloud-config\nruncmd: [a\n", needle: "is not valid yaml" },
    { name: "missing #cloud-config header", input: () => "runcmd: [a]\n", needle: 'needs to begin with "#cloud-config"' },
    { name: "a MIME message (not a cloud-config document)", input: () => mime([]), needle: "needs to begin with" },
    { name: "deprecated key", input: () => "#cloud-config\napt_update: true\n", needle: "deprecated keys: apt_update" },
  ])("fails: $name", ({ input, needle }) => {
    expectFail(cloudInitSchema(input()), needle);
  });
});

describe.skipIf(skipUnless(VALIDATOR_NEEDS.cloudInit))("cloudInitUserData (cloud-init's processor)", () => {
  const goodMime = (): Buffer =>
    mime([
      { type: "text/cloud-config", filename: "cloud-config.yaml", body: GOOD_CLOUD_CONFIG },
      { type: "text/x-shellscript", filename: "dockinit-boot.sh", body: GOOD_SCRIPT },
    ]);

  it.each([
    { name: "plain cloud-config", raw: () => Buffer.from(GOOD_CLOUD_CONFIG), types: ["text/cloud-config"] },
    { name: "gzipped cloud-config", raw: () => gzipSync(GOOD_CLOUD_CONFIG), types: ["text/cloud-config"] },
    { name: "MIME cloud-config + shell script", raw: goodMime, types: ["text/cloud-config", "text/x-shellscript"] },
    { name: "gzipped MIME", raw: () => gzipSync(goodMime()), types: ["text/cloud-config", "text/x-shellscript"] },
    {
      name: "MIME with base64 parts",
      raw: () =>
        mime([
          { type: "text/cloud-config", filename: "cc.yaml", body: GOOD_CLOUD_CONFIG, encoding: "base64" },
          { type: "text/x-shellscript", filename: "s.sh", body: GOOD_SCRIPT, encoding: "base64" },
        ]),
      types: ["text/cloud-config", "text/x-shellscript"],
    },
    {
      // cloud-init sniffs text/plain parts by their first line.
      name: "text/plain parts recognised by prefix",
      raw: () =>
        mime([
          { type: "text/plain", filename: "cc.yaml", body: GOOD_CLOUD_CONFIG },
          { type: "text/plain", filename: "s.sh", body: GOOD_SCRIPT },
        ]),
      types: ["text/cloud-config", "text/x-shellscript"],
    },
  ])("passes: $name", ({ raw, types }) => {
    const r = cloudInitUserData(raw());
    expectPass(r);
    expect(r.parts.map((p) => p.contentType)).toEqual(types);
    expect(r.parts.every((p) => p.bytes > 0)).toBe(true);
  });

  it("returns cloud-init's view of the cloud-config for round-trip checks", () => {
    const r = cloudInitUserData(goodMime());
    expectPass(r);
    expect(r.parts[0]).toMatchObject({ contentType: "text/cloud-config", filename: "cloud-config.yaml" });
    expect(r.parts[1]).toMatchObject({
      contentType: "text/x-shellscript",
      filename: "dockinit-boot.sh",
      bytes: Buffer.byteLength(GOOD_SCRIPT),
      text: GOOD_SCRIPT,
    });
    const cc = r.cloudConfig as {
      write_files: Array<{ permissions: unknown; content: unknown }>;
      dockinit_unknown_key: unknown;
    };
    expect(cc.write_files[0]?.permissions).toBe("0644");
    expect(cc.write_files[0]?.content).toBe('{"iptables": false}\n');
    expect(cc.write_files[1]?.content).toBe("yes"); // quoted: stays a string
    expect(cc.dockinit_unknown_key).toBe("on");
    // ...and the loader really is YAML 1.1, so the quoting matters:
    const unquoted = cloudInitUserData(Buffer.from("#cloud-config\nk1: on\nk2: yes\nk3: 0644\n"));
    expect(unquoted.cloudConfig).toEqual({ k1: true, k2: true, k3: 420 });
  });

  it("merges several cloud-config parts the way cloud-init does", () => {
    const r = cloudInitUserData(
      mime([
        { type: "text/cloud-config", filename: "a.yaml", body: "#cloud-config\nruncmd:\n  - [echo, a]\n" },
        { type: "text/cloud-config", filename: "b.yaml", body: "#cloud-config\npackage_update: true\n" },
      ]),
    );
    expectPass(r);
    expect(r.cloudConfig).toEqual({ runcmd: [["echo", "a"]], package_update: true });
  });

  it.each([
    {
      name: "part with an unknown content type",
      raw: () =>
        mime([
          { type: "text/cloud-config", filename: "cc.yaml", body: GOOD_CLOUD_CONFIG },
          { type: "text/x-dockinit-unknown", filename: "mystery", body: "hello\n" },
        ]),
      needle: "content type text/x-dockinit-unknown is not handled",
    },
    {
      name: "text/plain part with no recognised prefix",
      raw: () => mime([{ type: "text/plain", filename: "notes.txt", body: "just text\n" }]),
      needle: "content type text/plain is not handled",
    },
    {
      name: "non-MIME blob without #cloud-config (becomes text/x-not-multipart)",
      raw: () => Buffer.from("write_files: []\n"),
      needle: "text/x-not-multipart is not handled",
    },
    {
      name: "schema error in a MIME cloud-config part",
      raw: () => mime([{ type: "text/cloud-config", filename: "cc.yaml", body: BAD_SCHEMA_PERMISSIONS }]),
      needle: "write_files.0.permissions: 420 is not of type 'string'",
    },
    {
      name: "schema error in gzipped cloud-config",
      raw: () => gzipSync(BAD_SCHEMA_RUNCMD),
      needle: "runcmd: 'notalist' is not of type 'array'",
    },
    {
      name: "cloud-config that is not valid YAML",
      raw: () => Buffer.from("#cloud-config\nruncmd: [a\n"),
      needle: "YAML does not load",
    },
    {
      name: "shell script part without a shebang",
      raw: () => mime([{ type: "text/x-shellscript", filename: "s.sh", body: "echo hi\n" }]),
      needle: "does not start with '#!'",
    },
    {
      name: "#include (would fetch a URL at boot; never fetched here)",
      raw: () => Buffer.from("#include\nhttp://example.invalid/user-data\n"),
      needle: "does not fetch URLs",
    },
    {
      name: "deprecated key",
      raw: () => Buffer.from("#cloud-config\napt_update: true\n"),
      needle: "deprecated: part-001: apt_update",
    },
    {
      name: "over the 16 KB EC2 limit",
      raw: () => Buffer.from(`#cloud-config\nruncmd:\n${"  - [echo, xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]\n".repeat(400)}`),
      needle: "over the 16384-byte EC2 limit",
    },
  ])("fails: $name", ({ raw, needle }) => {
    expectFail(cloudInitUserData(raw()), needle);
  });
});

describe.skipIf(skipUnless([...VALIDATOR_NEEDS.shellcheck, ...VALIDATOR_NEEDS.bash, ...VALIDATOR_NEEDS.sh]))(
  "shell validators",
  () => {
    const cases: Array<{
      validator: string;
      run: (p: string) => ValidationResult;
      good: string;
      bad: string;
      needle: string;
    }> = [
      {
        validator: "shellcheck",
        run: (p) => shellcheck(p),
        good: GOOD_SCRIPT,
        bad: "#!/bin/bash\nrm $1\n",
        needle: "SC2086",
      },
      {
        validator: "shellcheck (no shebang)",
        run: (p) => shellcheck(p),
        good: GOOD_SCRIPT,
        bad: 'rm -f -- "$1"\n',
        needle: "SC2148",
      },
      {
        validator: "shellcheck (bashism in sh)",
        run: (p) => shellcheck(p),
        good: '#!/bin/sh\nset -eu\n[ -f "$1" ] && echo y\n',
        bad: '#!/bin/sh\n[[ -f "$1" ]] && echo y\n',
        needle: "SC3010",
      },
      {
        validator: "bashSyntax",
        run: (p) => bashSyntax(p),
        good: GOOD_SCRIPT,
        bad: "#!/bin/bash\nif then fi\n",
        needle: "syntax error near unexpected token",
      },
      {
        validator: "shSyntax",
        run: (p) => shSyntax(p),
        good: '#!/bin/sh\nif [ -n "$1" ]; then echo y; fi\n',
        bad: "#!/bin/sh\nif then fi\n",
        needle: "Syntax error",
      },
    ];
    it.each(cases)("$validator: good passes, broken fails", ({ validator, run, good, bad, needle }) => {
      const slug = validator.replace(/\W+/g, "-");
      expectPass(run(put(`sh/${slug}-good`, good, 0o755)));
      expectFail(run(put(`sh/${slug}-bad`, bad, 0o755)), needle);
    });
  },
);

describe.skipIf(skipUnless(VALIDATOR_NEEDS.systemd))("systemdVerify (systemd-analyze verify --root)", () => {
  const GOOD_UNIT = `[Unit]
Description=x
After=docker.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/dockinit-firewall apply
[Install]
WantedBy=multi-user.target
`;
  const SVC = "etc/systemd/system/dockinit-firewall.service";
  const SCRIPT = "usr/local/sbin/dockinit-firewall";
  interface Tree {
    files: Record<string, { content: string; mode?: number }>;
    units: string[];
    opts?: SystemdVerifyOptions;
  }
  const good = (extra: Tree["files"] = {}): Tree["files"] => ({
    [SVC]: { content: GOOD_UNIT },
    [SCRIPT]: { content: GOOD_SCRIPT, mode: 0o755 },
    ...extra,
  });
  let n = 0;
  function verify(t: Tree): ReturnType<typeof systemdVerify> {
    const dir = join(tmp, `systemd-${n++}`, "files");
    for (const [rel, f] of Object.entries(t.files)) put(rel, f.content, f.mode ?? 0o644, dir);
    return systemdVerify(dir, t.units, t.opts);
  }

  it.each<{ name: string } & Tree>([
    { name: "the sample unit with its executable script", files: good(), units: ["dockinit-firewall.service"] },
    {
      name: "Requires=docker.service (dockerd need not exist in the root)",
      files: good({ [SVC]: { content: GOOD_UNIT.replace("After=docker.service", "After=docker.service\nRequires=docker.service") } }),
      units: ["dockinit-firewall.service"],
    },
    {
      name: "script left 0644 on disk but 0755 in the manifest",
      files: good({ [SCRIPT]: { content: GOOD_SCRIPT, mode: 0o644 } }),
      units: ["dockinit-firewall.service"],
      opts: { modes: { "/usr/local/sbin/dockinit-firewall": "0755" } },
    },
    {
      name: "a timer and its service",
      files: good({
        "etc/systemd/system/dockinit-firewall.timer": {
          content: "[Unit]\nDescription=t\n[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n",
        },
      }),
      units: ["dockinit-firewall.service", "dockinit-firewall.timer"],
    },
    {
      name: "a docker.service drop-in (vendor executables stubbed)",
      files: good({
        "etc/systemd/system/docker.service.d/dockinit.conf": {
          content: "[Service]\nExecStartPost=/usr/local/sbin/dockinit-firewall apply\n",
        },
      }),
      units: ["dockinit-firewall.service", "docker.service"],
    },
    {
      name: "a system executable the image provides, declared",
      files: good({ [SVC]: { content: GOOD_UNIT.replace(/^ExecStart=.*$/m, "ExecStart=/usr/sbin/iptables -L") } }),
      units: ["dockinit-firewall.service"],
      opts: { systemExecutables: ["/usr/sbin/iptables"] },
    },
  ])("passes: $name", (t) => {
    const r = verify(t);
    expectPass(r);
    expect(r.units.map((u) => u.unit)).toEqual(t.units);
  });

  it.each<{ name: string; needle: string | RegExp } & Tree>([
    {
      name: "relative ExecStart",
      files: good({ [SVC]: { content: GOOD_UNIT.replace("ExecStart=/usr/local/sbin/", "ExecStart=usr/local/sbin/") } }),
      units: ["dockinit-firewall.service"],
      needle: "Neither a valid executable name nor an absolute path",
    },
    {
      name: "ExecStart pointing to a missing executable",
      files: { [SVC]: { content: GOOD_UNIT } },
      units: ["dockinit-firewall.service"],
      needle: "Command /usr/local/sbin/dockinit-firewall is not executable: No such file or directory",
    },
    {
      name: "script not executable",
      files: good({ [SCRIPT]: { content: GOOD_SCRIPT, mode: 0o644 } }),
      units: ["dockinit-firewall.service"],
      needle: "is not executable: Permission denied",
    },
    {
      name: "manifest mode makes the script non-executable",
      files: good(),
      units: ["dockinit-firewall.service"],
      opts: { modes: { "/usr/local/sbin/dockinit-firewall": "0644" } },
      needle: "Permission denied",
    },
    {
      name: "host binary not shipped and not declared",
      files: good({ [SVC]: { content: GOOD_UNIT.replace(/^ExecStart=.*$/m, "ExecStart=/usr/sbin/iptables -L") } }),
      units: ["dockinit-firewall.service"],
      needle: "Command /usr/sbin/iptables is not executable",
    },
    {
      name: "unknown key (systemd exits 0, only warns)",
      files: good({ [SVC]: { content: GOOD_UNIT.replace("RemainAfterExit=yes", "RemainAfterExit=yes\nRemaneAfterExit=yes") } }),
      units: ["dockinit-firewall.service"],
      needle: /exited 0 but complained[\s\S]*Unknown key 'RemaneAfterExit'/,
    },
    {
      name: "unparsable value (systemd exits 0, only warns)",
      files: good({ [SVC]: { content: GOOD_UNIT.replace("Type=oneshot", "Type=oneshot\nRestart=sometimes") } }),
      units: ["dockinit-firewall.service"],
      needle: "Failed to parse service restart specifier",
    },
    {
      name: "no ExecStart",
      files: good({ [SVC]: { content: "[Unit]\nDescription=x\n[Service]\nType=oneshot\n" } }),
      units: ["dockinit-firewall.service"],
      needle: "Service has no ExecStart=",
    },
    {
      name: "Requires= a unit that does not exist",
      files: good({ [SVC]: { content: GOOD_UNIT.replace("After=docker.service", "Requires=dockinit-nope.service") } }),
      units: ["dockinit-firewall.service"],
      needle: "Unit dockinit-nope.service not found",
    },
    {
      name: "WantedBy= a target that does not exist (own check)",
      files: good({ [SVC]: { content: GOOD_UNIT.replace("multi-user.target", "multi-user.targt") } }),
      units: ["dockinit-firewall.service"],
      needle: "WantedBy=multi-user.targt: no such unit",
    },
    {
      name: "timer without its service (own check)",
      files: good({
        "etc/systemd/system/dockinit-rotate.timer": { content: "[Unit]\nDescription=t\n[Timer]\nOnCalendar=daily\n" },
      }),
      units: ["dockinit-rotate.timer"],
      needle: "activates dockinit-rotate.service, which does not exist",
    },
    {
      name: "unit not in the tree",
      files: good(),
      units: ["dockinit-vpc-dns.service"],
      needle: "Unit dockinit-vpc-dns.service not found",
    },
    {
      name: "docker.service drop-in calling a missing script",
      files: good({
        "etc/systemd/system/docker.service.d/dockinit.conf": {
          content: "[Service]\nExecStartPost=/usr/local/sbin/dockinit-missing\n",
        },
      }),
      units: ["docker.service"],
      needle: "Command /usr/local/sbin/dockinit-missing is not executable",
    },
  ])("fails: $name", (t) => {
    const r = verify(t);
    expectFail(r, t.needle);
  });
});

describe("jsonParse", () => {
  it("passes valid JSON and fails invalid JSON", () => {
    expectPass(jsonParse(put("json/good.json", '{"iptables": false, "log-driver": "journald"}\n')));
    expectFail(jsonParse(put("json/bad.json", '{"iptables": false,}\n')), "invalid JSON");
    expectFail(jsonParse(put("json/bom.json", '\uFEFF{"a": 1}\n')), "invalid JSON");
    expectFail(jsonParse(join(tmp, "json/missing.json")), "cannot read");
  });
});

describe.skipIf(skipUnless(VALIDATOR_NEEDS.all))("validateBundle", () => {
  const UNIT = `[Unit]
Description=dockinit firewall
After=docker.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/dockinit-firewall apply
[Install]
WantedBy=multi-user.target
`;
  function bundle(
    name: string,
    mutate: (files: Record<string, { content: string; mode: string }>) => void = () => {},
    bootScript = GOOD_SCRIPT,
  ): string {
    const out = join(tmp, "bundles", name);
    const files: Record<string, { content: string; mode: string }> = {
      "/etc/docker/daemon.json": { content: '{"iptables": false}\n', mode: "0644" },
      "/usr/local/sbin/dockinit-firewall": { content: GOOD_SCRIPT, mode: "0755" },
      "/etc/systemd/system/dockinit-firewall.service": { content: UNIT, mode: "0644" },
      "/etc/systemd/system/docker.service.d/dockinit.conf": {
        content: "[Unit]\nAfter=dockinit-firewall.service\n",
        mode: "0644",
      },
    };
    mutate(files);
    const manifest = {
      files: Object.entries(files).map(([path, f]) => {
        put(`files${path}`, f.content, 0o644, out); // modes come from the manifest
        return {
          path,
          mode: f.mode,
          owner: "root:root",
          bytes: Buffer.byteLength(f.content),
          sha256: createHash("sha256").update(f.content).digest("hex"),
        };
      }),
      userData: {},
    };
    const ud = gzipSync(
      mime([
        { type: "text/cloud-config", filename: "cloud-config.yaml", body: GOOD_CLOUD_CONFIG },
        { type: "text/x-shellscript", filename: "boot.sh", body: bootScript },
      ]),
    );
    put("user-data", ud, 0o644, out);
    manifest.userData = { bytes: ud.length, sha256: createHash("sha256").update(ud).digest("hex") };
    put("manifest.json", JSON.stringify(manifest, null, 2), 0o644, out);
    return out;
  }

  it("passes a good bundle, running every applicable validator", () => {
    const checks = validateBundle(bundle("good"));
    expect(describeFailures(checks)).toBe("");
    const ran = checks.map((c) => `${c.file} ${c.validator}`);
    expect(ran).toEqual(
      expect.arrayContaining([
        "user-data cloudInitUserData",
        "user-data manifest",
        "manifest.json jsonParse",
        "files/etc/docker/daemon.json jsonParse",
        "files/usr/local/sbin/dockinit-firewall shellcheck",
        "files/usr/local/sbin/dockinit-firewall bashSyntax",
        "files/etc/systemd/system/dockinit-firewall.service systemdVerify",
        "files/etc/systemd/system/docker.service.d systemdVerify",
        "user-data#2(boot.sh) shellcheck",
        "user-data#2(boot.sh) bashSyntax",
      ]),
    );
  });

  it("reports each broken file under the validator that caught it", () => {
    const out = bundle(
      "bad",
      (f) => {
        f["/etc/docker/daemon.json"] = { content: '{"iptables": false,}\n', mode: "0644" };
        f["/usr/local/sbin/dockinit-firewall"] = { content: "#!/bin/bash\nrm $1\n", mode: "0644" };
      },
      "#!/bin/bash\nif then fi\n",
    );
    put("files/etc/stray", "not in the manifest\n", 0o644, out);
    const failed = validateBundle(out)
      .filter((c) => !c.ok)
      .map((c) => `${c.file} ${c.validator}`);
    expect(failed.sort()).toEqual(
      [
        "files/etc/docker/daemon.json jsonParse",
        "files/etc/stray manifest",
        "files/usr/local/sbin/dockinit-firewall shellcheck",
        "files/etc/systemd/system/dockinit-firewall.service systemdVerify", // 0644 script
        "user-data#2(boot.sh) shellcheck",
        "user-data#2(boot.sh) bashSyntax",
      ].sort(),
    );
  });

  it("fails a bundle whose manifest does not match the files", () => {
    const out = bundle("tampered");
    put("files/etc/docker/daemon.json", '{"iptables": true}\n', 0o644, out);
    const failed = validateBundle(out).filter((c) => !c.ok);
    expect(failed.map((c) => `${c.file} ${c.validator}`)).toEqual(["files/etc/docker/daemon.json manifest"]);
    expect(failed[0]?.output).toContain("sha256 does not match");
  });

  it("fails, without throwing, when there is no bundle", () => {
    const checks = validateBundle(join(tmp, "bundles", "nothing"));
    expect(checks.some((c) => !c.ok && c.validator === "jsonParse")).toBe(true);
    expect(checks.some((c) => !c.ok && c.file === "user-data")).toBe(true);
  });
});
