// Bad input: every invalid config fails with its own stable code at the right
// line:col and YAML path, with a hint. Table-driven.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { catalogue, formatDiagnostic, loadConfigString, type DiagnosticCode } from "../../src/index.js";
import { SHARED_EXAMPLES } from "../support/fixtures.js";
import { nonEmpty, sharedExamplesPresent } from "../support/system.js";

interface Case {
  name: string;
  yaml: string;
  code: DiagnosticCode;
  line: number;
  col: number;
  path?: string;
  hint?: RegExp;
  files?: Record<string, string>;
}

const sharedInvalid: { file: string; code: DiagnosticCode; line: number; col: number; hint?: RegExp }[] = [
  { file: "bad-cidr.yaml", code: "DI020", line: 6, col: 31 },
  { file: "bad-port-range.yaml", code: "DI021", line: 4, col: 7 },
  { file: "localhost-forward.yaml", code: "DI024", line: 4, col: 25, hint: /CVE-2020-8558/ },
  { file: "numeric-mode.yaml", code: "DI040", line: 7, col: 20, hint: /"0644"/ },
  { file: "shell-injection.yaml", code: "DI025", line: 4, col: 23 },
  { file: "too-many-dns.yaml", code: "DI022", line: 5, col: 39 },
  { file: "unknown-key.yaml", code: "DI010", line: 3, col: 1, hint: /did you mean "ephemeral_ports"/ },
];

describe.skipIf(!sharedExamplesPresent(SHARED_EXAMPLES))("shared invalid examples", () => {
  it.each(nonEmpty(sharedInvalid, "shared invalid examples"))("$file fails with $code at $line:$col", ({ file, code, line, col, hint }) => {
    const source = readFileSync(join(SHARED_EXAMPLES, "invalid", file), "utf8");
    const r = loadConfigString(source, { file });
    expect(r.model).toBeUndefined();
    expect(r.diagnostics).toHaveLength(1);
    const d = r.diagnostics[0]!;
    expect({ code: d.code, line: d.line, col: d.col, file: d.file }).toEqual({ code, line, col, file });
    if (hint) expect(d.hint).toMatch(hint);
  });
});

const files = { "parts/ok.sh": "#!/bin/sh\necho ok\n", "motd.txt": "hello\n" };

const cases: Case[] = [
  { name: "YAML syntax error", yaml: "version: 1\nfirewall: [\n", code: "DI001", line: 3, col: 1 },
  { name: "duplicate key", yaml: "version: 1\nname: a\nname: b\n", code: "DI002", line: 3, col: 1 },
  { name: "anchor", yaml: "version: 1\nname: &n abc\n", code: "DI003", line: 2, col: 10 },
  { name: "merge key", yaml: "version: 1\nfirewall:\n  <<: {backend: nftables}\n", code: "DI003", line: 3, col: 3 },
  { name: "python tag", yaml: "version: 1\nname: !!python/object:os.system x\n", code: "DI003", line: 2, col: 33 },
  { name: "nested unknown key", yaml: "version: 1\nfirewall:\n  publshed: {}\n", code: "DI010", line: 3, col: 3, path: "firewall.publshed", hint: /did you mean "published"/ },
  { name: "wrong type", yaml: "version: 1\nephemeral_ports:\n  enabled: yes\n", code: "DI011", line: 3, col: 12, path: "ephemeral_ports.enabled", hint: /^write true: dockinit reads YAML 1\.2/ },
  { name: "enum", yaml: "version: 1\nfirewall:\n  backend: pf\n", code: "DI012", line: 3, col: 12, hint: /iptables/ },
  { name: "missing version", yaml: "name: x\n", code: "DI013", line: 1, col: 1 },
  { name: "version 2", yaml: "version: 2\n", code: "DI014", line: 1, col: 10 },
  { name: "bad name", yaml: "version: 1\nname: 'Web Host'\n", code: "DI017", line: 2, col: 7 },
  { name: "bad dns server", yaml: "version: 1\ndocker:\n  daemon:\n    dns: [vpc, 'dns.google']\n", code: "DI023", line: 4, col: 16 },
  { name: "bad IPv4 shorthand", yaml: "version: 1\nfirewall:\n  containers:\n    block: ['10.1']\n", code: "DI020", line: 4, col: 13 },
  { name: "range below 1024", yaml: "version: 1\nephemeral_ports:\n  to: 80-90\n", code: "DI021", line: 3, col: 7 },
  { name: "bad forward target", yaml: "version: 1\nport_forwards:\n  - { listen: 80, to: 'web:80' }\n", code: "DI026", line: 3, col: 23 },
  { name: "port out of range", yaml: "version: 1\nport_forwards:\n  - { listen: 70000, to: '198.51.100.1:80' }\n", code: "DI016", line: 3, col: 15 },
  { name: "duplicate published rule", yaml: "version: 1\nfirewall:\n  published:\n    rules:\n      - { port: 80, allow: [any] }\n      - { port: 80, allow: [loopback] }\n", code: "DI030", line: 6, col: 17 },
  { name: "dns in settings", yaml: "version: 1\ndocker:\n  daemon:\n    settings: { dns: ['1.1.1.1'] }\n", code: "DI031", line: 4, col: 22 },
  { name: "mode not octal", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /x, content: a, permissions: '0999' }\n", code: "DI041", line: 4, col: 44 },
  { name: "source escapes", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /x, source: ../../etc/shadow }\n", code: "DI042", line: 4, col: 27 },
  { name: "source missing", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /x, source: nope.txt }\n", code: "DI043", line: 4, col: 27 },
  { name: "reserved path", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /etc/docker/daemon.json, content: '{}' }\n", code: "DI044", line: 4, col: 15 },
  { name: "content and source", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /x, content: a, source: motd.txt }\n", code: "DI045", line: 4, col: 7 },
  { name: "relative path", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: etc/x, content: a }\n", code: "DI046", line: 4, col: 15 },
  { name: "bad package", yaml: "version: 1\nuser_data:\n  packages: ['jq; rm -rf /']\n", code: "DI048", line: 3, col: 14 },
  { name: "bad owner", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /x, content: a, owner: 'root root' }\n", code: "DI049", line: 4, col: 38 },
  { name: "bad part type", yaml: "version: 1\nuser_data:\n  parts: [{ file: parts/ok.sh, type: x-perl }]\n", code: "DI050", line: 3, col: 38 },
  { name: "parts without mime", yaml: "version: 1\nuser_data:\n  format: cloud-config\n  parts: [{ file: parts/ok.sh, type: x-shellscript }]\n", code: "DI051", line: 3, col: 11 },
  { name: "part escapes", yaml: "version: 1\nuser_data:\n  parts: [{ file: /etc/passwd, type: x-shellscript }]\n", code: "DI042", line: 3, col: 19 },
  // rollout: (StartInstanceRefresh's own limits, refused before any AWS call)
  { name: "checkpoints not increasing", yaml: "version: 1\nrollout:\n  checkpoints: [50, 20, 100]\n", code: "DI070", line: 3, col: 21, path: "rollout.checkpoints.1", hint: /increasing/ },
  { name: "checkpoints not ending in 100", yaml: "version: 1\nrollout:\n  checkpoints: [20, 50]\n", code: "DI070", line: 3, col: 21, path: "rollout.checkpoints.1", hint: /\[20, 50, 100\]/ },
  { name: "checkpoint above 100", yaml: "version: 1\nrollout:\n  checkpoints: [20, 150]\n", code: "DI016", line: 3, col: 21, path: "rollout.checkpoints.1" },
  { name: "max healthy below min healthy", yaml: "version: 1\nrollout:\n  min_healthy_percentage: 95\n  max_healthy_percentage: 90\n", code: "DI016", line: 4, col: 27, path: "rollout.max_healthy_percentage" },
  { name: "healthy percentages more than 100 apart", yaml: "version: 1\nrollout:\n  min_healthy_percentage: 50\n  max_healthy_percentage: 200\n", code: "DI072", line: 4, col: 27, path: "rollout.max_healthy_percentage" },
  { name: "negative warmup", yaml: "version: 1\nrollout:\n  instance_warmup: -30\n", code: "DI016", line: 3, col: 20, path: "rollout.instance_warmup" },
  { name: "checkpoint_delay without checkpoints", yaml: "version: 1\nrollout:\n  checkpoint_delay: 600\n", code: "DI073", line: 3, col: 21, path: "rollout.checkpoint_delay" },
  { name: "group listed twice", yaml: "version: 1\nrollout:\n  auto_scaling_groups: [web, api, web]\n", code: "DI071", line: 3, col: 35, path: "rollout.auto_scaling_groups.2" },
  { name: "auto_rollback neither auto nor a boolean", yaml: "version: 1\nrollout:\n  auto_rollback: sometimes\n", code: "DI011", line: 3, col: 18, path: "rollout.auto_rollback" },
  { name: "misspelt rollout key", yaml: "version: 1\nrollout:\n  min_health_percentage: 90\n", code: "DI010", line: 3, col: 3, path: "rollout.min_health_percentage", hint: /did you mean "min_healthy_percentage"/ },
  {
    name: "iptables backend beside Docker's nftables firewall",
    yaml: "version: 1\ndocker:\n  daemon:\n    settings: { firewall-backend: nftables }\nfirewall:\n  backend: iptables\n",
    code: "DI058",
    line: 6,
    col: 12,
  },
  { name: "route_localnet is refused, not ignored", yaml: "version: 1\nport_forwards:\n  - { listen: 8080, to: '198.51.100.1:80', route_localnet: true }\n", code: "DI035", line: 3, col: 60, path: "port_forwards.0.route_localnet", hint: /CVE-2020-8558/ },
  { name: "forward to loopback", yaml: "version: 1\nport_forwards:\n  - { listen: 8080, to: '127.0.0.1:80' }\n", code: "DI024", line: 3, col: 25, path: "port_forwards.0.to", hint: /listen on the host's address/ },
  { name: "interface name in a list", yaml: "version: 1\nfirewall:\n  external_interface: [ens5, 'a b']\n", code: "DI025", line: 3, col: 30, path: "firewall.external_interface.1" },
  { name: "auto inside an interface list", yaml: "version: 1\nfirewall:\n  external_interface: [ens5, auto]\n", code: "DI025", line: 3, col: 30, path: "firewall.external_interface.1", hint: /alone/ },
  { name: "interface prefix over 15 characters with its +", yaml: "version: 1\nfirewall:\n  external_interface: [br-1234567890ab+]\n", code: "DI025", line: 3, col: 24, path: "firewall.external_interface.0" },
  { name: "empty interface list", yaml: "version: 1\nfirewall:\n  external_interface: []\n", code: "DI015", line: 3, col: 23, path: "firewall.external_interface" },
  { name: "interface neither a name nor a list", yaml: "version: 1\nfirewall:\n  external_interface: 7\n", code: "DI011", line: 3, col: 23, path: "firewall.external_interface" },
  { name: "duplicate write_files path", yaml: "version: 1\nuser_data:\n  write_files:\n    - { path: /x, content: a }\n    - { path: /x, content: b }\n", code: "DI052", line: 5, col: 15 },
];

describe("invalid configurations", () => {
  it.each(cases)("$name → $code at $line:$col", ({ yaml, code, line, col, path, hint }) => {
    const r = loadConfigString(yaml, { file: "t.yaml", files: { read: (p) => files[p as keyof typeof files] } });
    expect(r.model).toBeUndefined();
    const d = r.diagnostics.find((x) => x.code === code);
    expect(d, JSON.stringify(r.diagnostics)).toBeDefined();
    expect([d!.line, d!.col]).toEqual([line, col]);
    if (path) expect(d!.path.join(".")).toBe(path);
    if (hint) expect(d!.hint).toMatch(hint);
  });

  it("reports every error of a file at once, sorted by position", () => {
    const r = loadConfigString("version: 1\nfirewall:\n  backend: pf\n  external_interface: 'a b'\nephemeral_ports:\n  to: 1-2\n");
    expect(r.diagnostics.map((d) => [d.code, d.line])).toEqual([
      ["DI012", 3],
      ["DI025", 4],
      ["DI021", 6],
    ]);
  });

  it("formats a diagnostic with file:line:col, path, caret and hint", () => {
    const src = "version: 1\nephemeral_ports:\n  to: 61000-49152\n";
    const d = loadConfigString(src, { file: "x.yaml" }).diagnostics[0]!;
    expect(formatDiagnostic(d, src, { color: false })).toBe(
      [
        'x.yaml:3:7: error DI021: "61000-49152" is not a port range inside 1024-65535 with LOW <= HIGH',
        "  at ephemeral_ports.to",
        "  3 |   to: 61000-49152",
        "    |       ^",
        "  hint: write LOW-HIGH with 1024 <= LOW <= HIGH <= 65535, e.g. 49152-61000",
      ].join("\n"),
    );
  });

  it("warns (without failing) when match lies inside to", () => {
    const r = loadConfigString("version: 1\nephemeral_ports:\n  match: 50000-60000\n  to: 49152-61000\n");
    expect(r.model).toBeDefined();
    expect(r.diagnostics.map((d) => [d.code, d.severity, d.line])).toEqual([["DI028", "warning", 3]]);
  });

  it("accepts YAML 1.1 booleans only as strings, never as booleans", () => {
    // `enabled: yes` is a string in YAML 1.2: a type error, not a silent true.
    const r = loadConfigString("version: 1\nephemeral_ports:\n  enabled: yes\n");
    expect(r.diagnostics[0]?.code).toBe("DI011");
  });

  it("refuses oversized files", () => {
    const r = loadConfigString(`version: 1\n#${"x".repeat(300 * 1024)}\n`);
    expect(r.diagnostics[0]?.code).toBe("DI004");
  });
});

describe("firewall.external_interface: auto, one name (as it always was), or a list", () => {
  it.each([
    ["(not given)", "", "auto"],
    ["auto", "auto", "auto"],
    ["one name", "ens5", ["ens5"]],
    ["a list, a prefix, a repeat", "[ens5, ens6, wg+, ens5]", ["ens5", "ens6", "wg+"]],
  ] as const)("%s", (_name, value, expected) => {
    const r = loadConfigString(`version: 1\n${value ? `firewall: { external_interface: ${value} }\n` : ""}`);
    expect(r.diagnostics).toEqual([]);
    expect(r.model?.firewall.externalInterfaces).toEqual(expected);
  });
});

describe("rollout: defaults and a full section", () => {
  it("without a rollout section the model carries the documented defaults", () => {
    const r = loadConfigString("version: 1\n");
    expect(r.model?.rollout).toEqual({
      autoScalingGroups: [],
      minHealthyPercentage: 90,
      maxHealthyPercentage: 100,
      instanceWarmup: 300,
      checkpoints: [],
      checkpointDelay: 0,
      alarms: [],
      bakeTime: 0,
      skipMatching: true,
      autoRollback: "auto",
      protectedInstances: "wait",
      standbyInstances: "wait",
      verify: false,
    });
  });

  it("every key is read", () => {
    const yaml = [
      "version: 1",
      "rollout:",
      "  auto_scaling_groups: [web-blue, web-green]",
      "  min_healthy_percentage: 50",
      "  max_healthy_percentage: 150",
      "  instance_warmup: 120",
      "  checkpoints: [20, 50, 100]",
      "  checkpoint_delay: 900",
      "  alarms: [web-5xx]",
      "  bake_time: 600",
      "  skip_matching: false",
      "  auto_rollback: true",
      "  protected_instances: refresh",
      "  standby_instances: ignore",
      "  verify: true",
      "",
    ].join("\n");
    const r = loadConfigString(yaml);
    expect(r.diagnostics).toEqual([]);
    expect(r.model?.rollout).toEqual({
      autoScalingGroups: ["web-blue", "web-green"],
      minHealthyPercentage: 50,
      maxHealthyPercentage: 150,
      instanceWarmup: 120,
      checkpoints: [20, 50, 100],
      checkpointDelay: 900,
      alarms: ["web-5xx"],
      bakeTime: 600,
      skipMatching: false,
      autoRollback: true,
      protectedInstances: "refresh",
      standbyInstances: "ignore",
      verify: true,
    });
  });
});

describe("the catalogue", () => {
  it("has a title and a hint for every code, and codes are DI + 3 digits", () => {
    for (const [code, entry] of Object.entries(catalogue)) {
      expect(code).toMatch(/^DI\d{3}$/);
      expect(entry.title.length).toBeGreaterThan(5);
      expect(entry.hint.length).toBeGreaterThan(5);
    }
  });
});
