// dockinit as a library: `import { loadConfig, renderBundle } from "dockinit"`.
export { loadConfig, loadConfigString, loadDefaultConfig, renderBundle, directoryReader, userDataBase64 } from "./api.js";
export type { LoadResult, RenderResult } from "./api.js";
export { writeBundle, bundleEntries, OutputFolderNotOwned, type BundleEntry, type WriteOutcome } from "./bundle/emit.js";
export type { Bundle, Manifest, ManifestFile } from "./bundle/render-bundle.js";
export { USER_DATA_BUDGET } from "./bundle/user-data.js";
export { configJsonSchema } from "./config/schema.js";
export type { Config, ConfigInput } from "./config/schema.js";
export { catalogue, formatPath, hasErrors } from "./config/errors.js";
export type { Diagnostic, DiagnosticCode, Severity } from "./config/errors.js";
export { formatDiagnostic } from "./config/format.js";
export type { Model } from "./model.js";
export type { Artifact } from "./render/artifact.js";
export { planFirewall } from "./render/firewall-rules.js";
/** The firewall script alone (no user-data budget): for hosts provisioned without cloud-init, and the benchmarks. */
export { renderFirewallScript } from "./render/firewall-script.js";
