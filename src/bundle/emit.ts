// Writing a bundle to disk: out/user-data, out/manifest.json, out/files/<path>.
// The tree is written to a sibling temporary directory and renamed into place,
// so a failure never leaves a partial out/.
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Bundle } from "./render-bundle.js";

export function bundleEntries(bundle: Bundle): { path: string; content: Buffer | string; mode: number }[] {
  return [
    { path: "user-data", content: bundle.userData, mode: 0o644 },
    { path: "manifest.json", content: `${JSON.stringify(bundle.manifest, null, 2)}\n`, mode: 0o644 },
    ...bundle.files.map((f) => ({ path: join("files", f.path), content: f.content, mode: parseInt(f.permissions, 8) & 0o777 })),
  ];
}

export function writeBundle(bundle: Bundle, outDir: string): void {
  const target = resolve(outDir);
  const tmp = `${target}.tmp-${process.pid}`;
  const old = `${target}.old-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    for (const e of bundleEntries(bundle)) {
      const file = join(tmp, e.path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, e.content, { mode: e.mode });
    }
    if (existsSync(target)) renameSync(target, old);
    renameSync(tmp, target);
    rmSync(old, { recursive: true, force: true });
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(target) && existsSync(old)) renameSync(old, target);
    throw err;
  }
}
