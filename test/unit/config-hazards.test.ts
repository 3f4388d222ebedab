// Config hazards a stranger walks into: an IPv4-only catch-all or a CIDR with
// host bits set in a network list (warnings), DI047's hint fitting the gzip
// setting, wrong types named as such, one error per alias problem, and a
// binary or non-UTF-8 file as one error without echoing its bytes.
// Table-driven.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeConfigText, firstInvalidUtf8 } from "../../src/config/load.js";
import { runCli } from "../../src/cli/main.js";
import { catalogue, formatDiagnostic, loadConfig, loadConfigString, renderBundle, type Diagnostic, type DiagnosticCode } from "../../src/index.js";

const load = (yaml: string, files: Record<string, string> = {}) => loadConfigString(yaml, { file: "t.yaml", files: { read: (p) => files[p] } });
const brief = (d: Diagnostic) => ({ code: d.code, severity: d.severity, line: d.line, col: d.col, path: d.path.join(".") });

describe("network lists: IPv4 catch-all without ::/0 (DI033) and host bits (DI034)", () => {
  it("both are warnings in the catalogue", () => {
    expect(catalogue.DI033.severity).toBe("warning");
    expect(catalogue.DI034.severity).toBe("warning");
  });

  const cases: { name: string; yaml: string; want: { code: DiagnosticCode; line: number; col: number; path: string; message: RegExp; hint: RegExp }[] }[] = [
    {
      name: "published allow-list with 0.0.0.0/0 only",
      yaml: "version: 1\nfirewall:\n  published:\n    rules:\n      - { port: 443, allow: ['0.0.0.0/0'] }\n",
      want: [{ code: "DI033", line: 5, col: 30, path: "firewall.published.rules.0.allow.0", message: /443\/tcp but not every IPv6 client \(the list has no ::\/0 or `any`\)/, hint: /`::\/0`.*`any`/ }],
    },
    {
      name: "egress allow-list with 0.0.0.0/0 only",
      yaml: "version: 1\nfirewall:\n  containers:\n    egress_allow: [10.0.0.0/8, 0.0.0.0/0]\n",
      want: [{ code: "DI033", line: 4, col: 32, path: "firewall.containers.egress_allow.1", message: /IPv6 destinations outside the list are dropped/, hint: /::\/0/ }],
    },
    {
      name: "ephemeral sources with 0.0.0.0/0 only",
      yaml: "version: 1\nephemeral_ports:\n  sources: ['0.0.0.0/0']\n",
      want: [{ code: "DI033", line: 3, col: 13, path: "ephemeral_ports.sources.0", message: /IPv6 connections/, hint: /`any`/ }],
    },
    {
      name: "block list with 0.0.0.0/0 only",
      yaml: "version: 1\nfirewall:\n  containers:\n    block: [0.0.0.0/0]\n",
      want: [{ code: "DI033", line: 4, col: 13, path: "firewall.containers.block.0", message: /still reach IPv6/, hint: /::\/0/ }],
    },
    {
      name: "IPv4 host bits",
      yaml: "version: 1\nfirewall:\n  containers:\n    block: [10.0.0.1/8]\n",
      want: [{ code: "DI034", line: 4, col: 13, path: "firewall.containers.block.0", message: /10\.0\.0\.1\/8 .*10\.0\.0\.0\/8/, hint: /write 10\.0\.0\.0\/8, or 10\.0\.0\.1\/32/ }],
    },
    {
      name: "IPv6 host bits",
      yaml: "version: 1\nfirewall:\n  published:\n    rules:\n      - { port: 22, allow: ['2001:db8::1/32'] }\n",
      want: [{ code: "DI034", line: 5, col: 29, path: "firewall.published.rules.0.allow.0", message: /2001:db8::\/32/, hint: /write 2001:db8::\/32, or 2001:db8::1\/128/ }],
    },
    {
      name: "both at once: 10.1.2.3/0 is an IPv4 catch-all with host bits",
      yaml: "version: 1\nfirewall:\n  containers:\n    egress_allow: ['10.1.2.3/0']\n",
      want: [
        { code: "DI033", line: 4, col: 20, path: "firewall.containers.egress_allow.0", message: /10\.1\.2\.3\/0/, hint: /::\/0/ },
        { code: "DI034", line: 4, col: 20, path: "firewall.containers.egress_allow.0", message: /0\.0\.0\.0\/0/, hint: /write 0\.0\.0\.0\/0/ },
      ],
    },
    { name: "0.0.0.0/0 beside ::/0", yaml: "version: 1\nfirewall:\n  containers:\n    egress_allow: [0.0.0.0/0, '::/0']\n", want: [] },
    { name: "0.0.0.0/0 beside any", yaml: "version: 1\nfirewall:\n  published:\n    rules:\n      - { port: 80, allow: [0.0.0.0/0, any] }\n", want: [] },
    { name: "networks and single addresses written plainly", yaml: "version: 1\nfirewall:\n  containers:\n    block: [10.0.0.0/8, 192.0.2.7, 192.0.2.7/32, '2001:db8::/32', '2001:db8::1']\n", want: [] },
    { name: "loopback and any keywords", yaml: "version: 1\nfirewall:\n  published:\n    rules:\n      - { port: 80, allow: [loopback] }\n      - { port: 81, allow: [any] }\n", want: [] },
  ];

  it.each(cases)("$name", ({ yaml, want }) => {
    const r = load(yaml);
    // Warnings never stop the config: the model is built and renders.
    expect(r.model, JSON.stringify(r.diagnostics)).toBeDefined();
    expect(r.diagnostics.map(brief)).toEqual(want.map(({ code, line, col, path }) => ({ code, severity: "warning", line, col, path })));
    r.diagnostics.forEach((d, i) => {
      expect(d.file).toBe("t.yaml");
      expect(d.message).toMatch(want[i]!.message);
      expect(d.hint).toMatch(want[i]!.hint);
    });
    expect(renderBundle(r).bundle).toBeDefined();
  });

  describe("through the CLI", () => {
    const dir = mkdtempSync(join(tmpdir(), "dockinit-hazards-cli-"));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "dockinit.yaml"), "version: 1\nfirewall:\n  containers:\n    block: [10.0.0.1/8]\n    egress_allow: [0.0.0.0/0]\n");
    const cli = async (argv: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await runCli(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), cwd: dir, env: {} });
      return { code, out: stdout + stderr, stdout };
    };

    it.each([["check"], ["render", "-o", "out"]])("%s prints both warnings with position and hint, and succeeds", async (...argv) => {
      const r = await cli([...argv, "-c", "dockinit.yaml"]);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/dockinit\.yaml:4:13: warning DI034: 10\.0\.0\.1\/8 has host bits set/);
      expect(r.out).toMatch(/dockinit\.yaml:5:20: warning DI033: 0\.0\.0\.0\/0 /);
      expect(r.out).toMatch(/hint: write 10\.0\.0\.0\/8/);
    });

    it("check --json lists them as diagnostics", async () => {
      const r = await cli(["check", "-c", "dockinit.yaml", "--json"]);
      expect(r.code).toBe(0);
      const json = JSON.parse(r.stdout) as { diagnostics: Diagnostic[] };
      expect(json.diagnostics.map((d) => [d.code, d.severity, d.line, d.col])).toEqual([
        ["DI034", "warning", 4, 13],
        ["DI033", "warning", 5, 20],
      ]);
    });
  });
});

describe("DI047: the hint fits the gzip setting", () => {
  // Deterministic bytes gzip cannot shrink: an xorshift stream in base64.
  const noise = (n: number) => {
    const out = Buffer.alloc(n);
    let x = 0x9e3779b9;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out.toString("base64");
  };
  const files = { "text.txt": "the same line of text, again and again\n".repeat(800), "noise.b64": noise(30_000) };

  it.each([
    { gzip: "never", file: "text.txt", hint: /^set `user_data\.gzip: auto` \(it is never\): gzipped, user-data is \d+ bytes$/ },
    { gzip: "never", file: "noise.b64", hint: /^gzip would not be enough \(\d+ bytes gzipped\); move large files out of user-data/ },
    { gzip: "auto", file: "noise.b64", hint: /^user-data is already gzipped \(user_data\.gzip: auto\); move large files out/ },
    { gzip: "always", file: "noise.b64", hint: /^user-data is already gzipped \(user_data\.gzip: always\); move large files out/ },
  ])("gzip: $gzip with $file", ({ gzip, file, hint }) => {
    const r = renderBundle(load(`version: 1\nuser_data:\n  gzip: ${gzip}\n  write_files: [{ path: /opt/payload, source: ${file} }]\n`, files));
    expect(r.bundle).toBeUndefined();
    expect(r.diagnostics.map((d) => d.code)).toEqual(["DI047"]);
    const d = r.diagnostics[0]!;
    expect(d.hint).toMatch(hint);
    // Suggesting gzip when it is already on sent users in a circle.
    if (gzip !== "never") expect(d.hint).not.toMatch(/set `user_data\.gzip/);
  });

  it("the catalogue's own hint no longer assumes gzip is off", () => {
    expect(catalogue.DI047.hint).toMatch(/if it is `never`/);
  });
});

describe("DI011 names the type it wants and what it got", () => {
  it.each([
    { name: "yes for a boolean", yaml: "version: 1\ndocker: {install: yes}\n", path: "docker.install", message: 'expected a boolean (true or false), got the string "yes"', hint: /^write true: dockinit reads YAML 1\.2, where `yes` is a string/ },
    { name: "off for a boolean", yaml: "version: 1\nephemeral_ports:\n  enabled: off\n", path: "ephemeral_ports.enabled", message: 'expected a boolean (true or false), got the string "off"', hint: /^write false:/ },
    { name: "quoted true", yaml: "version: 1\ndocker: {install: 'true'}\n", path: "docker.install", message: 'expected a boolean (true or false), got the string "true"', hint: /^remove the quotes: write true$/ },
    { name: "a number for a boolean", yaml: "version: 1\ndocker: {install: 1}\n", path: "docker.install", message: "expected a boolean (true or false), got the number 1", hint: /true or false/ },
    { name: "an empty value", yaml: "version: 1\ndocker:\n  install:\n", path: "docker.install", message: "expected a boolean (true or false), got an empty value", hint: /after the colon, or remove the key/ },
    { name: "quoted port", yaml: "version: 1\nport_forwards: [{ listen: '8080', to: '198.51.100.1:80' }]\n", path: "port_forwards.0.listen", message: 'expected a number, got the string "8080"', hint: /^remove the quotes: write 8080$/ },
    { name: "fractional port", yaml: "version: 1\nport_forwards: [{ listen: 80.5, to: '198.51.100.1:80' }]\n", path: "port_forwards.0.listen", message: "expected a whole number, got the number 80.5", hint: /whole number/ },
    { name: "a number for a string", yaml: "version: 1\nlaunch_template: { name: 1.10 }\n", path: "launch_template.name", message: "expected a string, got the number 1.1", hint: /^quote it to keep it as written: "1\.10"$/ },
    { name: "a boolean for a string", yaml: "version: 1\nuser_data:\n  packages: [true]\n", path: "user_data.packages.0", message: "expected a string, got the boolean true", hint: /"true"/ },
    { name: "a string for a list", yaml: "version: 1\nfirewall:\n  containers:\n    block: 10.0.0.0/8\n", path: "firewall.containers.block", message: 'expected a list, got the string "10.0.0.0/8"', hint: /\[10\.0\.0\.0\/8\]/ },
    { name: "a string for a mapping", yaml: "version: 1\nfirewall: nftables\n", path: "firewall", message: 'expected a mapping, got the string "nftables"', hint: /key: value/ },
    { name: "a list for a mapping (record)", yaml: "version: 1\ndocker: { daemon: { settings: [a] } }\n", path: "docker.daemon.settings", message: "expected a mapping, got a list", hint: /key: value/ },
    { name: "one of a literal and a boolean", yaml: "version: 1\nrollout:\n  auto_rollback: sometimes\n", path: "rollout.auto_rollback", message: 'expected "auto" or a boolean (true or false), got the string "sometimes"', hint: /^write "auto" or a boolean/ },
    { name: "one of two literals and a number", yaml: "version: 1\nlaunch_template: { name: web, source_version: latest }\n", path: "launch_template.source_version", message: 'expected "$Latest", "$Default" or a number, got the string "latest"', hint: /\$Latest/ },
    { name: "a string or a list", yaml: "version: 1\nuser_data:\n  runcmd: [{ a: 1 }]\n", path: "user_data.runcmd.0", message: "expected a string or a list, got a mapping", hint: /a string or a list/ },
    { name: "inside the list alternative", yaml: "version: 1\nuser_data:\n  runcmd: [[echo, 1]]\n", path: "user_data.runcmd.0.1", message: "expected a string, got the number 1", hint: /"1"/ },
    { name: "the right type failing its own check", yaml: "version: 1\nlaunch_template: { name: web, source_version: 0 }\n", code: "DI016", path: "launch_template.source_version", message: "0 is below the minimum 1", hint: /inside the allowed range/ },
    { name: "top level", yaml: "- version: 1\n", path: "", message: "expected a mapping at the top level, got a list", hint: /version: 1/ },
  ] as { name: string; yaml: string; code?: DiagnosticCode; path: string; message: string; hint: RegExp }[])("$name", ({ yaml, code, path, message, hint }) => {
    const r = load(yaml);
    expect(r.model).toBeUndefined();
    expect(r.diagnostics.map((d) => d.code)).toEqual([code ?? "DI011"]);
    const d = r.diagnostics[0]!;
    expect(d.path.join(".")).toBe(path);
    expect(d.message).toBe(message);
    expect(d.hint).toMatch(hint);
    expect(d.line).toBeGreaterThan(0);
  });
});

describe("DI003: one error per alias problem, not one per use", () => {
  const reused = `version: 1\nfirewall:\n  published:\n    rules:\n${Array.from({ length: 60 }, (_, i) => `      - { port: ${1000 + i}, allow: ${i === 0 ? "&net ['10.0.0.0/8']" : "*net"} }\n`).join("")}`;
  const laughs = [
    "version: 1",
    "x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    ...["b", "c", "d", "e", "f"].map((n, i) => `x-${n}: &${n} [${Array(9).fill(`*${"abcde"[i]}`).join(", ")}]`),
    "",
  ].join("\n");
  it.each([
    { name: "one anchor used 59 times", yaml: reused, at: [5, 35], message: "anchor &net and 59 aliases *net are not allowed" },
    { name: "a billion-laughs chain", yaml: laughs, at: [2, 9], message: "6 anchors &a, &b, &c, &d, &e, … and 45 aliases *a, *b, *c, *d, *e are not allowed" },
    { name: "an alias without its anchor, used 59 times", yaml: reused.replace("&net ", ""), at: [6, 30], message: "59 aliases *net are not allowed" },
    { name: "an alias before its anchor", yaml: "version: 1\nname: *n\nx-n: &n web\n", at: [2, 7], message: "anchor &n and alias *n are not allowed" },
    { name: "a lone anchor", yaml: "version: 1\nname: &n abc\n", at: [2, 10], message: "anchor &n is not allowed" },
    { name: "one custom tag, many times", yaml: `version: 1\nuser_data:\n  runcmd: [${Array(30).fill("!sh x").join(", ")}]\n`, at: [3, 16], message: "tag !sh is not allowed (30 places)" },
    { name: "merge keys", yaml: "version: 1\nx: [{<<: {a: 1}}, {<<: {b: 2}}]\n", at: [2, 6], message: "merge key << is not allowed (2 places)" },
  ])("$name", ({ yaml, at, message }) => {
    const r = load(yaml);
    expect(r.diagnostics.map((d) => [d.code, d.line, d.col, d.message])).toEqual([["DI003", ...at, message]]);
  });

  it("different problems stay separate, each once", () => {
    const r = load("version: 1\nx-a: &a [1]\nx-b: [*a, *a, !t 1, !t 2, !u 3]\nx-c: {<<: *a}\n");
    expect(r.diagnostics.map((d) => d.message)).toEqual(["anchor &a and 3 aliases *a are not allowed", "tag !t is not allowed (2 places)", "tag !u is not allowed", "merge key << is not allowed"]);
  });
});

describe("DI006: a file that is not UTF-8 text is one error, its bytes never echoed", () => {
  const dir = mkdtempSync(join(tmpdir(), "dockinit-hazards-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  // 3 KB of deterministic noise, the shape of a binary passed by mistake.
  const binary = Buffer.alloc(3072);
  for (let i = 0, x = 12345; i < binary.length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    binary[i] = x >>> 16;
  }
  const firstBad = (() => {
    const control = binary.findIndex((b) => b < 0x20 && b !== 9 && b !== 10 && b !== 13);
    const invalid = firstInvalidUtf8(binary);
    return Math.min(...[control, invalid].filter((n) => n >= 0));
  })();

  it.each([
    { name: "3 KB of random bytes", bytes: binary, message: new RegExp(`^the file is not (UTF-8 )?text: byte ${firstBad} `) },
    { name: "Latin-1 text", bytes: Buffer.from("version: 1\nname: caf\xe9\n", "latin1"), message: /^the file is not UTF-8 text: byte 20 \(0xE9\) does not begin a valid UTF-8 sequence$/, at: [2, 10] },
    { name: "UTF-16 with its BOM", bytes: Buffer.from("\ufeffversion: 1\n", "utf16le"), message: /^the file is not UTF-8 text: byte 0 \(0xFF\)/, at: [1, 1] },
    { name: "a NUL before an invalid byte", bytes: Buffer.from("version: 1\n\0\xff\n", "latin1"), message: /^the file is not text: byte 11 is the control character U\+0000 NUL$/, at: [2, 1] },
    { name: "an escape character", bytes: Buffer.from("version: 1\nname: \x1b[31mred\n"), message: /byte 17 is the control character U\+001B ESC$/, at: [2, 7] },
    { name: "a form feed after non-ASCII text (offset in bytes)", bytes: Buffer.from("version: 1\n# é\f\n"), message: /byte 15 is the control character U\+000C$/, at: [2, 4] },
  ])("loadConfig: $name", ({ bytes, message, at }) => {
    const r = loadConfig(write("dockinit.yaml", bytes));
    expect(r.model).toBeUndefined();
    expect(r.diagnostics).toHaveLength(1);
    const d = r.diagnostics[0]!;
    expect(d.code).toBe("DI006");
    expect(d.message).toMatch(message);
    expect(d.hint).toMatch(/YAML file in UTF-8/);
    if (at) expect([d.line, d.col]).toEqual(at);
    const shown = formatDiagnostic(d, r.source, { color: false });
    expect(shown.split("\n")).toHaveLength(2); // the headline and the hint: no echoed line, no caret
    // eslint-disable-next-line no-control-regex
    expect(shown).not.toMatch(/[\u0000-\u0008\u000b-\u001f\ufffd]/);
  });

  it.each([
    { name: "a NUL in a comment", yaml: "version: 1\n# \0\n", message: /byte 13 is the control character U\+0000 NUL/, at: [2, 3] },
    { name: "a bell in a value", yaml: "version: 1\nuser_data: {runcmd: ['a\u0007b']}\n", message: /U\+0007/, at: [2, 24] },
  ])("loadConfigString: $name", ({ yaml, message, at }) => {
    const r = load(yaml);
    expect(r.diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([["DI006", ...at]]);
    expect(r.diagnostics[0]!.message).toMatch(message);
  });

  it.each([
    { name: "UTF-8 with a BOM", bytes: Buffer.from("\ufeffversion: 1\nname: web\n") },
    { name: "non-ASCII in comments and values", bytes: Buffer.from("version: 1\n# café, 日本, 😀\nuser_data: {runcmd: ['echo ü😀']}\n") },
    { name: "CRLF and tabs inside a value", bytes: Buffer.from("version: 1\r\nuser_data: {runcmd: ['a\tb']}\r\n") },
    { name: "escapes of control characters in double quotes", bytes: Buffer.from('version: 1\nuser_data: {runcmd: ["a\\u001bb\\0"]}\n') },
  ])("text that is fine still loads: $name", ({ bytes }) => {
    const r = loadConfig(write("ok.yaml", bytes));
    expect(r.diagnostics).toEqual([]);
    expect(r.model).toBeDefined();
  });

  const utf8Cases: { name: string; bytes: number[]; bad: number }[] = [
    { name: "ASCII", bytes: [0x61, 0x62], bad: -1 },
    { name: "two-byte é", bytes: [0x61, 0xc3, 0xa9], bad: -1 },
    { name: "four-byte 😀", bytes: [0xf0, 0x9f, 0x98, 0x80], bad: -1 },
    { name: "U+10FFFF", bytes: [0xf4, 0x8f, 0xbf, 0xbf], bad: -1 },
    { name: "stray continuation byte", bytes: [0x61, 0x80], bad: 1 },
    { name: "overlong two-byte NUL", bytes: [0xc0, 0x80], bad: 0 },
    { name: "overlong three-byte", bytes: [0x61, 0xe0, 0x80, 0x80], bad: 1 },
    { name: "UTF-16 surrogate", bytes: [0xed, 0xa0, 0x80], bad: 0 },
    { name: "above U+10FFFF", bytes: [0xf4, 0x90, 0x80, 0x80], bad: 0 },
    { name: "truncated at the end", bytes: [0x61, 0x62, 0xe2, 0x82], bad: 2 },
    { name: "lead byte then ASCII", bytes: [0xe2, 0x41, 0x41], bad: 0 },
    { name: "0xFF", bytes: [0x61, 0xff], bad: 1 },
  ];
  it.each(utf8Cases)("firstInvalidUtf8: $name → $bad", ({ bytes, bad }) => {
    expect(firstInvalidUtf8(Uint8Array.from(bytes))).toBe(bad);
  });

  it("firstInvalidUtf8 agrees with the strict TextDecoder on random byte strings", () => {
    const strict = new TextDecoder("utf-8", { fatal: true });
    let x = 7;
    const next = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) >>> 16;
    for (let n = 0; n < 5000; n++) {
      // Mostly high bytes, so that valid multi-byte sequences occur too.
      const bytes = Uint8Array.from({ length: 1 + (next() % 8) }, () => (next() % 4 === 0 ? next() % 0x80 : 0x80 + (next() % 0x80)));
      let valid = true;
      try {
        strict.decode(bytes);
      } catch {
        valid = false;
      }
      expect(firstInvalidUtf8(bytes) === -1, Buffer.from(bytes).toString("hex")).toBe(valid);
      // The bytes before the reported one decode on their own.
      const bad = firstInvalidUtf8(bytes);
      if (bad > 0) expect(() => strict.decode(bytes.subarray(0, bad))).not.toThrow();
    }
  });

  it("decodeConfigText keeps a BOM, as readFileSync does, so offsets stay the file's", () => {
    expect(decodeConfigText(Buffer.from("\ufeffversion: 1\n")).source).toBe("\ufeffversion: 1\n");
  });
});
