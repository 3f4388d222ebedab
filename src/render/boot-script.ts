// /usr/local/sbin/dockinit-boot: the one runcmd entry dockinit adds.
import type { Model } from "../model.js";
import type { Artifact } from "./artifact.js";
import { HOST_PATHS } from "./paths.js";
import { renderTemplate } from "./templates.js";
import { needsVpcResolver, unitNames } from "./units.js";

export function renderBootScript(model: Model): Artifact {
  return {
    path: HOST_PATHS.bootScript,
    content: renderTemplate("bootScript", {
      name: model.name,
      install: model.docker.install,
      vpcDns: needsVpcResolver(model),
      units: unitNames(model),
    }),
    permissions: "0755",
    owner: "root:root",
    origin: "dockinit",
  };
}
