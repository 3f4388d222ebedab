// Writing a bundle to disk: out/user-data, out/manifest.json, out/files/<path>.
// The tree is written to a sibling temporary directory and renamed into place,
// so a failure never leaves a partial out/. An out/ that already holds exactly
// the bundle is left alone: nothing is rewritten, file times are kept (make and
// CI caches see no change), and a re-render skips some 20 slow metadata writes.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Bundle } from "./render-bundle.js";

export interface BundleEntry {
  /** Path relative to the output directory. */
  path: string;
  content: Buffer | string;
  mode: number;
}

export function bundleEntries(bundle: Bundle): BundleEntry[] {
  return [
    { path: "user-data", content: bundle.userData, mode: 0o644 },
    { path: "manifest.json", content: `${JSON.stringify(bundle.manifest, null, 2)}\n`, mode: 0o644 },
    ...bundle.files.map((f) => ({ path: join("files", f.path), content: f.content, mode: parseInt(f.permissions, 8) & 0o777 })),
  ];
}

/** What writeBundle did: "unchanged" when out/ already held exactly the bundle. */
export type WriteOutcome = "written" | "unchanged";

export function writeBundle(bundle: Bundle, outDir: string): WriteOutcome {
  const target = resolve(outDir);
  const entries = bundleEntries(bundle);
  if (holdsExactly(target, entries)) return "unchanged";
  const tmp = `${target}.tmp-${process.pid}`;
  const old = `${target}.old-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    for (const e of entries) {
      const file = join(tmp, e.path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, e.content, { mode: e.mode });
    }
    if (existsSync(target)) renameSync(target, old);
    renameSync(tmp, target);
    removeTree(old);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(target) && existsSync(old)) renameSync(old, target);
    throw err;
  }
  return "written";
}

/**
 * True when dir holds the entries and nothing else: same paths, same bytes,
 * same permission bits. Only reads; any surprise (a symlink, a stray file, an
 * unreadable file) answers false and the tree is rewritten.
 */
function holdsExactly(dir: string, entries: BundleEntry[]): boolean {
  try {
    const present = listFiles(dir, "");
    if (present === undefined || present.length !== entries.length) return false;
    const wanted = new Set(entries.map((e) => e.path));
    if (!present.every((p) => wanted.has(p))) return false;
    // The mode writeFileSync gave each file: the entry's, less the umask.
    const umask = process.umask();
    return entries.every((e) => {
      const file = join(dir, e.path);
      if ((statSync(file).mode & 0o777) !== (e.mode & ~umask)) return false;
      return readFileSync(file).equals(typeof e.content === "string" ? Buffer.from(e.content, "utf8") : e.content);
    });
  } catch {
    return false;
  }
}

/** Regular files under dir (relative paths), or undefined if anything else is there. */
function listFiles(dir: string, prefix: string): string[] | undefined {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? join(prefix, d.name) : d.name;
    if (d.isDirectory()) {
      const sub = listFiles(join(dir, d.name), rel);
      if (sub === undefined) return undefined;
      out.push(...sub);
    } else if (d.isFile()) out.push(rel);
    else return undefined;
  }
  return out;
}

/** rm -r for a tree this process just moved aside (rmSync tries rmdir first on every directory). */
function removeTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) removeTree(p);
    else unlinkSync(p);
  }
  rmdirSync(dir);
}
