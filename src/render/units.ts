// The systemd units: the firewall (after Docker, again on every Docker
// start), its watch (iptables backend only), and the VPC resolver (before Docker).
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { HOST_PATHS } from "./paths.js";
import { renderTemplate } from "./templates.js";

const unit = (path: string, content: string): Artifact => ({ path, content, permissions: "0644", owner: "root:root", origin: "dockinit" });

export function needsVpcResolver(model: Model): boolean {
  return model.docker.dns.some((d) => d.kind === "vpc");
}

export function needsWatch(model: Model): boolean {
  return model.firewall.backend === "iptables";
}

export function renderUnits(model: Model): Artifact[] {
  const data = { name: model.name, backend: model.firewall.backend };
  const out = [unit(HOST_PATHS.firewallUnit, renderTemplate("firewallUnit", data))];
  if (needsWatch(model)) out.push(unit(HOST_PATHS.watchUnit, renderTemplate("watchUnit", data)));
  if (needsVpcResolver(model)) out.push(unit(HOST_PATHS.vpcDnsUnit, renderTemplate("vpcDnsUnit", data)));
  return out;
}

/** Unit names in the order dockinit-boot enables and starts them. */
export function unitNames(model: Model): string[] {
  return renderUnits(model).map((u) => u.path.slice(u.path.lastIndexOf("/") + 1)).sort((a, b) => {
    const order = (n: string) => (n.includes("vpc-dns") ? 0 : n.includes("watch") ? 2 : 1);
    return order(a) - order(b);
  });
}
