// Security properties of what dockinit writes, each with its own test:
// ownership and modes of the generated files (manifest and out/files),
// a warning with a stable code for anything that looks like a secret (user-data
// is readable by every process on the instance), and the instance metadata
// service out of containers' reach: blocked for IPv4 and IPv6 by default, and
// no port forward may lead to it. The packets are in
// test/system/metadata.test.ts.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundleEntries, catalogue, loadConfig, loadConfigString, planFirewall, renderBundle, writeBundle, type Bundle } from "../../src/index.js";
import { runCli } from "../../src/cli/main.js";
import { SECRET_PATTERNS, secretKind, SHORTEST_SECRET } from "../../src/config/secrets.js";
import fc from "fast-check";
import { HOST_PATHS } from "../../src/host-paths.js";
import { fixtureCases, FIXTURES } from "../support/fixtures.js";

const SCRIPTS = new Set<string>([HOST_PATHS.firewallScript, HOST_PATHS.vpcDnsScript, HOST_PATHS.bootScript, HOST_PATHS.proxyScript]);

function render(yaml: string): Bundle {
  const r = renderBundle(loadConfigString(yaml));
  if (!r.bundle) throw new Error(JSON.stringify(r.diagnostics));
  return r.bundle;
}

const bundles: [string, () => Bundle][] = [
  ...fixtureCases().map((name): [string, () => Bundle] => [`fixture ${name}`, () => renderBundle(loadConfig(join(FIXTURES, name, "dockinit.yaml"))).bundle!]),
  ["nftables backend", () => render("version: 1\nfirewall: { backend: nftables }\n")],
  ["no vpc DNS", () => render("version: 1\ndocker: { daemon: { dns: [amazon] } }\n")],
];

describe("generated files: owned by root, 0644 for configuration and units, 0755 for scripts, nothing world-writable", () => {
  it.each(bundles)("%s: the manifest", (_, make) => {
    const bundle = make();
    for (const f of bundle.manifest.files.filter((x) => x.origin === "dockinit")) {
      expect([f.path, f.owner, f.mode]).toEqual([f.path, "root:root", SCRIPTS.has(f.path) ? "0755" : "0644"]);
    }
    for (const f of bundle.manifest.files) expect(parseInt(f.mode, 8) & 0o002, f.path).toBe(0);
  });

  it.each(bundles)("%s: out/ on disk has exactly those modes, whatever the umask", (_, make) => {
    const bundle = make();
    const dir = mkdtempSync(join(tmpdir(), "dockinit-modes-"));
    // umask 0 is the worst case: nothing narrows the modes dockinit asks for.
    const old = process.umask(0);
    try {
      writeBundle(bundle, join(dir, "out"));
    } finally {
      process.umask(old);
    }
    try {
      for (const e of bundleEntries(bundle)) {
        const mode = statSync(join(dir, "out", e.path)).mode & 0o7777;
        const manifest = bundle.manifest.files.find((f) => `files${f.path}` === e.path);
        expect(mode, e.path).toBe(manifest ? parseInt(manifest.mode, 8) : 0o644);
        expect(mode & 0o002, e.path).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a world-writable write_files mode is what the user asked for, and gets a warning (DI061)", () => {
    const r = loadConfigString("version: 1\nuser_data:\n  write_files:\n    - { path: /opt/run.sh, content: x, permissions: '0777' }\n    - { path: /etc/ok, content: x, permissions: '0644' }\n");
    expect(r.model).toBeDefined();
    expect(r.diagnostics.map((d) => [d.code, d.severity, d.line, d.path.join(".")])).toEqual([["DI061", "warning", 4, "user_data.write_files.0.permissions"]]);
    expect(renderBundle(r).bundle!.manifest.files.find((f) => f.path === "/opt/run.sh")!.mode).toBe("0777");
  });
});

describe("secrets in the config: a warning with a stable code (DI060), never the secret itself", () => {
  // Test keys shaped like real ones; none is valid anywhere.
  const cases: { name: string; yaml: string; line: number; kind: RegExp; secret: string }[] = [
    { name: "AWS access key ID in runcmd", yaml: "user_data: { runcmd: ['aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE'] }", line: 2, kind: /AWS access key ID/, secret: "AKIAIOSFODNN7EXAMPLE" },
    { name: "temporary AWS key in a daemon setting", yaml: "docker: { daemon: { settings: { x: ASIAIOSFODNN7EXAMPLE } } }", line: 2, kind: /AWS access key ID/, secret: "ASIAIOSFODNN7EXAMPLE" },
    { name: "AWS secret access key in a file", yaml: "user_data: { write_files: [{ path: /root/.aws/credentials, content: \"[default]\\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\\n\" }] }", line: 2, kind: /AWS secret access key/, secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
    { name: "private key block", yaml: "user_data: { write_files: [{ path: /root/.ssh/id_ed25519, content: \"-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjE=\\n-----END OPENSSH PRIVATE KEY-----\\n\", permissions: '0600' }] }", line: 2, kind: /private key/, secret: "b3BlbnNzaC1rZXktdjE=" },
    { name: "RSA private key", yaml: "user_data: { runcmd: ['echo \"-----BEGIN RSA PRIVATE KEY-----\" > /k'] }", line: 2, kind: /private key/, secret: "BEGIN RSA" },
    { name: "GitHub token", yaml: "user_data: { runcmd: ['git clone https://ghp_0123456789abcdefghijABCDEFGHIJ012345@github.com/x/y'] }", line: 2, kind: /GitHub token/, secret: "ghp_0123456789" },
    { name: "Slack token", yaml: "$schema: xoxb-0123456789-abcdefghij", line: 2, kind: /Slack token/, secret: "xoxb-" },
    { name: "JSON Web Token", yaml: "user_data: { runcmd: ['curl -H \"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\" x'] }", line: 2, kind: /JSON Web Token/, secret: "eyJhbGci" },
    { name: "password assignment", yaml: "user_data: { runcmd: ['echo DB_PASSWORD=s3cr3t-Passw0rd >> /etc/app.env'] }", line: 2, kind: /password or token/, secret: "s3cr3t-Passw0rd" },
    { name: "secret by key name in docker settings", yaml: "docker: { daemon: { settings: { registry-password: hunter2hunter2 } } }", line: 2, kind: /its key is "registry-password"/, secret: "hunter2hunter2" },
  ];

  it.each(cases)("$name", ({ yaml, line, kind, secret }) => {
    const r = loadConfigString(`version: 1\n${yaml}\n`);
    expect(r.model, JSON.stringify(r.diagnostics)).toBeDefined();
    const warnings = r.diagnostics.filter((d) => d.code === "DI060");
    expect(warnings).toHaveLength(1);
    const w = warnings[0]!;
    expect(w.severity).toBe("warning");
    expect(w.message).toMatch(kind);
    expect(w.line).toBe(line);
    expect(`${w.message} ${w.hint}`).not.toContain(secret);
    expect(renderBundle(r).bundle).toBeDefined();
  });

  // secretKind skips strings shorter than SHORTEST_SECRET without running the
  // patterns; these are the shortest matches, and no shorter string matches.
  it.each([
    ["a password or token", "token=12345678"],
    ["a Slack token", "xoxb-0123456789"],
    ["an AWS access key ID", "AKIAIOSFODNN7EXAMPLE"],
  ])("the shortest %s is %j, no shorter than SHORTEST_SECRET", (kind, shortest) => {
    expect(shortest.length).toBeGreaterThanOrEqual(SHORTEST_SECRET);
    expect(secretKind(shortest)).toBe(kind);
    expect(SECRET_PATTERNS.some(([, re]) => re.test(shortest.slice(0, -1)))).toBe(false);
  });

  it("no pattern matches a string shorter than SHORTEST_SECRET", () => {
    const fragment = fc.constantFrom("token", "passwd", "secret", "api_key", "auth_token", "xoxb-", "AKIA", "ghp_", "eyJ", "rk_live_", "glpat-", "AIza", "=", ":", " ", '"', "'", "-", ".", "a", "Z", "9");
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 8 }), (parts) => {
        const text = parts.join("").slice(0, SHORTEST_SECRET - 1);
        for (const [kind, re] of SECRET_PATTERNS) expect(re.test(text), `${kind} matched ${JSON.stringify(text)}`).toBe(false);
      }),
      { numRuns: 5000 },
    );
  });

  it("in a source: file and a part, reported at the reference", () => {
    const files: Record<string, string> = { "env/app.env": "TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n", "parts/boot.sh": "#!/bin/sh\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n" };
    const r = loadConfigString("version: 1\nuser_data:\n  write_files: [{ path: /etc/app.env, source: env/app.env }]\n  parts: [{ file: parts/boot.sh, type: x-shellscript }]\n", { files: { read: (p) => files[p] } });
    expect(r.diagnostics.map((d) => [d.code, d.line, d.path.at(-1)])).toEqual([
      ["DI060", 3, "source"],
      ["DI060", 4, "file"],
    ]);
  });

  it.each([
    ["a variable reference", "user_data: { runcmd: ['echo password=$DB_PASSWORD', 'token=${TOKEN}'] }"],
    ["a short value", "user_data: { runcmd: ['echo password=x'] }"],
    ["words alone", "user_data: { runcmd: ['echo set a password and a token later'] }"],
    ["the seed config", "docker: { daemon: { dns: [vpc] } }"],
  ])("no warning for %s", (_, yaml) => {
    expect(loadConfigString(`version: 1\n${yaml}\n`).diagnostics.filter((d) => d.code === "DI060")).toEqual([]);
  });

  it.each(fixtureCases())("no warning for fixture %s", (name) => {
    expect(loadConfig(join(FIXTURES, name, "dockinit.yaml")).diagnostics.filter((d) => d.code === "DI060")).toEqual([]);
  });

  it("the CLI prints the warning with its code and still renders (exit 0)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-secret-"));
    try {
      writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nuser_data: { runcmd: ['export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE'] }\n");
      let stderr = "";
      const code = await runCli(["render", "-o", "out"], { stdout: () => undefined, stderr: (t) => (stderr += t), cwd: dir, env: {} });
      expect(code).toBe(0);
      expect(stderr).toMatch(/dockinit\.yaml:2:\d+: warning DI060: this value looks like an AWS access key ID/);
      expect(stderr).toContain("Secrets Manager");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("DI060 and DI061 are in the catalogue as warnings", () => {
    expect(catalogue.DI060.severity).toBe("warning");
    expect(catalogue.DI061.severity).toBe("warning");
  });
});

describe("instance metadata: out of containers' reach, IPv4 and IPv6, and no port forward leads to it", () => {
  it("block_metadata (on by default) drops 169.254.169.254 and fd00:ec2::254 in DOCKINIT-USER, for both families (iptables backend)", () => {
    const plan = planFirewall(loadConfigString("version: 1\nfirewall: { backend: iptables }\n").model!);
    const filter = (fam: 4 | 6) => plan.iptables.find((f) => f.family === fam)!.tables.find((t) => t.table === "filter")!;
    expect(filter(4).rules).toContain("-A DOCKINIT-USER -d 169.254.169.254/32 -j DROP");
    expect(filter(6).rules).toContain("-A DOCKINIT-USER -d fd00:ec2::254/128 -j DROP");
    expect(filter(4).jumps.map((j) => j.spec)).toEqual(["-A DOCKER-USER -j DOCKINIT-USER"]);
  });

  it.each(["version: 1\nfirewall: { backend: nftables }\n", "version: 1\n"])("the nftables backend (asked for, or auto's choice) drops both in its forward chain, before Docker's (priority filter - 10): %j", (yaml) => {
    const nft = planFirewall(loadConfigString(yaml).model!).nft;
    expect(nft).toMatch(/type filter hook forward priority filter - 10/);
    expect(nft).toContain("ip daddr 169.254.169.254/32 drop");
    expect(nft).toContain("ip6 daddr fd00:ec2::254/128 drop");
  });

  it.each([
    ["169.254.169.254:80", "DI027"],
    ["169.254.169.254:443", "DI027"],
    ["169.254.170.2:80", "DI027"],
    ["169.254.169.253:53", "DI027"],
    ["[fd00:ec2::254]:80", "DI027"],
    ["[fd00:ec2::23]:80", "DI027"],
    ["[::ffff:169.254.169.254]:80", "DI026"],
    ["[::ffff:127.0.0.1]:80", "DI026"],
  ])("a port forward to %s is refused (%s), with or without block_metadata", (to, code) => {
    for (const block of [true, false]) {
      const r = loadConfigString(`version: 1\nfirewall: { containers: { block_metadata: ${block} } }\nport_forwards: [{ listen: 9000, to: '${to}' }]\n`);
      expect(r.model).toBeUndefined();
      expect(r.diagnostics.map((d) => [d.code, d.line])).toEqual([[code, 3]]);
    }
  });

  it("the forwards dockinit does accept come after the metadata drop; only their own replies (DNAT state + reply tuple, REPLY direction) are accepted before it", () => {
    const plan = planFirewall(loadConfigString("version: 1\nfirewall: { backend: iptables }\nport_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n").model!);
    const rules = plan.iptables.find((f) => f.family === 4)!.tables.find((t) => t.table === "filter")!.rules;
    const accepts = rules.flatMap((r, i) => (r.includes("-j ACCEPT") ? [i] : []));
    expect(accepts.map((i) => rules[i])).toEqual([
      "-A DOCKINIT-USER -p tcp -m conntrack --ctstate DNAT --ctreplsrc 198.51.100.10 --ctorigdstport 9000 --ctreplsrcport 80 --ctdir REPLY -j ACCEPT",
      "-A DOCKINIT-USER -p tcp -m conntrack --ctstate DNAT --ctreplsrc 198.51.100.10 --ctorigdstport 9000 --ctreplsrcport 80 -j ACCEPT",
    ]);
    const metadata = rules.indexOf("-A DOCKINIT-USER -d 169.254.169.254/32 -j DROP");
    expect(metadata).toBeGreaterThan(-1);
    expect(metadata).toBeLessThan(accepts[1]!);
  });
});
