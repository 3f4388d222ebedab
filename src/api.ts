// The library API: the pipeline's stages as pure functions plus the two that
// touch the file system (loadConfig reads, writeBundle writes).
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { DEFAULT_CONFIG, DEFAULT_CONFIG_NAME } from "./config/default.js";
import { diagnostic, hasErrors, type Diagnostic } from "./config/errors.js";
import { decodeConfigText, locate, MAX_CONFIG_BYTES, parseConfig } from "./config/load.js";
import { buildModel, MAX_REFERENCED_BYTES, type FileReader, type Model } from "./model.js";
import { renderBundle as renderModel, type Bundle } from "./bundle/render-bundle.js";

export interface LoadResult {
  /** Normalised configuration; undefined when there are errors. */
  model?: Model;
  /** Errors and warnings, sorted by position. */
  diagnostics: Diagnostic[];
  file: string;
  source: string;
}

/** A FileReader for paths relative to `baseDir` (the config's directory). */
export function directoryReader(baseDir: string): FileReader {
  return {
    read(rel) {
      try {
        const p = resolve(baseDir, rel);
        if (statSync(p).size > MAX_REFERENCED_BYTES) return undefined;
        return readFileSync(p, "utf8");
      } catch {
        return undefined;
      }
    },
    size(rel) {
      try {
        const st = statSync(resolve(baseDir, rel));
        return st.isFile() ? st.size : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

/** Validate configuration text. `files` resolves `source:`/part `file:` references. */
export function loadConfigString(source: string, opts: { file?: string; files?: FileReader } = {}): LoadResult {
  const file = opts.file ?? "dockinit.yaml";
  const loaded = parseConfig(source, file);
  if (!loaded.config) return { diagnostics: loaded.diagnostics, file, source };
  const { model, diagnostics } = buildModel(loaded.config, opts.files ?? { read: () => undefined });
  const located = locate(loaded, diagnostics);
  return { model: hasErrors(located) ? undefined : model, diagnostics: located, file, source };
}

/** A load that failed on the file itself: its one diagnostic, and no text to show. */
const unreadable = (d: Diagnostic, file: string): LoadResult => ({ diagnostics: [{ ...d, file }], file, source: "" });

/**
 * Validate configuration bytes (a file's, or standard input's), decoded
 * strictly: reading them as "utf8" would turn a Latin-1 or binary file into
 * U+FFFD replacements and a screen of errors. `what` names them in the size error.
 */
export function loadConfigBytes(bytes: Uint8Array, opts: { file: string; what: string; files: FileReader }): LoadResult {
  if (bytes.length > MAX_CONFIG_BYTES) return unreadable(diagnostic("DI004", `${opts.what} is larger than ${MAX_CONFIG_BYTES} bytes`), opts.file);
  const text = decodeConfigText(bytes);
  if (text.diagnostic) return unreadable(text.diagnostic, opts.file);
  return loadConfigString(text.source, { file: opts.file, files: opts.files });
}

/** Read and validate a dockinit.yaml; referenced files are read relative to it. */
export function loadConfig(path: string): LoadResult {
  let bytes: Buffer;
  try {
    // Not read at all when too large.
    if (statSync(path).size > MAX_CONFIG_BYTES) return unreadable(diagnostic("DI004", `${path} is larger than ${MAX_CONFIG_BYTES} bytes`), path);
    bytes = readFileSync(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? String(err);
    return unreadable(diagnostic("DI005", `cannot read ${path} (${why})`), path);
  }
  return loadConfigBytes(bytes, { file: path, what: path, files: directoryReader(dirname(path)) });
}

/** The built-in default configuration (the seed scenario). */
export function loadDefaultConfig(): LoadResult {
  return loadConfigString(DEFAULT_CONFIG, { file: DEFAULT_CONFIG_NAME });
}

export interface RenderResult {
  bundle?: Bundle;
  diagnostics: Diagnostic[];
}

/** Render a loaded configuration (or a model) into a bundle. Pure. */
export function renderBundle(input: LoadResult | Model): RenderResult {
  if ("diagnostics" in input && "source" in input) {
    if (!input.model) return { diagnostics: input.diagnostics };
    const r = renderModel(input.model);
    return { bundle: r.bundle, diagnostics: [...input.diagnostics, ...r.diagnostics.map((d) => ({ ...d, file: input.file }))] };
  }
  return renderModel(input);
}

/**
 * The user-data as EC2's API and infrastructure-as-code tools take it: the
 * bundle's exact bytes in base64 (Terraform's `filebase64("out/user-data")`
 * gives the same string; CloudFormation's and CDK's `UserData` want it).
 */
export function userDataBase64(bundle: Pick<Bundle, "userData">): string {
  return Buffer.from(bundle.userData).toString("base64");
}
