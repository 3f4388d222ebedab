// Writing a bundle to disk: out/user-data, out/manifest.json, out/files/<path>.
// render owns only what it wrote: a folder holding anything a dockinit
// manifest does not list is refused, whole, before anything is written.
// The tree is written to a sibling temporary directory and renamed into place,
// so a failure never leaves a partial out/. An out/ that already holds exactly
// the bundle is left alone: nothing is rewritten, file times are kept (make and
// CI caches see no change), and a re-render skips some 20 slow metadata writes.
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Bundle, Manifest } from "./render-bundle.js";

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

/**
 * The output folder holds something dockinit did not write: a file or folder
 * not listed by a dockinit manifest.json in it (or no such manifest at all).
 * Nothing was written or removed. `entries` names them, relative to the folder.
 */
export class OutputFolderNotOwned extends Error {
  /** Its code in the catalogue (src/config/errors.ts). */
  readonly code = "DI080";
  constructor(
    readonly folder: string,
    readonly entries: string[],
  ) {
    const shown = entries.slice(0, 5).join(", ") + (entries.length > 5 ? ` and ${entries.length - 5} more` : "");
    super(`${folder} holds ${entries.length === 1 ? "an entry" : `${entries.length} entries`} dockinit did not write (${shown}); nothing was written or removed`);
    this.name = "OutputFolderNotOwned";
  }
}

/** The manifest's name: only one whose `generator` says dockinit counts as ours (manifest.json alone is a common name). */
const MANIFEST = "manifest.json";

/**
 * Write the bundle into outDir, replacing what a previous render left there.
 *
 * outDir is replaced only when it is new, empty, or holds nothing but the files
 * a dockinit manifest.json in it lists (and the folders they sit in): anything
 * else throws OutputFolderNotOwned before a byte is written, so `-o .` in a
 * repository, or an `out/` a compiler shares, loses nothing. A symlink to a
 * folder is resolved and the folder it names is judged and replaced the same
 * way, so the link keeps working and nothing outside that folder is touched.
 */
export function writeBundle(bundle: Bundle, outDir: string): WriteOutcome {
  const target = realTarget(resolve(outDir));
  const entries = bundleEntries(bundle);
  const owned = ownedEntries(target);
  if (owned === undefined) return writeFresh(target, entries);
  const foreign = owned.foreign;
  if (foreign.length > 0) throw new OutputFolderNotOwned(outDir, foreign);
  if (holdsExactly(target, entries)) return "unchanged";
  const tmp = `${target}.tmp-${process.pid}`;
  const old = `${target}.old-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    writeTree(tmp, entries);
    renameSync(target, old);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(target) && existsSync(old)) renameSync(old, target);
    throw err;
  }
  // Only what the old manifest listed goes; anything that appeared since the
  // check stays in `old` (and so does the folder), never deleted unseen.
  removeOwned(old, owned.files);
  return "written";
}

/** A new folder: written beside it, then renamed into place, so a failure leaves nothing half-written. */
function writeFresh(target: string, entries: BundleEntry[]): WriteOutcome {
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    writeTree(tmp, entries);
    // An empty folder that exists is replaced by the new one (it held nothing).
    if (existsSync(target)) rmdirSync(target);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return "written";
}

function writeTree(root: string, entries: BundleEntry[]): void {
  for (const e of entries) {
    const file = join(root, e.path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, e.content, { mode: e.mode });
  }
}

/** outDir itself, or the folder a symlink at outDir names (followed to the end: a chain of links). */
function realTarget(path: string): string {
  try {
    if (lstatSync(path).isSymbolicLink()) return realpathSync(path);
  } catch {
    // A dangling link or no entry: realpath cannot say; the checks below refuse what is not a folder.
  }
  return path;
}

/**
 * What is in dir, judged against the dockinit manifest.json in it: undefined
 * when dir does not exist or is an empty folder (nothing to lose); otherwise
 * the files that manifest lists (relative paths) and every entry it does not
 * account for. Without a dockinit manifest, every entry is foreign.
 */
function ownedEntries(dir: string): { files: string[]; foreign: string[] } | undefined {
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return undefined;
  }
  if (!st.isDirectory()) return { files: [], foreign: [basename(dir)] };
  const present = listEntries(dir, "");
  if (present.length === 0) return undefined;
  const listed = listedByManifest(dir);
  // Without one, name the top-level entries: each of them would be lost.
  if (listed === undefined) return { files: [], foreign: present.filter((p) => !p.replace(/\/$/, "").includes("/")) };
  const allowed = new Set<string>();
  for (const f of listed) {
    allowed.add(f);
    for (let d = dirname(f); d !== "."; d = dirname(d)) allowed.add(`${d}/`);
  }
  const foreign = present.filter((p) => !allowed.has(p));
  // Name the outermost foreign entries only: "files/x/" rather than each file below it.
  const outermost = foreign.filter((p) => !foreign.some((q) => q !== p && q.endsWith("/") && p.startsWith(q)));
  return { files: listed.filter((f) => present.includes(f)), foreign: outermost };
}

/** The relative paths a dockinit manifest.json in dir lists (itself, user-data, files/…), or undefined when it is not one. */
function listedByManifest(dir: string): string[] | undefined {
  try {
    const file = join(dir, MANIFEST);
    if (!lstatSync(file).isFile()) return undefined;
    const m = JSON.parse(readFileSync(file, "utf8")) as Partial<Manifest>;
    if (typeof m.generator !== "string" || !/^dockinit /.test(m.generator) || !Array.isArray(m.files)) return undefined;
    const paths = [MANIFEST, "user-data"];
    for (const f of m.files) {
      // A path that climbs out ("..") or is not a plain string is not one dockinit wrote.
      if (typeof f?.path !== "string" || !f.path.startsWith("/") || f.path.split("/").some((s) => s === ".." || s === ".")) return undefined;
      paths.push(join("files", f.path));
    }
    return paths;
  } catch {
    return undefined;
  }
}

/** Every file ("a/b"), folder ("a/") and anything else ("a/link") under dir, without following links. */
function listEntries(dir: string, prefix: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${d.name}` : d.name;
    if (d.isDirectory()) out.push(`${rel}/`, ...listEntries(join(dir, d.name), rel));
    else out.push(rel);
  }
  return out;
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
 * Remove the files of a previous render (moved aside to `dir`) that its
 * manifest listed, then the folders they leave empty. Never follows a
 * symlink and never removes what it did not list: a folder that is not
 * empty afterwards stays, with what appeared in it.
 */
function removeOwned(dir: string, files: string[]): void {
  const folders = new Set<string>();
  for (const f of files) {
    try {
      // A file, or a symlink put in its place (unlinked, never followed).
      if (!lstatSync(join(dir, f)).isDirectory()) unlinkSync(join(dir, f));
    } catch {
      // Gone already: nothing to remove.
    }
    for (let d = dirname(f); d !== "."; d = dirname(d)) folders.add(d);
  }
  // Deepest first, so a parent is empty when its turn comes.
  for (const d of [...folders].sort((a, b) => b.length - a.length)) tryRmdir(join(dir, d));
  tryRmdir(dir);
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty (something appeared there): left in place.
  }
}
