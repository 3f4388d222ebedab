// The zod schema of dockinit.yaml, version 1: the single source of truth for
// the configuration's shape. `dockinit schema` prints its JSON Schema, so the
// schema stays free of transforms (which JSON Schema cannot express); value
// checks that need a stable diagnostic code attach it in `params.di`, and
// normalisation happens later, in model.ts.
import { z } from "zod";
import type { DiagnosticCode } from "./errors.js";
import { DOMAIN_NAME, INTERFACE_NAME, parseCidr, parseHostPort, parseIp, parsePortRange } from "./net.js";

type Ctx = z.core.$RefinementCtx<unknown>;

function fail(ctx: Ctx, di: DiagnosticCode, message: string, path: (string | number)[] = [], hint?: string): void {
  ctx.addIssue({ code: "custom", message, path, params: { di, hint } });
}

const AMAZON_RESOLVER = "169.254.169.253";
export { AMAZON_RESOLVER };

/** A network in an allow/block list; `keywords` admits words like `any`. */
function network(keywords: readonly string[], description: string) {
  return z
    .string()
    .describe(description)
    .superRefine((value, ctx) => {
      if (keywords.includes(value)) return;
      if (!parseCidr(value)) {
        const words = keywords.length ? ` (or ${keywords.map((k) => `\`${k}\``).join(", ")})` : "";
        fail(ctx, "DI020", `${JSON.stringify(value)} is not an IP address or CIDR${words}`);
      }
    });
}

function portRange(description: string, example: string) {
  return z
    .string()
    .describe(`${description}, LOW-HIGH (e.g. ${example})`)
    .superRefine((value, ctx) => {
      const r = parsePortRange(value);
      if (!r || r.low < 1024 || r.high > 65535 || r.low > r.high) {
        fail(ctx, "DI021", `${JSON.stringify(value)} is not a port range inside 1024-65535 with LOW <= HIGH`);
      }
    });
}

const port = z.number().int().min(1).max(65535);
const protocol = z.enum(["tcp", "udp"]);

const dnsServer = z
  .string()
  .describe("`vpc` (VPC CIDR base + 2, found at boot), `amazon` (169.254.169.253) or an IPv4/IPv6 address")
  .superRefine((value, ctx) => {
    if (value === "vpc" || value === "amazon") return;
    if (!parseIp(value)) fail(ctx, "DI023", `${JSON.stringify(value)} is not \`vpc\`, \`amazon\` or an IP address`);
  });

const daemon = z
  .strictObject({
    dns: z
      .array(dnsServer)
      .default(["vpc"])
      .describe("DNS servers for containers, written to daemon.json `dns`")
      .superRefine((list, ctx) => {
        if (list.length > 3) {
          fail(ctx, "DI022", `${list.length} DNS servers given; resolv.conf honours at most 3`, [3]);
        }
      }),
    dns_search: z
      .array(
        z.string().superRefine((v, ctx) => {
          if (!DOMAIN_NAME.test(v)) fail(ctx, "DI029", `${JSON.stringify(v)} is not a domain name`);
        }),
      )
      .max(6)
      .default([])
      .describe("search domains, written to daemon.json `dns-search`"),
    settings: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("other daemon.json keys, passed through verbatim")
      .superRefine((settings, ctx) => {
        for (const key of ["dns", "dns-search", "dns-opts"]) {
          if (key in settings && key !== "dns-opts") {
            fail(ctx, "DI031", `daemon setting ${JSON.stringify(key)} is managed by dockinit`, [key]);
          }
        }
      }),
  })
  .prefault({});

const docker = z
  .strictObject({
    install: z.boolean().default(false).describe("install Docker from distro packages when missing"),
    daemon,
  })
  .prefault({});

const ephemeralPorts = z
  .strictObject({
    enabled: z.boolean().default(true),
    match: portRange("source ports to rewrite", "32768-61000").default("32768-61000"),
    to: portRange("range the upstream network ACL lets back in", "49152-61000").default("49152-61000"),
    protocols: z
      .array(protocol)
      .min(1)
      .default(["tcp"])
      .describe("one MASQUERADE rule each: --to-ports needs -p")
      .superRefine((list, ctx) => {
        if (new Set(list).size !== list.length) fail(ctx, "DI012", "a protocol is listed twice", [], "list tcp and udp at most once each");
      }),
    sources: z.array(network(["any"], "`any` or a source network")).min(1).default(["any"]),
    host_range: z.boolean().default(false).describe("also narrow net.ipv4.ip_local_port_range for the host itself"),
  })
  .prefault({});

const publishedRule = z.strictObject({
  port,
  protocol: protocol.default("tcp"),
  allow: z
    .array(network(["any", "loopback"], "`any`, `loopback` (the host itself) or a source network"))
    .min(1)
    .describe("who may connect to this published port"),
});

const firewall = z
  .strictObject({
    backend: z.enum(["iptables", "nftables"]).default("iptables"),
    external_interface: z
      .string()
      .default("auto")
      .describe("`auto` = the default route's interface at apply time")
      .superRefine((v, ctx) => {
        if (v !== "auto" && !INTERFACE_NAME.test(v)) {
          fail(ctx, "DI025", `${JSON.stringify(v)} is not a network interface name`);
        }
      }),
    published: z
      .strictObject({
        default: z.enum(["allow", "deny"]).default("allow"),
        rules: z
          .array(publishedRule)
          .max(2000)
          .default([])
          .superRefine((rules, ctx) => {
            const seen = new Map<string, number>();
            rules.forEach((r, i) => {
              const key = `${r.port}/${r.protocol ?? "tcp"}`;
              const first = seen.get(key);
              if (first !== undefined) fail(ctx, "DI030", `port ${key} already has a rule (rules[${first}])`, [i, "port"]);
              else seen.set(key, i);
            });
          }),
      })
      .prefault({}),
    containers: z
      .strictObject({
        block_metadata: z.boolean().default(true).describe("no container reaches IMDS (169.254.169.254, fd00:ec2::254)"),
        block: z.array(network([], "destination network containers may not reach")).max(1000).default([]),
        egress_allow: z
          .array(network([], "destination network containers may reach"))
          .max(10000)
          .default([])
          .describe("if set, the only destinations containers may reach (DNS servers in use are always allowed)"),
      })
      .prefault({}),
  })
  .prefault({});

const portForward = z
  .strictObject({
    listen: port.describe("host port"),
    to: z
      .string()
      .describe("ADDRESS:PORT to forward to")
      .superRefine((v, ctx) => {
        if (!parseHostPort(v)) fail(ctx, "DI026", `${JSON.stringify(v)} is not ADDRESS:PORT`);
      }),
    protocol: protocol.default("tcp"),
    route_localnet: z
      .boolean()
      .default(false)
      .describe("acknowledge CVE-2020-8558 to forward to 127.0.0.0/8"),
  })
  .superRefine((fwd, ctx) => {
    const target = parseHostPort(fwd.to);
    if (target && target.family === 4 && target.address.startsWith("127.") && !fwd.route_localnet) {
      fail(ctx, "DI024", `forwarding to ${target.address} needs route_localnet`, ["to"]);
    }
    if (target && target.family === 6 && target.address === "::1") {
      fail(ctx, "DI024", "IPv6 cannot forward to ::1", ["to"], "forward to a container or host address instead");
    }
  });

const mode = z
  .string()
  .describe('octal file mode as a quoted string, e.g. "0644"')
  .superRefine((v, ctx) => {
    if (!/^0?[0-7]{3,4}$/.test(v)) fail(ctx, "DI041", `${JSON.stringify(v)} is not an octal file mode`);
  });

const writeFile = z.strictObject({
  path: z.string(),
  content: z.string().optional(),
  source: z.string().optional().describe("a local file, relative to dockinit.yaml"),
  permissions: mode.default("0644"),
  owner: z.string().default("root:root"),
  defer: z.boolean().default(false).describe("write after packages are installed (cloud-init `defer`)"),
  append: z.boolean().default(false),
});

const part = z.strictObject({
  file: z.string().describe("local file, relative to dockinit.yaml"),
  type: z.string().describe("MIME subtype after text/, e.g. x-shellscript"),
  filename: z.string().optional(),
  merge_type: z.string().optional().describe("X-Merge-Type header, e.g. list(append)+dict(recurse_array)+str()"),
});

const userData = z
  .strictObject({
    format: z.enum(["cloud-config", "mime", "auto"]).default("auto"),
    gzip: z.enum(["auto", "always", "never"]).default("auto"),
    parts: z.array(part).max(50).default([]),
    write_files: z.array(writeFile).max(200).default([]),
    packages: z.array(z.string()).max(500).default([]),
    runcmd: z.array(z.union([z.string(), z.array(z.string())])).max(500).default([]),
  })
  .prefault({});

const launchTemplate = z.strictObject({
  name: z.string().min(3).max(128).regex(/^[a-zA-Z0-9().\-/_]+$/, "launch template names use letters, digits and ( ) . - / _"),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region like eu-west-1").optional(),
  source_version: z.union([z.literal("$Latest"), z.literal("$Default"), z.number().int().min(1)]).default("$Latest"),
  set_default: z.boolean().default(false),
});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe("for editors; ignored"),
    version: z.literal(1).describe("configuration format version"),
    name: z
      .string()
      .default("dockinit")
      .describe("used in file headers and the launch template version description")
      .superRefine((v, ctx) => {
        if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(v)) fail(ctx, "DI017", `${JSON.stringify(v)} is not a valid name`);
      }),
    docker,
    ephemeral_ports: ephemeralPorts,
    firewall,
    port_forwards: z.array(portForward).max(1000).default([]),
    user_data: userData,
    launch_template: launchTemplate.optional(),
  })
  .describe("dockinit.yaml: the EC2 user-data of a correctly networked Docker host");

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
