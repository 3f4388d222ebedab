// The policy set that policies.test.ts and closed-paths.test.ts enforce with
// real packets on every engine of the matrix (beside Docker's iptables
// firewall and beside Docker 29's nftables one): one config, so every engine
// proves the same policies.
import { runInOk } from "./exec.js";
import { ADDR, startPortEchoServer, type EchoServer } from "./topology.js";

export const METADATA_V4 = "169.254.169.254";
/** Instance metadata over IPv6 (Nitro instances). */
export const METADATA_V6 = "fd00:ec2::254";
/** The DNS server in daemon.json: reachable through egress_allow though unlisted, on port 53 only. */
export const DNS_V4 = "203.0.113.53";
/** Inside the egress allow-list, but blocked. */
export const BLOCKED_V4 = "198.51.100.20";
export const BLOCKED_V6 = "2001:db8:20::20";

/** Docker's networks in these tests: the default bridge (docker0) and user networks inside Docker's 172.17.0.0/16. */
export const DOCKER_V4 = "172.17.0.0/16";
export const DOCKER_V6 = "2001:db8:1234::/64";

/**
 * The published-port policies, each on two host ports: one served by an
 * IPv4-only container (IPv4 through Docker's DNAT, IPv6 through docker-proxy)
 * and one by a dual-stack container (IPv6 through Docker's DNAT).
 * policies.test.ts publishes the `v4only` ports from dual-stack containers;
 * closed-paths.test.ts publishes both.
 */
export const PUBLISHED = {
  /** An allow-list: one outside network per family, and Docker's own networks (other containers, judged by address). */
  listed: { protocol: "tcp", v4only: 8080, dual: 8081, allow: ["203.0.113.0/24", `${ADDR.clientV6}/128`, DOCKER_V4, DOCKER_V6] },
  any: { protocol: "tcp", v4only: 443, dual: 444, allow: ["any"] },
  loopback: { protocol: "tcp", v4only: 2368, dual: 2369, allow: ["loopback"] },
  /** No rule: `default: deny` closes it. */
  unlisted: { protocol: "tcp", v4only: 5000, dual: 5001, allow: [] },
  /** An allow-list on a UDP port (Docker's UDP DNAT, docker-proxy's UDP path). */
  listedUdp: { protocol: "udp", v4only: 8053, dual: 8054, allow: ["203.0.113.0/24", `${ADDR.clientV6}/128`] },
  /** No rule, UDP: `default: deny` closes it (docker-proxy's UDP set on the IPv6 path). */
  unlistedUdp: { protocol: "udp", v4only: 5353, dual: 5354, allow: [] },
} as const satisfies Record<string, { protocol: "tcp" | "udp"; v4only: number; dual: number; allow: readonly string[] }>;

export interface PolicyConfigOptions {
  name: string;
  backend: "iptables" | "nftables";
  /** The ephemeral_ports mapping, as flow YAML. */
  ephemeralPorts: string;
  /** Docker's own firewall backend (daemon.json "firewall-backend"), as the engine under test runs it. */
  dockerFirewall?: "iptables" | "nftables";
  /**
   * A container's own address: port 9002 is forwarded to its port 7000, which Docker does not publish.
   * (Ports 9003 and 9004 forward to a destination outside egress_allow and to a blocked one: a forward opens neither.)
   */
  containerForward?: string;
}

const publishedRules = (): string =>
  Object.values(PUBLISHED)
    .filter((p) => p.allow.length > 0)
    .flatMap((p) => [p.v4only, p.dual].map((port) => `      - { port: ${port}, protocol: ${p.protocol}, allow: [${p.allow.join(", ")}] }\n`))
    .join("");

export const policyConfig = (o: PolicyConfigOptions): string => `version: 1
name: ${o.name}
docker:
  daemon:
    dns: [${DNS_V4}]
${o.dockerFirewall === "nftables" ? "    settings: { firewall-backend: nftables }\n" : ""}ephemeral_ports: ${o.ephemeralPorts}
firewall:
  backend: ${o.backend}
  external_interface: auto
  published:
    default: deny
    rules:
${publishedRules()}  containers:
    block_metadata: true
    block: [${BLOCKED_V4}/32, ${BLOCKED_V6}/128]
    egress_allow: [198.51.100.0/24, 2001:db8:20::/64]
port_forwards:
  - { listen: 9000, to: "${ADDR.serverV4}:8080" }
  - { listen: 9000, to: "[${ADDR.serverV6}]:8080" }
  - { listen: 9003, to: "${ADDR.serverV4b}:8080" }
  - { listen: 9004, to: "${BLOCKED_V4}:8080" }
${o.containerForward ? `  - { listen: 9002, to: "${o.containerForward}:7000" }\n` : ""}`;

/**
 * Upstream stand-ins the policies are tested against: metadata, the DNS
 * server, a blocked host and echo servers on both source networks, v4 and v6;
 * TCP, and UDP where a container's datagrams are judged (block, egress).
 */
export async function startPolicyUpstream(upstream: string): Promise<EchoServer[]> {
  for (const a of [METADATA_V4, DNS_V4, BLOCKED_V4]) await runInOk(upstream, "ip", ["addr", "add", `${a}/32`, "dev", "lo"]);
  for (const a of [METADATA_V6, BLOCKED_V6]) await runInOk(upstream, "ip", ["-6", "addr", "add", `${a}/128`, "dev", "lo", "nodad"]);
  const servers: Promise<EchoServer>[] = [];
  for (const [addr, port, proto] of [
    [ADDR.serverV4, 8080, "tcp"],
    [ADDR.serverV4b, 8080, "tcp"],
    [BLOCKED_V4, 8080, "tcp"],
    [METADATA_V4, 80, "tcp"],
    [DNS_V4, 53, "udp"],
    [DNS_V4, 53, "tcp"],
    [DNS_V4, 8080, "tcp"],
    [ADDR.serverV6, 8080, "tcp"],
    [ADDR.upstreamV6, 8080, "tcp"],
    [METADATA_V6, 80, "tcp"],
    [BLOCKED_V6, 8080, "tcp"],
    [ADDR.serverV4, 8080, "udp"],
    [ADDR.serverV4b, 8080, "udp"],
    [BLOCKED_V4, 8080, "udp"],
    [ADDR.serverV6, 8080, "udp"],
    [ADDR.upstreamV6, 8080, "udp"],
    [BLOCKED_V6, 8080, "udp"],
  ] as const) {
    servers.push(startPortEchoServer(upstream, addr, port, proto));
  }
  const started = await Promise.allSettled(servers);
  const failed = started.find((r) => r.status === "rejected");
  const ok = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  if (failed) {
    for (const server of ok) await server.stop();
    throw failed.reason;
  }
  return ok;
}
