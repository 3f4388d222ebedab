// /usr/local/sbin/dockinit-proxy: Docker's userland-proxy-path under
// `published.default: deny`, so the ports docker-proxy serves (IPv6 to an
// IPv4-only container, Docker's default) are known before they are listened on.
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { proxyProtocols } from "./firewall-rules.js";
import { HOST_PATHS } from "../host-paths.js";
import { renderTemplate } from "./templates.js";

/**
 * Whether the host needs the wrapper: default deny, and Docker's userland
 * proxy not turned off (then there is no docker-proxy path to close). A
 * userland-proxy-path of the user's own is refused under deny (DI057).
 */
export function needsProxyWrapper(model: Model): boolean {
  return proxyProtocols(model).length > 0 && model.docker.settings["userland-proxy"] !== false;
}

export function renderProxyScript(model: Model): Artifact {
  return {
    path: HOST_PATHS.proxyScript,
    content: renderTemplate("proxyScript", { name: model.name, nftables: model.firewall.backend === "nftables" }),
    permissions: "0755",
    owner: "root:root",
    origin: "dockinit",
  };
}
