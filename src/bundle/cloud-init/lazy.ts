// The door `check` and `render` go through: without a target (no
// --cloud-init, no user_data.cloud_init) it returns at once, and check.ts,
// the cloud-init schemas and the validator are never loaded (start-up time is
// a feature: BENCHMARKS.md). In the CLI bundle the import() below is esbuild's
// lazy module initialisation, as for the AWS SDK (cli/aws-commands.ts).
import type { Diagnostic } from "../../config/errors.js";
import type { Model } from "../../model.js";
import type { Bundle } from "../render-bundle.js";

export interface CloudInitCheck {
  diagnostics: Diagnostic[];
  /** --cloud-init named nothing dockinit can check: exit 2. */
  usage: boolean;
  /** The target and its schema in words ("cloud-init 22.2 (schema of 22.2.2)"), when one was checked. */
  checked?: string;
}

/** The target from `flag` (--cloud-init) or user_data.cloud_init, checked; nothing when neither names one, or nothing was rendered. */
export async function checkCloudInitIfAsked(flag: string | undefined, loaded: { model?: Model; file: string; source: string }, bundle: Pick<Bundle, "files"> | undefined): Promise<CloudInitCheck> {
  const model = loaded.model;
  if (!model || !bundle || (flag === undefined && model.userData.cloudInit === undefined)) return { diagnostics: [], usage: false };
  const { checkCloudInitTarget, describeTarget } = await import("./check.js");
  const r = checkCloudInitTarget({ model, file: loaded.file, source: loaded.source }, bundle, flag);
  return { diagnostics: r.diagnostics, usage: r.usage, ...(r.target ? { checked: describeTarget(r.target) } : {}) };
}
