// /usr/local/sbin/dockinit-vpc-dns: resolves `vpc` at boot (see the template).
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { HOST_PATHS } from "../host-paths.js";
import { renderTemplate } from "./templates.js";

export function renderVpcDnsScript(model: Model): Artifact {
  const dnsSpec = model.docker.dns.map((d) => (d.kind === "vpc" ? "vpc" : d.address));
  return {
    path: HOST_PATHS.vpcDnsScript,
    content: renderTemplate("vpcDnsScript", { name: model.name, dnsSpec }),
    permissions: "0755",
    owner: "root:root",
    origin: "dockinit",
  };
}
