// fast-check arbitraries over the whole dockinit.yaml schema, producing YAML
// *text*: valid configurations (with the values most likely to trip a
// renderer: YAML 1.1 look-alikes, quotes, control characters, long strings,
// every address form ipaddr.js accepts) and near-valid ones (one or two
// mutations away from valid: a wrong type, a value just out of range, a
// misspelt key, an anchor, a duplicate key, a truncated file...).
//
// The property under test (test/unit/property.test.ts) does not need to
// know which kind a sample is: every config must either be rejected with a
// coded diagnostic or render into a bundle that passes every validator. The
// `kind` is kept for statistics only.
import fc from "fast-check";
import { Scalar, stringify } from "yaml";

/** Text the generated `source:` and part `file:` entries may refer to. */
export const GENERATED_FILES: Record<string, string> = {
  "files/motd.txt": "Welcome\n",
  "files/yes.txt": "yes\n",
  "files/empty.txt": "",
  "files/crlf.txt": "a\r\nb\r\n",
  "files/script.sh": "#!/bin/sh\necho hello\n",
  "parts/boot.sh": "#!/bin/bash\nset -eu\necho part\n",
  "parts/extra.yaml": "#cloud-config\npackages: [curl]\n",
  "parts/hook.sh": "#!/bin/sh\necho boothook\n",
};

// ── strings ───────────────────────────────────────────────────────────────

/** Strings that YAML 1.1 (PyYAML, so cloud-init) reads as something else, or that YAML syntax gives meaning to. */
export const YAML_TRAPS = [
  "yes", "no", "on", "off", "y", "n", "Y", "N", "Yes", "NO", "On", "OFF", "true", "False", "TRUE",
  "~", "null", "Null", "NULL", "", " ", "=", "<<", "0644", "0755", "0o644", "0x1F", "0b101", "1_000", "1:20", "1:20:30.5",
  "190:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2002-12-14 21:59:43.10 -5", ".inf", "-.Inf", ".NaN", "1e3", "1.0e+3",
  "+1", "-0", "0.5", ".5", "5.", "00", "007", "08", "09", "012345", "-", "?", ":", "? x", "- x", "a: b", "a:b", "#x", " #x",
  "x #y", "!", "!!str x", "!!python/object/apply:os.system ['touch /tmp/dockinit-canary']", "&a x", "*a", "%YAML 1.1", "---",
  "...", "|", ">", "|-", "@x", "`x`", "'", "''", "\"", "\\", "\\n", "{a: 1}", "[1, 2]", "{", "]", ",", "a,b",
];

/** Characters that stress quoting: shell metacharacters, YAML indicators, control and format characters, non-BMP. */
const STRESS_CHARS = [
  "'", '"', "\\", "$", "`", ";", "|", "&", "(", ")", "<", ">", "*", "?", "[", "]", "{", "}", "#", "~", "!", "%", "@", ":", ",",
  "-", "=", " ", "\t", "\n", "\r", "\u0000", "\u0001", "\u001b", "\u007f", "\u0085", "\u00a0", "\u2028", "\u2029", "\ufeff",
  "\u202e", "\u200b", "é", "ß", "ｓ", "；", "＄", "😀", "𝕏", "a", "0", "/",
];

const stressString = (maxLength = 24) => fc.array(fc.constantFrom(...STRESS_CHARS), { maxLength }).map((a) => a.join(""));

/** Any string a user might put in a free-form field. */
export const freeString = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...YAML_TRAPS) },
    { weight: 3, arbitrary: stressString(maxLength) },
    { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength }) },
    { weight: 1, arbitrary: fc.string({ maxLength }) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...YAML_TRAPS), stressString(6)).map(([a, b]) => a + b) },
  );

/** Multi-line file content, sometimes with trailing blank lines or leading spaces (block-scalar edge cases). */
const fileContent = fc.oneof(
  freeString(60),
  fc.array(freeString(20), { maxLength: 6 }).map((lines) => lines.join("\n")),
  fc.tuple(fc.constantFrom("", " ", "  ", "\t", "\n"), freeString(20), fc.constantFrom("", "\n", "\n\n", " \n", "\n \n")).map((p) => p.join("")),
  fc.constantFrom("#!/bin/sh\necho hi\n", "key: value\n", "  indented\nnot\n", "\n\nstarts blank\n", "no newline", "---\n...\n"),
);

// ── addresses, ports, names ───────────────────────────────────────────────

const ipv4 = fc.oneof(
  fc.constantFrom("198.51.100.10", "203.0.113.7", "192.0.2.1", "10.0.0.0", "172.17.0.0", "0.0.0.0", "255.255.255.255", "169.254.169.253", "100.64.0.1"),
  fc.ipV4(),
);
const ipv6 = fc.oneof(
  fc.constantFrom("2001:db8::1", "2001:db8:20::10", "::", "::1", "fd00:ec2::253", "fe80::1", "2001:db8:0:1:1:1:1:1", "::ffff:192.0.2.1", "::192.0.2.1", "64:ff9b::c000:201"),
  fc.ipV6(),
);
const cidr4 = fc.tuple(ipv4, fc.option(fc.integer({ min: 0, max: 32 }), { nil: undefined })).map(([a, p]) => (p === undefined ? a : `${a}/${p}`));
const cidr6 = fc.tuple(ipv6, fc.option(fc.integer({ min: 0, max: 128 }), { nil: undefined })).map(([a, p]) => (p === undefined ? a : `${a}/${p}`));
const cidr = fc.oneof({ weight: 3, arbitrary: cidr4 }, { weight: 2, arbitrary: cidr6 });
const cidrs = (max: number) => fc.array(cidr, { maxLength: max });

const badCidr = fc.constantFrom(
  "10.0.0.0/33", "10.1", "0x7f.0.0.1", "010.0.0.1", "1.2.3.4/ 8", "1.2.3.4/08x", "::g", "2001:db8::/129", "fe80::1%eth0", "any ", "ANY",
  "1.2.3.4/-1", "", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/", "/24", "2001:db8:::1", "localhost", "10.0.0.0/8,10.1.0.0/16",
);

const port = fc.integer({ min: 1, max: 65535 });
const highPort = fc.integer({ min: 1024, max: 65535 });
const portRange = fc.tuple(highPort, highPort).map(([a, b]) => (a === b && a % 2 === 0 ? `${a}` : `${Math.min(a, b)}-${Math.max(a, b)}`));
const badPortRange = fc.constantFrom("80-90", "61000-49152", "1024-65536", "abc", "1024-", "-2000", "49152:61000", " 49152-61000", "49152-61000-62000", "0-0", "01024-2000");

const ifName = fc.oneof(
  fc.constantFrom("eth0", "ens5", "enp0s3", "br-1234567890ab", "wg0", "eth0.100", "a", "x_y", "if@1"),
  fc.stringMatching(/^[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,14}$/).filter((s) => s !== "." && s !== ".."),
);
const badIfName = fc.constantFrom("eth 0", "eth0;id", "$(id)", "sixteen-chars-xx", "", "eth0\n", "a/b", "a:b", "'", "eth+", "-j", "--help", ".", "..");

const dnsServer = fc.oneof(fc.constantFrom("vpc", "amazon"), ipv4, ipv6);
const domain = fc.oneof(fc.constantFrom("internal.example", "svc.internal.example", "example.", "a", "x-1.y-2.example"), fc.domain());

const name = fc.oneof(fc.constantFrom("dockinit", "web-1", "a", "build-runner", "0"), fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/));
const badName = fc.constantFrom("Web", "-a", "a-", "a_b", "a".repeat(64), "", "a b", "ä", "yes!");

/** Absolute paths with awkward characters (spaces, unicode, YAML indicators) but nothing dockinit refuses. */
const userPath = fc
  .array(
    fc.oneof(
      fc.constantFrom("etc", "opt", "app", "motd", "yes", "on", "0644", "a b", "x:y", "#c", "é", "-", "!x", "*a", "&b", "~", "=", "<<", "conf.d", "x.sh"),
      fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((s) => s !== "." && s !== ".."),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((segs) => `/${segs.join("/")}`);
const mode = fc.oneof(fc.constantFrom("0644", "0755", "0600", "0640", "644", "755", "0400", "1777", "4755", "0000"), fc.stringMatching(/^0?[0-7]{3,4}$/));
const owner = fc.oneof(fc.constantFrom("root:root", "root", "nobody:nogroup", "app", "yes", "on:off", "no", "y", "_x-1:_y"), fc.stringMatching(/^[a-z_][a-z0-9_-]{0,8}(:[a-z_][a-z0-9_-]{0,8})?$/));
const packageName = fc.oneof(
  fc.constantFrom("jq", "htop", "curl", "yes", "no", "on", "0x10", "1e3", "1_000", "1:20", "2001-12-14", "0777", "nginx=1.24.0-1", "libc6:amd64", "g++", "python3.11", "y", "null", "true"),
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9+.:=~_-]{0,20}$/),
);

/** A JSON value for daemon.json settings: strings get the trap treatment too. */
const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    freeString(20),
    fc.integer({ min: -1_000_000, max: 1_000_000 }),
    fc.boolean(),
    fc.constant(null),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(freeString(10), tie("v"), { maxKeys: 3 }),
  ),
})).v;

// ── the config object ─────────────────────────────────────────────────────

type Obj = Record<string, unknown>;

/** Keep a key only sometimes (with probability `present`): most configs rely on defaults for most keys. */
const maybe = <T>(arb: fc.Arbitrary<T>, present = 0.5): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: Math.round((1 - present) * 20), arbitrary: fc.constant(undefined) }, { weight: Math.round(present * 20), arbitrary: arb });

function compact(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

const publishedRules = fc
  .uniqueArray(
    fc.record({
      port,
      protocol: maybe(fc.constantFrom("tcp", "udp")),
      allow: fc.array(fc.oneof(fc.constantFrom("any", "loopback"), cidr), { minLength: 1, maxLength: 4 }),
    }),
    { maxLength: 5, selector: (r) => `${r.port}/${r.protocol ?? "tcp"}` },
  )
  .map((rules) => rules.map(compact));

const portForward = fc
  .record({
    listen: port,
    to: fc.oneof(
      fc.tuple(ipv4, port).map(([a, p]) => `${a}:${p}`),
      fc.tuple(ipv6, port).map(([a, p]) => `[${a}]:${p}`),
    ),
    protocol: maybe(fc.constantFrom("tcp", "udp")),
    // true is refused (DI035): the valid side writes only false.
    route_localnet: maybe(fc.constant(false)),
  })
  .map(compact);

const writeFile = fc
  .record({
    path: userPath,
    body: fc.oneof(
      { weight: 4, arbitrary: fileContent.map((content) => ({ content })) },
      { weight: 1, arbitrary: fc.constantFrom(...Object.keys(GENERATED_FILES).filter((f) => f.startsWith("files/"))).map((source) => ({ source })) },
    ),
    permissions: maybe(mode),
    owner: maybe(owner),
    defer: maybe(fc.boolean()),
    append: maybe(fc.boolean(), 0.2),
  })
  .map(({ body, ...rest }) => compact({ ...rest, ...body }));

const part = fc
  .record({
    fileAndType: fc.constantFrom<[string, string]>(
      ["parts/boot.sh", "x-shellscript"],
      ["parts/boot.sh", "x-shellscript-per-boot"],
      ["parts/extra.yaml", "cloud-config"],
      ["parts/hook.sh", "cloud-boothook"],
    ),
    filename: maybe(fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/), 0.3),
    merge_type: maybe(fc.constantFrom("list(append)+dict(recurse_array)+str()", "dict(recurse_array,no_replace)+list(append)"), 0.3),
  })
  .map(({ fileAndType: [file, type], ...rest }) => compact({ file, type, ...rest }));

const runcmdEntry = fc.oneof(freeString(40), fc.array(freeString(15), { minLength: 1, maxLength: 4 }));

/** A valid configuration object (as far as the generator can tell; cross-field rules may still refuse it). */
export const validConfigObject: fc.Arbitrary<Obj> = fc
  .record({
    $schema: maybe(freeString(20), 0.1),
    name: maybe(name),
    docker: maybe(
      fc.record({
        install: maybe(fc.boolean()),
        daemon: maybe(
          fc.record({
            dns: maybe(fc.array(dnsServer, { maxLength: 3 })),
            dns_search: maybe(fc.array(domain, { maxLength: 6 }), 0.3),
            settings: maybe(fc.dictionary(freeString(12).filter((k) => k !== "dns" && k !== "dns-search" && k !== "__proto__"), jsonValue, { maxKeys: 4 }), 0.4),
          }).map(compact),
        ),
      }).map(compact),
    ),
    ephemeral_ports: maybe(
      fc.record({
        enabled: maybe(fc.boolean()),
        match: maybe(portRange),
        to: maybe(portRange),
        protocols: maybe(fc.constantFrom(["tcp"], ["udp"], ["tcp", "udp"], ["udp", "tcp"])),
        sources: maybe(fc.oneof(fc.constant(["any"]), fc.array(cidr, { minLength: 1, maxLength: 4 }))),
        host_range: maybe(fc.boolean()),
      }).map(compact),
    ),
    firewall: maybe(
      fc.record({
        backend: maybe(fc.constantFrom("iptables", "iptables", "nftables")),
        external_interface: maybe(fc.oneof(fc.constant("auto"), ifName, fc.array(fc.oneof(ifName, ifName.map((n) => `${n.slice(0, 14)}+`)), { minLength: 1, maxLength: 3 }))),
        published: maybe(fc.record({ default: maybe(fc.constantFrom("allow", "deny")), rules: maybe(publishedRules) }).map(compact)),
        containers: maybe(
          fc.record({ block_metadata: maybe(fc.boolean()), block: maybe(cidrs(4)), egress_allow: maybe(cidrs(4)) }).map(compact),
        ),
      }).map(compact),
    ),
    port_forwards: maybe(fc.array(portForward, { maxLength: 3 }), 0.4),
    user_data: maybe(
      fc.record({
        format: maybe(fc.constantFrom("cloud-config", "mime", "auto"), 0.4),
        gzip: maybe(fc.constantFrom("auto", "auto", "always", "never"), 0.3),
        parts: maybe(fc.array(part, { maxLength: 2 }), 0.3),
        write_files: maybe(fc.uniqueArray(writeFile, { maxLength: 4, selector: (w) => w.path }), 0.7),
        packages: maybe(fc.array(packageName, { maxLength: 5 })),
        runcmd: maybe(fc.array(runcmdEntry, { maxLength: 5 })),
      }).map(compact),
      0.7,
    ),
    launch_template: maybe(
      fc.record({
        name: fc.stringMatching(/^[a-zA-Z0-9().\-/_]{3,30}$/),
        region: maybe(fc.constantFrom("eu-west-1", "us-east-1", "ap-southeast-2", "us-gov-west-1")),
        source_version: maybe(fc.oneof(fc.constantFrom("$Latest", "$Default"), fc.integer({ min: 1, max: 1000 }))),
        set_default: maybe(fc.boolean()),
      }).map(compact),
      0.25,
    ),
  })
  .map((o) => ({ version: 1, ...compact(o) }))
  .map(respectCrossFieldRules);

/**
 * Valid means valid: the few rules that relate two fields (no forward to
 * loopback) are respected here, so most "valid" samples render.
 */
function respectCrossFieldRules(o: Obj): Obj {
  // Loopback (route_localnet is refused), IPv4-mapped and instance-service (169.254/16, fd00:ec2::/32) targets are refused.
  const forwards = (o.port_forwards as Obj[] | undefined)?.filter((f) => {
    const to = String(f.to);
    if (/^\[(::1|::ffff:[^\]]*|fd00:ec2:[^\]]*)\]|^169\.254\./i.test(to)) return false;
    return !to.startsWith("127.");
  });
  if (forwards) o.port_forwards = forwards;
  return o;
}

// ── near-valid mutations ──────────────────────────────────────────────────

type Path = (string | number)[];

/** Every path to a value inside an object (leaves and containers). */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (Array.isArray(value)) value.forEach((v, i) => out.push([...prefix, i], ...pathsOf(v, [...prefix, i])));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) out.push([...prefix, k], ...pathsOf(v, [...prefix, k]));
  }
  return out;
}

function setIn(root: Obj, path: Path, value: unknown): Obj {
  const copy = structuredClone(root);
  let node: Record<string | number, unknown> = copy;
  for (const seg of path.slice(0, -1)) node = node[seg] as Record<string | number, unknown>;
  node[path[path.length - 1]!] = value;
  return copy;
}

/** Field-specific bad values, keyed by the last path segment. */
const BAD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  version: fc.constantFrom(2, 0, "1", 1.5, null, "v1"),
  name: badName,
  dns: fc.constantFrom(["vpc", "amazon", "1.1.1.1", "8.8.8.8"], ["dns.google"], ["vpc2"], "vpc", [1]),
  dns_search: fc.constantFrom(["a b"], ["-x.example"], Array.from({ length: 7 }, (_, i) => `d${i}.example`), ["x".repeat(64) + ".example"]),
  settings: fc.constantFrom({ dns: ["1.1.1.1"] }, { "dns-search": [] }, ["x"], "x"),
  match: badPortRange,
  to: badPortRange,
  protocols: fc.constantFrom([], ["tcp", "tcp"], ["icmp"], "tcp"),
  sources: fc.oneof(fc.constant([]), badCidr.map((c) => [c])),
  backend: fc.constantFrom("pf", "nft", "IPTABLES", ""),
  external_interface: fc.oneof(badIfName, fc.constantFrom([], ["auto"], ["eth0", "a b"], ["+"], ["br-1234567890ab+"])),
  default: fc.constantFrom("reject", "ALLOW", true),
  rules: fc.constantFrom([{ port: 80, allow: ["any"] }, { port: 80, allow: ["loopback"] }], [{ port: 0, allow: ["any"] }], [{ port: 80, allow: [] }], [{ port: 80 }]),
  allow: fc.oneof(fc.constant([]), badCidr.map((c) => [c])),
  block: badCidr.map((c) => [c]),
  egress_allow: badCidr.map((c) => [c]),
  port: fc.constantFrom(0, 65536, -1, "80", 80.5),
  listen: fc.constantFrom(0, 65536, "9000", 1e10),
  port_forwards: fc.constantFrom(
    [{ listen: 80, to: "127.0.0.1:80" }],
    [{ listen: 80, to: "198.51.100.1:80", route_localnet: true }],
    [{ listen: 80, to: "[::1]:80" }],
    [{ listen: 80, to: "web:80" }],
    [{ listen: 80, to: "198.51.100.1" }],
    [{ listen: 80, to: "198.51.100.1:0" }],
    [{ listen: 80, to: "[2001:db8::1]:70000" }],
    [{ listen: 80, to: "169.254.169.254:80" }],
    [{ listen: 80, to: "[fd00:ec2::254]:80" }],
  ),
  format: fc.constantFrom("MIME", "yaml", ""),
  gzip: fc.constantFrom(true, "yes", "sometimes"),
  parts: fc.constantFrom(
    [{ file: "parts/boot.sh", type: "x-perl" }],
    [{ file: "../parts/boot.sh", type: "x-shellscript" }],
    [{ file: "/etc/passwd", type: "x-shellscript" }],
    [{ file: "nope.sh", type: "x-shellscript" }],
    [{ file: "parts/boot.sh", type: "x-shellscript", filename: "a b" }],
    [{ file: "parts/boot.sh", type: "x-shellscript", merge_type: "list(append)\nContent-Type: text/x-shellscript" }],
  ),
  write_files: fc.constantFrom(
    [{ path: "etc/x", content: "a" }],
    [{ path: "/etc/../x", content: "a" }],
    [{ path: "/x", content: "a", source: "files/motd.txt" }],
    [{ path: "/x" }],
    [{ path: "/etc/docker/daemon.json", content: "{}" }],
    [{ path: "/x", content: "a" }, { path: "/x", content: "b" }],
    [{ path: "/x", source: "../../etc/shadow" }],
    [{ path: "/x", source: "files/nope" }],
    [{ path: "/x\0y", content: "a" }],
    [{ path: "/", content: "a" }],
    [{ path: "/etc/", content: "a" }],
    [{ path: "/etc/docker", content: "a" }],
    [{ path: "/a/b", content: "a" }, { path: "/a/b/c", content: "b" }],
    [{ path: `/${"x".repeat(256)}`, content: "a" }],
  ),
  permissions: fc.constantFrom(644, 0o644, "0999", "rw-r--r--", "u+x", "12345", ""),
  owner: fc.constantFrom("root root", "Root", "1000:1000", "a:b:c", "", "root;id"),
  packages: fc.constantFrom(["jq; rm -rf /"], ["-y"], [""], ["a b"], Array.from({ length: 501 }, (_, i) => `p${i}`)),
  runcmd: fc.constantFrom("echo hi", [1], [{ a: 1 }], [[1]], [null]),
  launch_template: fc.constantFrom({ name: "ab" }, { name: "a b c" }, { name: "good-name", region: "eu-west" }, { name: "good-name", source_version: 0 }, {}),
  enabled: fc.constantFrom("yes", "on", 1, null),
  install: fc.constantFrom("true", "no", 0),
  block_metadata: fc.constantFrom("off", "false"),
  host_range: fc.constantFrom("y", 1),
  route_localnet: fc.constantFrom("yes", "true"),
  defer: fc.constantFrom("yes", 1),
  append: fc.constantFrom("no"),
  protocol: fc.constantFrom("icmp", "TCP", "all", 6),
};

const wrongType = fc.constantFrom<unknown>(null, 0, -1, 1.5, true, "x", "", [], {}, ["x"], { x: 1 });

/** Misspell a key: a typo the "did you mean" logic should catch, or any unknown key. */
const typo = (key: string) =>
  fc.oneof(
    fc.constant(key.slice(0, -1)),
    fc.constant(`${key}s`),
    fc.constant(key.replace("_", "-")),
    fc.constant(key.toUpperCase()),
    fc.constant(`${key[1] ?? ""}${key[0] ?? ""}${key.slice(2)}`),
    freeString(8),
  );

type ObjMutation = (o: Obj) => fc.Arbitrary<Obj>;

const objectMutations: ObjMutation[] = [
  // A field-specific bad value.
  (o) => {
    const paths = pathsOf(o).filter((p) => typeof p[p.length - 1] === "string" && BAD_VALUES[p[p.length - 1] as string]);
    const top = Object.keys(BAD_VALUES).filter((k) => ["port_forwards", "launch_template", "version", "name"].includes(k)).map((k) => [k]);
    return fc.constantFrom(...paths, ...top).chain((p) => BAD_VALUES[p[p.length - 1] as string]!.map((v) => setIn(o, p, v)));
  },
  // Any value replaced by a value of the wrong type.
  (o) => fc.constantFrom(...pathsOf(o)).chain((p) => wrongType.map((v) => setIn(o, p, v))),
  // A misspelt or unknown key somewhere.
  (o) => {
    const maps = [[] as Path, ...pathsOf(o).filter((p) => {
      let v: unknown = o;
      for (const s of p) v = (v as Record<string | number, unknown>)[s];
      return v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0 && p[p.length - 1] !== "settings";
    })];
    return fc.constantFrom(...maps).chain((p) => {
      let target: unknown = o;
      for (const s of p) target = (target as Record<string | number, unknown>)[s];
      const keys = Object.keys(target as Obj);
      return fc.constantFrom(...keys).chain((k) =>
        typo(k).map((t) => {
          const copy = structuredClone(target as Obj);
          const v = copy[k];
          delete copy[k];
          copy[t] = v;
          return p.length === 0 ? copy : setIn(o, p, copy);
        }),
      );
    });
  },
  // A list one entry longer than its limit.
  (o) =>
    fc.constantFrom<[string[], unknown]>(
      [["docker", "daemon", "dns_search"], Array.from({ length: 7 }, (_, i) => `d${i}.example`)],
      [["user_data", "parts"], Array.from({ length: 51 }, () => ({ file: "parts/boot.sh", type: "x-shellscript" }))],
      [["user_data", "write_files"], Array.from({ length: 201 }, (_, i) => ({ path: `/f${i}`, content: "" }))],
      [["user_data", "runcmd"], Array.from({ length: 501 }, () => "true")],
      [["firewall", "containers", "block"], Array.from({ length: 1001 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`)],
      [["port_forwards"], Array.from({ length: 1001 }, (_, i) => ({ listen: 1 + i, to: "198.51.100.10:80" }))],
    ).map(([p, v]) => setDeep(o, p, v)),
  // nftables with a policy only the iptables backend enforces.
  (o) => fc.constant(setDeep(setDeep(o, ["firewall", "backend"], "nftables"), ["port_forwards"], [{ listen: 9000, to: "198.51.100.10:80" }])),
];

/** setIn that creates missing intermediate maps. */
function setDeep(root: Obj, path: string[], value: unknown): Obj {
  const copy = structuredClone(root);
  let node: Obj = copy;
  for (const seg of path.slice(0, -1)) {
    if (node[seg] === null || typeof node[seg] !== "object" || Array.isArray(node[seg])) node[seg] = {};
    node = node[seg] as Obj;
  }
  node[path[path.length - 1]!] = value;
  return copy;
}

// ── YAML text ────────────────────────────────────────────────────────────

const stringStyles = [Scalar.PLAIN, Scalar.QUOTE_DOUBLE, Scalar.QUOTE_SINGLE, Scalar.BLOCK_LITERAL, Scalar.BLOCK_FOLDED] as const;

/** How an object becomes YAML text: block or flow, different string styles and line widths. */
const yamlStyle = fc.record({
  collectionStyle: fc.constantFrom("any", "block", "flow") as fc.Arbitrary<"any" | "block" | "flow">,
  defaultStringType: fc.constantFrom(...stringStyles),
  lineWidth: fc.constantFrom(0, 20, 80),
  indent: fc.constantFrom(2, 4),
  header: fc.constantFrom("", "# dockinit.yaml\n", "---\n", "\ufeff", "%YAML 1.2\n---\n"),
  crlf: fc.boolean(),
});

type YamlStyle = typeof yamlStyle extends fc.Arbitrary<infer S> ? S : never;

function toYaml(o: Obj, style: YamlStyle): string {
  const text = toYamlOnce(o, style);
  // Folding a long line can split a surrogate pair (the yaml package counts
  // UTF-16 units); a file on disk cannot hold that, so do not fold then.
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text) ? toYamlOnce(o, { ...style, lineWidth: 0 }) : text;
}

function toYamlOnce(o: Obj, style: YamlStyle): string {
  const text =
    style.header +
    stringify(o, {
      collectionStyle: style.collectionStyle,
      defaultStringType: style.defaultStringType,
      defaultKeyType: Scalar.PLAIN,
      lineWidth: style.lineWidth,
      minContentWidth: 0,
      indent: style.indent,
      version: "1.2",
    });
  // CRLF line ends are valid YAML; a line break inside a scalar reads back as "\n".
  return style.crlf ? text.replace(/\n/g, "\r\n") : text;
}

/** Mutations of the text itself: YAML features dockinit refuses, and broken files. */
const textMutations: ((text: string) => fc.Arbitrary<string>)[] = [
  // An anchor and an alias (an alias bomb in miniature).
  (t) => fc.constant(`x-base: &base {a: 1}\n${t}extra: *base\n`),
  (t) => fc.constant(`${t}bomb: &a [x, x]\nb2: &b [*a, *a]\nb3: [*b, *b, *b]\n`),
  // A merge key.
  (t) => fc.constant(`${t.replace(/^version: 1$/m, "version: 1\n<<: {name: merged}")}`),
  // A tag that PyYAML would construct into a Python object.
  (t) => fc.constantFrom("!!python/object/apply:os.system", "!!python/name:os.system", "!!binary", "!custom", "!!set", "!!omap", "!!timestamp").map((tag) => t.replace(/^version: 1$/m, `version: 1\nname: ${tag} 'x'`)),
  // A duplicate key.
  (t) => fc.constant(`${t}version: 1\n`),
  // Tabs as indentation.
  (t) => fc.constant(t.replace(/\n {2}(?=\S)/, "\n\t")),
  // Truncated at an arbitrary offset.
  (t) => fc.integer({ min: 0, max: Math.max(0, t.length - 1) }).map((n) => t.slice(0, n)),
  // A second document.
  (t) => fc.constant(`${t}---\nversion: 1\n`),
  // The whole file is a scalar or a list.
  () => fc.constantFrom("", "version", "- version: 1\n", "42\n", "null\n", "~\n", "[]\n", "\"version: 1\"\n"),
  // A character YAML forbids in a stream, or an escaped lone surrogate.
  (t) => fc.constantFrom("\u0000", "\u0007", "\ufffe", "\ud800").map((c) => `${t}# ${c}\n`),
  (t) => fc.constant(`${t}$schema: "\\ud800"\n`),
  // Very deep nesting.
  (t) => fc.integer({ min: 100, max: 5000 }).map((n) => `${t.replace(/^version: 1$/m, "version: 1")}deep: ${"[".repeat(n)}${"]".repeat(n)}\n`),
];

export interface GeneratedConfig {
  kind: "valid" | "near-valid";
  yaml: string;
}

/** Valid configs (55%), object-level near-valid (30%), text-level near-valid (15%). */
export const configText: fc.Arbitrary<GeneratedConfig> = fc.oneof(
  {
    weight: 11,
    arbitrary: fc.tuple(validConfigObject, yamlStyle).map(([o, s]) => ({ kind: "valid" as const, yaml: toYaml(o, s) })),
  },
  {
    weight: 6,
    arbitrary: validConfigObject
      .chain((o) => fc.integer({ min: 0, max: objectMutations.length - 1 }).chain((i) => objectMutations[i]!(o)))
      .chain((o) => yamlStyle.map((s) => ({ kind: "near-valid" as const, yaml: toYaml(o, s) }))),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(validConfigObject, yamlStyle, fc.integer({ min: 0, max: textMutations.length - 1 }))
      .chain(([o, s, i]) => textMutations[i]!(toYaml(o, { ...s, collectionStyle: "block", header: "", crlf: false })).map((yaml) => ({ kind: "near-valid" as const, yaml }))),
  },
);
