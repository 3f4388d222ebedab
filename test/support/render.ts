// Render a fixture (or config text) into a temporary out/ for system tests.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { directoryReader, loadConfig, loadConfigString, renderBundle, writeBundle } from "../../src/index.js";
import type { Backend } from "../../src/model.js";
import { FIXTURES } from "./fixtures.js";

export interface RenderedBundle {
  out: string;
  file(hostPath: string): string;
  cleanup(): void;
}

function emit(loaded: ReturnType<typeof loadConfig>): RenderedBundle {
  const { bundle, diagnostics } = renderBundle(loaded);
  if (!bundle) throw new Error(`render failed: ${JSON.stringify(diagnostics)}`);
  const out = join(mkdtempSync(join(tmpdir(), "dockinit-out-")), "out");
  writeBundle(bundle, out);
  return {
    out,
    file: (hostPath) => join(out, "files", hostPath),
    cleanup: () => rmSync(join(out, ".."), { recursive: true, force: true }),
  };
}

/**
 * The config text with `firewall.backend` set to `backend`: a system test that
 * proves one backend says which, whatever `auto` would choose. A config that
 * already names a different backend is a mistake in the test.
 */
export function withBackend(yaml: string, backend: Backend): string {
  const doc = parseDocument(yaml);
  const named = doc.getIn(["firewall", "backend"]);
  if (named !== undefined && named !== "auto" && named !== backend) throw new Error(`the config names backend ${String(named)}, not ${backend}`);
  if (!doc.has("firewall")) doc.set("firewall", doc.createNode({}));
  doc.setIn(["firewall", "backend"], backend);
  return doc.toString();
}

/** A fixture rendered as it is, or with the backend a test proves. */
export const renderFixture = (name: string, opts: { backend?: Backend } = {}): RenderedBundle => {
  const path = join(FIXTURES, name, "dockinit.yaml");
  if (!opts.backend) return emit(loadConfig(path));
  return emit(loadConfigString(withBackend(readFileSync(path, "utf8"), opts.backend), { file: path, files: directoryReader(join(FIXTURES, name)) }));
};
export const renderYaml = (yaml: string, opts: { backend?: Backend } = {}): RenderedBundle =>
  emit(loadConfigString(opts.backend ? withBackend(yaml, opts.backend) : yaml));
