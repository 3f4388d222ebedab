// /usr/local/sbin/dockinit-firewall: the on-host half of dockinit.
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { dnsEntries, dnsFamilies, egressEntries, NAT6, planFirewall, proxyProtocols } from "./firewall-rules.js";
import { HOST_PATHS } from "../host-paths.js";
import { renderTemplate } from "./templates.js";
import { needsVpcResolver } from "./units.js";

/** bundleId: the bundle's id ("" while the id itself is computed: see bundleIdOf). */
export function renderFirewallScript(model: Model, bundleId = ""): Artifact {
  if (!/^([0-9a-f]{64})?$/.test(bundleId)) throw new Error(`not a bundle id: ${bundleId}`);
  const plan = planFirewall(model);
  // status prints the summary from a quoted here-document: each sentence is
  // one line of parsed values, never the delimiter.
  for (const line of plan.summary) if (line.includes("\n") || line.trim() === "DOCKINIT_SUMMARY") throw new Error(`summary line cannot ship in a here-document: ${line}`);
  const families = plan.iptables.filter((f) => f.tables.length > 0);
  const nft = model.firewall.backend === "nftables";
  const egressAllow = model.firewall.containers.egressAllow.length > 0;
  const proxy = proxyProtocols(model);
  const hostRange = model.ephemeral.enabled && model.ephemeral.hostRange ? model.ephemeral.to : false;
  // One backend per script, and only the features the config uses: the
  // template's sections for the other backend, for ipsets and for egress
  // are left out rather than shipped as dead code.
  const content = renderTemplate(nft ? "firewallNftables" : "firewallIptables", {
    name: model.name,
    bundleId,
    backend: model.firewall.backend,
    backendReason: `firewall.backend: ${model.firewall.backendChoice.requested} (${model.firewall.backendChoice.reason})`,
    iptables: !nft,
    nftables: nft,
    ipsets: !nft && (egressAllow || proxy.length > 0),
    // Configured names (validated: letters, digits, _.@- and a trailing +), for status's warnings; none with auto.
    externalNames: model.firewall.externalInterfaces === "auto" ? "" : model.firewall.externalInterfaces.join(" "),
    // Rules loaded only while Docker NATs IPv6: the script resolves their mark at apply.
    nat6: plan.rules.some((r) => r.when === "docker-nat6"),
    families: families.map((f) => f.family).join(" "),
    familyRules: families.map((f) => ({ ...f, tables: f.tables.map((t) => ({ ...t, marked: t.rules.some((r) => r.startsWith(NAT6)) })) })),
    nftParts: plan.nftParts,
    proxyProtocols: proxy.join(" "),
    // A dockinit-proxy about to exec docker-proxy is bash running this script.
    proxyScript: HOST_PATHS.proxyScript,
    egress: egressAllow ? families.map((f) => ({ family: f.family, entries: egressEntries(model, f.family) })) : [],
    dns: egressAllow ? families.map((f) => ({ family: f.family, entries: dnsEntries(model, f.family) })) : [],
    // nftables: both families' sets live in table inet dockinit with their
    // literal entries, DNS servers included; the script adds the DNS servers
    // from daemon.json to the DNS sets only where one is found at boot (`vpc`).
    egressFamilies: egressAllow ? (nft ? (needsVpcResolver(model) ? dnsFamilies(model).join(" ") : "") : families.map((f) => f.family).join(" ")) : "",
    forwardAccepts: plan.forwardAccepts,
    // One word per accept: its family, then the rule after the chain name.
    forwardAcceptLines: plan.forwardAccepts.map((a) => `${a.family} ${a.spec}`),
    forwardFamilies: [...new Set(plan.forwardAccepts.map((a) => a.family))].sort().join(" "),
    hostRange,
    statusParts: hostRange !== false || plan.forwardAccepts.length > 0,
    summary: plan.summary,
  });
  return { path: HOST_PATHS.firewallScript, content: withoutCommentLines(content), permissions: "0755", owner: "root:root", origin: "dockinit" };
}

/**
 * The script without its own comment lines (the first two, which say what it
 * is, and shellcheck's directives stay): EC2 takes 16,384 bytes of user-data,
 * gzipped or not, and an iptables host with many policies came within a few
 * hundred bytes of it. What the comments said is in the templates and
 * docs/firewall.md. A here-document's body (rules, the ruleset, the summary)
 * is data and kept whole, whatever its lines start with.
 */
export function withoutCommentLines(script: string): string {
  const out: string[] = [];
  let heredoc: string | undefined;
  script.split("\n").forEach((line, i) => {
    if (heredoc !== undefined) {
      if (line === heredoc) heredoc = undefined;
      out.push(line);
      return;
    }
    const opens = /<<-?'([A-Z_]+)'/.exec(line);
    if (opens) heredoc = opens[1];
    if (i < 2 || !/^\s*#/.test(line) || /^\s*# shellcheck /.test(line)) out.push(line);
  });
  return out.join("\n");
}
