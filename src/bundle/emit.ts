// Writing a bundle to disk: out/user-data, out/manifest.json, out/files/<path>.
// The tree is written to a sibling temporary directory and renamed into place,
// so a failure never leaves a partial out/. An out/ that already holds exactly
// the bundle is left alone: nothing is rewritten, file times are kept (make and
// CI caches see no change), and a re-render skips some 20 slow metadata writes.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
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
 * True when dir holds the entries and nothing else: the same files with the
 * same bytes and permission bits, and no other file or directory. (Directory
 * modes are not compared.) Only reads; any surprise (a symlink, an unreadable
 * file, dir not a directory) answers false and the tree is rewritten.
 */
function holdsExactly(dir: string, entries: BundleEntry[]): boolean {
  try {
    const present = listTree(dir, "");
    if (present === undefined) return false;
    const wanted = new Set<string>();
    for (const e of entries) {
      wanted.add(e.path);
      for (let d = dirname(e.path); d !== "."; d = dirname(d)) wanted.add(`${d}/`);
    }
    if (present.length !== wanted.size || !present.every((p) => wanted.has(p))) return false;
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

/** Every file ("a/b") and directory ("a/") under dir, or undefined if anything else is there. */
function listTree(dir: string, prefix: string): string[] | undefined {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? join(prefix, d.name) : d.name;
    if (d.isDirectory()) {
      const sub = listTree(join(dir, d.name), rel);
      if (sub === undefined) return undefined;
      out.push(`${rel}/`, ...sub);
    } else if (d.isFile()) out.push(rel);
    else return undefined;
  }
  return out;
}

/**
 * rm -r of what this process just moved aside. Never follows a symlink: an
 * out/ that was a link to a directory leaves that directory as it was, and an
 * out that was a file is just unlinked. (rmSync would too, but it tries
 * rmdir first on every directory.)
 */
function removeTree(path: string): void {
  let isDir: boolean;
  try {
    isDir = lstatSync(path).isDirectory();
  } catch {
    return;
  }
  if (!isDir) return unlinkSync(path);
  for (const d of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, d.name);
    if (d.isDirectory()) removeTree(p);
    else unlinkSync(p);
  }
  rmdirSync(path);
}
