// The zod schema of dockinit.yaml, version 1: the single source of truth for
// the configuration's shape. `dockinit schema` prints its JSON Schema, so the
// schema stays free of transforms (which JSON Schema cannot express); value
// checks that need a stable diagnostic code attach it in `params.di`, and
// normalisation happens later, in model.ts.
//
// zod/mini: the same engine as classic zod at a twentieth of the bundle size,
// which was most of `dockinit render`'s start-up (see BENCHMARKS.md).
import * as z from "zod/mini";
import type { DiagnosticCode } from "./errors.js";
import { DOMAIN_NAME, INTERFACE_NAME, isInstanceService, isIpv4Mapped, parseCidr, parseHostPort, parseIp, parsePortRange } from "./net.js";

type Ctx = z.core.$RefinementCtx<never>;

function fail(ctx: Ctx, di: DiagnosticCode, message: string, path: (string | number)[] = [], hint?: string): void {
  ctx.addIssue({ code: "custom", message, path, params: { di, hint } });
}

/** A value check that reports with a dockinit code: `check(v) → [code, message] | undefined`. */
function rule<T>(check: (value: T, ctx: Ctx) => void) {
  return z.superRefine<T>((value, ctx) => check(value, ctx as unknown as Ctx));
}

export const AMAZON_RESOLVER = "169.254.169.253";

const describe = z.describe;
const withDefault = z._default;

/** An interface name, or a prefix with a trailing `+` (iptables' wildcard; nft's `*`): the whole at most 15 characters, as iptables takes it. */
const isInterfacePattern = (v: string): boolean => (v.endsWith("+") ? v.length <= 15 && INTERFACE_NAME.test(v.slice(0, -1)) : INTERFACE_NAME.test(v));

/** A network in an allow/block list; `keywords` admits words like `any`. */
function network(keywords: readonly string[], description: string) {
  return z.string().check(
    describe(description),
    rule<string>((value, ctx) => {
      if (keywords.includes(value) || parseCidr(value)) return;
      const words = keywords.length ? ` (or ${keywords.map((k) => `\`${k}\``).join(", ")})` : "";
      fail(ctx, "DI020", `${JSON.stringify(value)} is not an IP address or CIDR${words}`);
    }),
  );
}

function portRange(description: string, example: string) {
  return z.string().check(
    describe(`${description}, LOW-HIGH (e.g. ${example})`),
    rule<string>((value, ctx) => {
      const r = parsePortRange(value);
      if (!r || r.low < 1024 || r.high > 65535 || r.low > r.high) {
        fail(ctx, "DI021", `${JSON.stringify(value)} is not a port range inside 1024-65535 with LOW <= HIGH`);
      }
    }),
  );
}

const list = <T extends z.core.SomeType>(item: T, max: number) => z.array(item).check(z.maxLength(max));
const port = z.int().check(z.gte(1), z.lte(65535));
const protocol = z.enum(["tcp", "udp"]);

const dnsServer = z.string().check(
  describe("`vpc` (VPC CIDR base + 2, found at boot), `amazon` (169.254.169.253) or an IPv4/IPv6 address"),
  rule<string>((value, ctx) => {
    if (value !== "vpc" && value !== "amazon" && !parseIp(value)) {
      fail(ctx, "DI023", `${JSON.stringify(value)} is not \`vpc\`, \`amazon\` or an IP address`);
    }
  }),
);

const daemon = z.prefault(
  z.strictObject({
    dns: withDefault(
      z.array(dnsServer).check(
        describe("DNS servers for containers, written to daemon.json `dns`"),
        rule<string[]>((servers, ctx) => {
          if (servers.length > 3) fail(ctx, "DI022", `${servers.length} DNS servers given; resolv.conf honours at most 3`, [3]);
        }),
      ),
      ["vpc"],
    ),
    dns_search: withDefault(
      list(
        z.string().check(
          rule<string>((v, ctx) => {
            if (!DOMAIN_NAME.test(v)) fail(ctx, "DI029", `${JSON.stringify(v)} is not a domain name`);
          }),
        ),
        6,
      ).check(describe("search domains, written to daemon.json `dns-search`")),
      [],
    ),
    settings: withDefault(
      z.record(z.string(), z.unknown()).check(
        describe("other daemon.json keys, passed through verbatim"),
        rule<Record<string, unknown>>((settings, ctx) => {
          for (const key of ["dns", "dns-search"]) {
            if (key in settings) fail(ctx, "DI031", `daemon setting ${JSON.stringify(key)} is managed by dockinit`, [key]);
          }
        }),
      ),
      {},
    ),
  }),
  {},
);

const docker = z.prefault(
  z.strictObject({
    install: withDefault(z.boolean().check(describe("install Docker from distro packages when missing")), false),
    daemon,
  }),
  {},
);

const ephemeralPorts = z.prefault(
  z.strictObject({
    enabled: withDefault(z.boolean(), true),
    match: withDefault(portRange("source ports to rewrite", "32768-61000"), "32768-61000"),
    to: withDefault(portRange("range the upstream network ACL lets back in", "49152-61000"), "49152-61000"),
    protocols: withDefault(
      z.array(protocol).check(
        z.minLength(1),
        describe("one MASQUERADE rule each: --to-ports needs -p"),
        rule<string[]>((protocols, ctx) => {
          if (new Set(protocols).size !== protocols.length) fail(ctx, "DI012", "a protocol is listed twice", [], "list tcp and udp at most once each");
        }),
      ),
      ["tcp"],
    ),
    sources: withDefault(list(network(["any"], "`any` or a source network"), 10000).check(z.minLength(1)), ["any"]),
    host_range: withDefault(z.boolean().check(describe("also narrow net.ipv4.ip_local_port_range for the host itself")), false),
  }),
  {},
);

const publishedRule = z.strictObject({
  port,
  protocol: withDefault(protocol, "tcp"),
  allow: list(network(["any", "loopback"], "`any`, `loopback` (the host itself) or a source network"), 1000).check(
    z.minLength(1),
    describe("who may connect to this published port"),
  ),
});

const firewall = z.prefault(
  z.strictObject({
    backend: withDefault(
      z.enum(["auto", "nftables", "iptables"]).check(
        describe("auto: nftables (no window after `docker network create`; port forwards get their accept in iptables' FORWARD as well)"),
      ),
      "auto",
    ),
    external_interface: withDefault(
      z.union([
        z.string().check(
          describe("`auto`: every interface but loopback, Docker's bridges (docker*, br-*) and veths; or one interface name"),
          rule<string>((v, ctx) => {
            if (v !== "auto" && !isInterfacePattern(v)) fail(ctx, "DI025", `${JSON.stringify(v)} is not a network interface name`);
          }),
        ),
        list(
          z.string().check(
            rule<string>((v, ctx) => {
              if (v === "auto") fail(ctx, "DI025", "`auto` is not an interface name in a list", [], "write `external_interface: auto` alone, or list interface names");
              else if (!isInterfacePattern(v)) fail(ctx, "DI025", `${JSON.stringify(v)} is not a network interface name`);
            }),
          ),
          16,
        ).check(z.minLength(1), describe("the interfaces container traffic leaves by (a trailing + matches every name it starts, e.g. ens+)")),
      ]),
      "auto",
    ),
    published: z.prefault(
      z.strictObject({
        default: withDefault(z.enum(["allow", "deny"]), "allow"),
        rules: withDefault(
          list(publishedRule, 2000).check(
            rule<{ port: number; protocol?: string }[]>((rules, ctx) => {
              const seen = new Map<string, number>();
              rules.forEach((r, i) => {
                const key = `${r.port}/${r.protocol ?? "tcp"}`;
                const first = seen.get(key);
                if (first !== undefined) fail(ctx, "DI030", `port ${key} already has a rule (rules[${first}])`, [i, "port"]);
                else seen.set(key, i);
              });
            }),
          ),
          [],
        ),
      }),
      {},
    ),
    containers: z.prefault(
      z.strictObject({
        block_metadata: withDefault(z.boolean().check(describe("no container reaches IMDS (169.254.169.254, fd00:ec2::254)")), true),
        block: withDefault(list(network([], "destination network containers may not reach"), 1000), []),
        egress_allow: withDefault(
          list(network([], "destination network containers may reach"), 10000).check(
            describe("if set, the only destinations containers may reach (DNS servers in use are always allowed)"),
          ),
          [],
        ),
      }),
      {},
    ),
  }),
  {},
);

const portForward = z
  .strictObject({
    listen: port.check(describe("host port")),
    to: z.string().check(
      describe("ADDRESS:PORT to forward to"),
      rule<string>((v, ctx) => {
        if (!parseHostPort(v)) fail(ctx, "DI026", `${JSON.stringify(v)} is not ADDRESS:PORT`);
      }),
    ),
    protocol: withDefault(protocol, "tcp"),
    // Kept in the schema so that setting it earns its own diagnostic (DI035), not "unknown key".
    route_localnet: withDefault(z.boolean().check(describe("not supported: dockinit never turns on route_localnet (CVE-2020-8558); must be false")), false),
  })
  .check(
    rule<{ to: string; route_localnet?: boolean }>((fwd, ctx) => {
      const target = parseHostPort(fwd.to);
      if (fwd.route_localnet) {
        fail(ctx, "DI035", "route_localnet is not supported: dockinit does not turn on net.ipv4.conf.*.route_localnet", ["route_localnet"]);
      }
      if (target && target.family === 4 && target.address.startsWith("127.")) {
        fail(ctx, "DI024", `forwarding to ${target.address} needs route_localnet (CVE-2020-8558), which dockinit does not turn on`, ["to"]);
      }
      if (target && target.family === 6 && target.address === "::1") {
        fail(ctx, "DI024", "IPv6 cannot forward to ::1", ["to"], "forward to a container or host address instead");
      }
      // IPv4-mapped IPv6 addresses never appear on the wire: ip6tables would
      // DNAT to nowhere (and ::ffff:127.0.0.1 would slip past the check above).
      if (target && target.family === 6 && isIpv4Mapped(target.address)) {
        fail(ctx, "DI026", `${target.address} is an IPv4-mapped IPv6 address`, ["to"], "write the IPv4 address itself, e.g. 198.51.100.10:80");
      }
      if (target && isInstanceService(target)) {
        fail(ctx, "DI027", `forwarding to ${target.address} would expose an instance service (metadata, DNS, time) to the host port's clients`, ["to"]);
      }
    }),
  );

/** cloud-init's merger syntax (cloudinit/mergers: NAME(OPTS) joined by '+'), its three mergers and their options. */
const MERGE_TYPE = /^(list|dict|str)\(([a-z_]+(,[a-z_]+)*)?\)(\+(list|dict|str)\(([a-z_]+(,[a-z_]+)*)?\))*$/;

const mode = z.string().check(
  describe('octal file mode as a quoted string, e.g. "0644"'),
  rule<string>((v, ctx) => {
    if (!/^0?[0-7]{3,4}$/.test(v)) fail(ctx, "DI041", `${JSON.stringify(v)} is not an octal file mode`);
  }),
);

const writeFile = z.strictObject({
  path: z.string(),
  content: z.optional(z.string()),
  source: z.optional(z.string().check(describe("a local file, relative to dockinit.yaml"))),
  permissions: withDefault(mode, "0644"),
  owner: withDefault(z.string(), "root:root"),
  defer: withDefault(z.boolean().check(describe("write after packages are installed (cloud-init `defer`)")), false),
  append: withDefault(z.boolean(), false),
});

const part = z.strictObject({
  file: z.string().check(describe("local file, relative to dockinit.yaml")),
  type: z.string().check(describe("MIME subtype after text/, e.g. x-shellscript")),
  filename: z.optional(z.string()),
  merge_type: z.optional(
    z.string().check(
      describe("X-Merge-Type header, e.g. list(append)+dict(recurse_array)+str()"),
      rule<string>((v, ctx) => {
        // A MIME header value: anything else (a line break above all) would write headers of its own.
        if (!MERGE_TYPE.test(v)) fail(ctx, "DI053", `${JSON.stringify(v)} is not a cloud-init merge type`);
      }),
    ),
  ),
});

const userData = z.prefault(
  z.strictObject({
    format: withDefault(z.enum(["cloud-config", "mime", "auto"]), "auto"),
    gzip: withDefault(z.enum(["auto", "always", "never"]), "auto"),
    parts: withDefault(list(part, 50), []),
    write_files: withDefault(list(writeFile, 200), []),
    packages: withDefault(list(z.string(), 500), []),
    runcmd: withDefault(list(z.union([z.string(), z.array(z.string())]), 500), []),
    // A string: YAML reads an unquoted 22.10 as the number 22.1 (DI011 says to quote it).
    cloud_init: z.optional(
      z.string().check(
        describe(
          'the cloud-init the instances run, as a quoted version ("22.2", "22.4", "25.1", "26.2" or one between) or an OS name (al2023, debian-12, ubuntu-24.04): check and render validate the cloud-config against its schema; --cloud-init overrides it',
        ),
      ),
    ),
  }),
  {},
);

const launchTemplate = z.strictObject({
  name: z.string().check(z.minLength(3), z.maxLength(128), z.regex(/^[a-zA-Z0-9().\-/_]+$/, "launch template names use letters, digits and ( ) . - / _")),
  region: z.optional(z.string().check(z.regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region like eu-west-1"))),
  source_version: withDefault(z.union([z.literal("$Latest"), z.literal("$Default"), z.int().check(z.gte(1))]), "$Latest"),
  set_default: withDefault(z.boolean(), false),
});

/** An Auto Scaling group name: 1-255 characters (AWS's limit), no line breaks. */
const groupName = z.string().check(z.minLength(1), z.maxLength(255), z.regex(/^[^\r\n]+$/, "an Auto Scaling group name is one line"));
/** A CloudWatch alarm name: 1-255 characters. */
const alarmName = z.string().check(z.minLength(1), z.maxLength(255), z.regex(/^[^\r\n]+$/, "a CloudWatch alarm name is one line"));
const seconds = (max: number, description: string) => z.int().check(z.gte(0), z.lte(max), describe(description));

/**
 * `dockinit rollout` (and `push --rollout`): an Auto Scaling instance refresh.
 * The limits are StartInstanceRefresh's own, so a refresh AWS would refuse is
 * refused here, with a position. Defaults differ from AWS's where AWS's bite
 * (a checkpoint pauses an hour); the plan prints every effective value.
 */
export const rolloutSchema = z.prefault(
  z
    .strictObject({
      auto_scaling_groups: withDefault(
        list(groupName, 100).check(
          describe("groups to refresh; empty: every group that uses the template (listed and confirmed, or --yes)"),
          rule<string[]>((names, ctx) => {
            const seen = new Map<string, number>();
            names.forEach((n, i) => {
              const first = seen.get(n);
              if (first !== undefined) fail(ctx, "DI071", `${JSON.stringify(n)} is already listed (auto_scaling_groups[${first}])`, [i]);
              else seen.set(n, i);
            });
          }),
        ),
        [],
      ),
      min_healthy_percentage: withDefault(z.int().check(z.gte(0), z.lte(100), describe("percentage of the group that stays in service during the refresh")), 90),
      max_healthy_percentage: withDefault(z.int().check(z.gte(100), z.lte(200), describe("above 100: launch replacements before terminating (needs spare capacity)")), 100),
      instance_warmup: withDefault(seconds(86_400, "seconds a new instance gets before it counts as healthy"), 300),
      checkpoints: withDefault(
        list(z.int().check(z.gte(1), z.lte(100)), 100).check(
          describe("percentages at which the refresh pauses for checkpoint_delay, increasing, the last 100; e.g. [20, 50, 100]"),
          rule<number[]>((points, ctx) => {
            for (let i = 1; i < points.length; i++) {
              if (points[i]! <= points[i - 1]!) {
                fail(ctx, "DI070", `checkpoint ${points[i]} does not come after ${points[i - 1]}`, [i], "list checkpoint percentages in increasing order, e.g. [20, 50, 100]");
                return;
              }
            }
            if (points.length > 0 && points[points.length - 1] !== 100) {
              fail(ctx, "DI070", `the last checkpoint is ${points[points.length - 1]}, not 100`, [points.length - 1], `end the list with 100, e.g. [${[...points, 100].join(", ")}]`);
            }
          }),
        ),
        [],
      ),
      checkpoint_delay: withDefault(seconds(172_800, "seconds to pause at each checkpoint (AWS's own default is 3600)"), 0),
      alarms: withDefault(list(alarmName, 10).check(describe("CloudWatch alarm names: the refresh fails (and rolls back) when one goes to ALARM")), []),
      bake_time: withDefault(seconds(172_800, "seconds to wait after the last replacement before the refresh counts as successful"), 0),
      skip_matching: withDefault(z.boolean().check(describe("leave instances that already run the desired configuration alone")), true),
      auto_rollback: withDefault(
        z.union([z.literal("auto"), z.boolean()]).check(describe("auto: roll back a failed refresh where AWS allows it; true: refuse groups where it cannot; false: never")),
        "auto",
      ),
      protected_instances: withDefault(
        z.enum(["wait", "refresh", "ignore"]).check(describe("instances protected from scale-in: wait (AWS's default: an hour, then the refresh fails), refresh, ignore")),
        "wait",
      ),
      standby_instances: withDefault(
        z.enum(["wait", "terminate", "ignore"]).check(describe("instances in Standby: wait (AWS's default: an hour, then the refresh fails), terminate, ignore")),
        "wait",
      ),
      verify: withDefault(z.boolean().check(describe("ask each new instance through SSM whether its firewall is in place (as dockinit verify) and roll back at the first that is not; needs checkpoints")), false),
    })
    .check(
      rule<{ min_healthy_percentage?: number; max_healthy_percentage?: number; checkpoints?: number[]; checkpoint_delay?: number }>((r, ctx) => {
        const min = r.min_healthy_percentage ?? 90;
        const max = r.max_healthy_percentage ?? 100;
        if (min > max) fail(ctx, "DI072", `min_healthy_percentage ${min} is above max_healthy_percentage ${max}`, ["min_healthy_percentage"]);
        else if (max - min > 100) fail(ctx, "DI072", `max_healthy_percentage ${max} is more than 100 above min_healthy_percentage ${min}`, ["max_healthy_percentage"]);
        if ((r.checkpoint_delay ?? 0) > 0 && (r.checkpoints ?? []).length === 0) {
          fail(ctx, "DI073", `checkpoint_delay ${r.checkpoint_delay} has no checkpoints to pause at`, ["checkpoint_delay"]);
        }
      }),
    ),
  {},
);

export const configSchema = z
  .strictObject({
    $schema: z.optional(z.string().check(describe("for editors; ignored"))),
    version: z.literal(1).check(describe("configuration format version")),
    name: withDefault(
      z.string().check(
        describe("used in file headers and the launch template version description"),
        rule<string>((v, ctx) => {
          if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v)) fail(ctx, "DI017", `${JSON.stringify(v)} is not a valid name`);
        }),
      ),
      "dockinit",
    ),
    docker,
    ephemeral_ports: ephemeralPorts,
    firewall,
    port_forwards: withDefault(list(portForward, 1000), []),
    user_data: userData,
    launch_template: z.optional(launchTemplate),
    rollout: rolloutSchema,
  })
  .check(describe("dockinit.yaml: the EC2 user-data of a correctly networked Docker host"));

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;

/** JSON Schema (draft 2020-12) for editors and `dockinit schema`. */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }),
    $id: "https://dockinit.dev/schema/v1.json",
    title: "dockinit.yaml",
  };
}
