// Render a fixture (or config text) into a temporary out/ for system tests.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, loadConfigString, renderBundle, writeBundle } from "../../src/index.js";
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

export const renderFixture = (name: string): RenderedBundle => emit(loadConfig(join(FIXTURES, name, "dockinit.yaml")));
export const renderYaml = (yaml: string): RenderedBundle => emit(loadConfigString(yaml));
