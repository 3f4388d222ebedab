// /etc/docker/daemon.json: the user's settings passed through, plus dns and
// dns-search. `vpc` cannot be known before boot; dockinit-vpc-dns writes it
// in, so the rendered file carries the other servers (what Docker uses if the
// metadata lookup fails). Keys are sorted: same input, same bytes.
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { HOST_PATHS } from "../host-paths.js";
import { needsProxyWrapper } from "./proxy-script.js";

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

export function daemonJsonObject(model: Model): Record<string, unknown> {
  const out: Record<string, unknown> = { ...model.docker.settings };
  const literals = model.docker.dns.flatMap((d) => (d.kind === "literal" ? [d.address] : []));
  if (literals.length > 0) out.dns = literals;
  if (model.docker.dnsSearch.length > 0) out["dns-search"] = model.docker.dnsSearch;
  if (needsProxyWrapper(model)) out["userland-proxy-path"] = HOST_PATHS.proxyScript;
  return sortKeys(out) as Record<string, unknown>;
}

export function renderDaemonJson(model: Model): Artifact {
  return {
    path: HOST_PATHS.daemonJson,
    content: `${JSON.stringify(daemonJsonObject(model), null, 2)}\n`,
    permissions: "0644",
    owner: "root:root",
    origin: "dockinit",
  };
}
