// /usr/local/sbin/dockinit-boot: the one runcmd entry dockinit adds.
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { proxyProtocols } from "./firewall-rules.js";
import { HOST_PATHS } from "../host-paths.js";
import { renderTemplate } from "./templates.js";
import { needsVpcResolver, unitNames } from "./units.js";
import { needsForwardingSysctl } from "./forwarding-sysctl.js";

/** A command the host script runs, and the package that brings it under apt and dnf (Amazon Linux 2, yum, ended in June 2026). */
interface Tool {
  command: string;
  apt: string;
  dnf: string;
}

/** What the rendered firewall needs on the host (Amazon Linux 2023 ships neither ipset nor nft). */
export function firewallTools(model: Model): Tool[] {
  const tools: Tool[] = [];
  if (model.firewall.backend === "nftables") tools.push({ command: "nft", apt: "nftables", dnf: "nftables" });
  else tools.push({ command: "iptables-restore", apt: "iptables", dnf: "iptables-nft" });
  const ipsets = model.firewall.backend === "iptables" && (model.firewall.containers.egressAllow.length > 0 || proxyProtocols(model).length > 0);
  if (ipsets) tools.push({ command: "ipset", apt: "ipset", dnf: "ipset" });
  tools.push({ command: "flock", apt: "util-linux", dnf: "util-linux" });
  return tools;
}

export function renderBootScript(model: Model): Artifact {
  return {
    path: HOST_PATHS.bootScript,
    content: renderTemplate("bootScript", {
      name: model.name,
      install: model.docker.install,
      vpcDns: needsVpcResolver(model),
      units: unitNames(model),
      // dnf's name only where it is not apt's.
      tools: firewallTools(model).map((t) => ({ ...t, dnfName: t.dnf !== t.apt })),
      forwardingSysctl: needsForwardingSysctl(model) ? HOST_PATHS.forwardingSysctl : undefined,
    }),
    permissions: "0755",
    owner: "root:root",
    origin: "dockinit",
  };
}
