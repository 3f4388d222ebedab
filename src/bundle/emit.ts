// Writing a bundle to disk: out/user-data, out/manifest.json, out/files/<path>.
// render owns only what it wrote: a folder holding anything a dockinit
// manifest does not list is refused, whole, before anything is written
// (writeBundle says how a new folder and a previous render are written). An out/ that already holds exactly
// the bundle is left alone: nothing is rewritten, file times are kept (make and
// CI caches see no change), and a re-render skips some 20 slow metadata writes.
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
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
 * not listed by a dockinit manifest.json in it (or no such manifest at all),
 * or it is not a folder. Nothing was written or removed. `entries` names what
 * is in the way, relative to the folder. Mixing `require` and `import` of the
 * package gives two copies of this class: test `code === "DI080"`, not instanceof.
 */
export class OutputFolderNotOwned extends Error {
  /** Its code in the catalogue (src/config/errors.ts). */
  readonly code = "DI080";
  constructor(
    readonly folder: string,
    readonly entries: string[],
    /** True when outDir exists but is not a folder (a file, a link to one, a dangling or looping link). */
    readonly notAFolder = false,
  ) {
    const shown = entries.slice(0, 5).join(", ") + (entries.length > 5 ? ` and ${entries.length - 5} more` : "");
    super(notAFolder ? `${folder} is not a folder; nothing was written or removed` : `${folder} holds what dockinit did not write (${shown}); nothing was written or removed`);
    this.name = "OutputFolderNotOwned";
  }
}

/** The manifest's name: only one whose `generator` says dockinit counts as ours (manifest.json alone is a common name). */
const MANIFEST = "manifest.json";

/** More entries than a bundle can hold: the folder is not a previous render, and is not walked further. */
const MAX_ENTRIES = 10_000;

/**
 * Write the bundle into outDir.
 *
 * A new outDir is written beside it and renamed into place, so it appears
 * whole. An existing one is written into only when it is empty or holds
 * nothing but the files a dockinit manifest.json in it lists (and their
 * folders): anything else throws OutputFolderNotOwned before a byte is
 * written, so `-o .` in a repository, or an `out/` a compiler shares, loses
 * nothing. The folder itself is kept (a mount point, its mode and owner, the
 * shell that stands in it, a symlink that names it): each file is written to
 * a temporary name and renamed over the old one, so a reader sees an old or
 * a new file, never half of one; the previous render's files the new one
 * lacks are then removed by name, and the manifest is written last. Until
 * then the manifest lists old and new files alike, so a render cut short is
 * still recognised as dockinit's and replaced by the next.
 */
export function writeBundle(bundle: Bundle, outDir: string): WriteOutcome {
  const target = realTarget(resolve(outDir));
  const entries = bundleEntries(bundle);
  const state = folderState(target);
  if (state.kind === "absent") return writeFresh(target, entries);
  if (state.kind === "not-a-folder") throw new OutputFolderNotOwned(outDir, [basename(target)], true);
  if (state.foreign.length > 0) throw new OutputFolderNotOwned(outDir, state.foreign);
  if (holdsExactly(target, entries)) return "unchanged";
  writeInPlace(target, entries, state.listed);
  return "written";
}

/** A new folder: written beside it, then renamed into place, so a failure leaves nothing half-written. */
function writeFresh(target: string, entries: BundleEntry[]): WriteOutcome {
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    writeTree(tmp, entries);
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

/**
 * Replace a previous render (or fill an empty folder) file by file; see
 * writeBundle. `previous`: the files the old manifest listed that are there.
 */
function writeInPlace(dir: string, entries: BundleEntry[], previous: string[]): void {
  const manifest = entries.find((e) => e.path === MANIFEST)!;
  const files = entries.filter((e) => e !== manifest);
  const fresh = new Set(entries.map((e) => e.path));
  const stale = previous.filter((p) => !fresh.has(p));
  // First a manifest that lists both renders' files: whatever happens next,
  // everything in the folder is listed by a dockinit manifest.
  const first = stale.length > 0 ? { ...manifest, content: unionManifest(manifest, stale) } : manifest;
  writeAtomically(dir, first);
  for (const e of files) writeAtomically(dir, e);
  for (const p of stale) removeListed(dir, p);
  if (first !== manifest) writeAtomically(dir, manifest);
}

/** The new manifest with the old render's remaining files added to its list (as "files/<host path>"). */
function unionManifest(manifest: BundleEntry, stale: string[]): string {
  const m = JSON.parse(String(manifest.content)) as Manifest;
  const extra = stale.filter((p) => p.startsWith("files/")).map((p) => ({ path: p.slice("files".length), mode: "0644", owner: "root:root", origin: "dockinit" as const, bytes: 0, sha256: "" }));
  return `${JSON.stringify({ ...m, files: [...m.files, ...extra] }, null, 2)}\n`;
}

/** Write one file under a temporary name beside it, then rename it over the old one. */
function writeAtomically(dir: string, e: BundleEntry): void {
  const file = join(dir, e.path);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, e.content, { mode: e.mode });
    // writeFileSync's mode applies only when it creates the file; a leftover tmp keeps its own.
    chmodSync(tmp, e.mode & ~process.umask());
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Remove a file the previous manifest listed (never following a symlink), then the folders it leaves empty. */
function removeListed(dir: string, rel: string): void {
  const file = join(dir, rel);
  try {
    if (!lstatSync(file).isDirectory()) unlinkSync(file);
  } catch {
    // Gone already: nothing to remove.
  }
  for (let d = dirname(rel); d !== "."; d = dirname(d)) {
    try {
      rmdirSync(join(dir, d));
    } catch {
      return; // not empty (the new render's files, or something else): left in place
    }
  }
}

/** outDir itself, or the folder a symlink at outDir names (followed to the end: a chain of links). */
function realTarget(path: string): string {
  try {
    if (lstatSync(path).isSymbolicLink()) return realpathSync(path);
  } catch {
    // A dangling link or a loop: judged below as what lstat sees (not a folder).
  }
  return path;
}

type FolderState = { kind: "absent" } | { kind: "not-a-folder" } | { kind: "folder"; listed: string[]; foreign: string[] };

/**
 * What is at `dir`, judged against the dockinit manifest.json in it: absent,
 * not a folder, or a folder with the files that manifest lists (relative
 * paths, those present) and every entry it does not account for. Without a
 * dockinit manifest every top-level entry is foreign, and nothing below them
 * is read (a home folder is not walked).
 */
function folderState(dir: string): FolderState {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { kind: "absent" };
    throw err;
  }
  if (!st.isDirectory()) return { kind: "not-a-folder" };
  const top = readdirSync(dir, { withFileTypes: true });
  const listed = listedByManifest(dir);
  if (listed === undefined) return { kind: "folder", listed: [], foreign: top.map((d) => (d.isDirectory() ? `${d.name}/` : d.name)).sort() };
  const allowed = withFolders(listed);
  const present = listEntries(dir, allowed);
  // Name the outermost foreign entries only: "files/x/" rather than each file below it.
  const foreign = present.filter((p) => !allowed.has(p)).sort();
  return { kind: "folder", listed: listed.filter((f) => present.includes(f)), foreign };
}

/** The relative paths a dockinit manifest.json in dir lists (itself, user-data, files/…), or undefined when it is not one. */
function listedByManifest(dir: string): string[] | undefined {
  try {
    const file = join(dir, MANIFEST);
    if (!lstatSync(file).isFile()) return undefined;
    const m = JSON.parse(readFileSync(file, "utf8")) as Partial<Manifest>;
    if (typeof m.generator !== "string" || !/^dockinit /.test(m.generator) || !Array.isArray(m.files) || m.files.length > MAX_ENTRIES) return undefined;
    const paths = [MANIFEST, "user-data"];
    for (const f of m.files) {
      // A path that climbs out ("..") or is not a plain absolute path is not one dockinit wrote.
      if (typeof f?.path !== "string" || !f.path.startsWith("/") || f.path.split("/").some((s) => s === ".." || s === ".")) return undefined;
      paths.push(join("files", f.path));
    }
    return paths;
  } catch {
    return undefined;
  }
}

/** The files ("a/b") and the folders they sit in ("a/"), as listEntries names them. */
function withFolders(files: string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) {
    out.add(f);
    for (let d = dirname(f); d !== "."; d = dirname(d)) out.add(`${d}/`);
  }
  return out;
}

/**
 * Every entry under dir ("a/b" files and links, "a/" folders), without
 * following links: a folder the manifest does not account for is named and
 * not entered, and the walk stops past MAX_ENTRIES (an explicit stack, so a
 * deep tree cannot overflow the call stack).
 */
function listEntries(dir: string, allowed: Set<string>): string[] {
  const out: string[] = [];
  const pending = [""];
  while (pending.length > 0 && out.length <= MAX_ENTRIES) {
    const prefix = pending.pop()!;
    for (const d of readdirSync(join(dir, prefix), { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${d.name}` : d.name;
      if (d.isDirectory()) {
        out.push(`${rel}/`);
        if (allowed.has(`${rel}/`)) pending.push(rel);
      } else out.push(rel);
      if (out.length > MAX_ENTRIES) break;
    }
  }
  return out;
}

/**
 * True when dir holds the entries and nothing else: the same files with the
 * same bytes and permission bits, and no other file or directory. (Directory
 * modes are not compared.) Only reads; any surprise (a symlink, an unreadable
 * file) answers false and the files are rewritten.
 */
function holdsExactly(dir: string, entries: BundleEntry[]): boolean {
  try {
    const wanted = withFolders(entries.map((e) => e.path));
    const present = listEntries(dir, wanted);
    if (present.length !== wanted.size || !present.every((p) => wanted.has(p))) return false;
    // The mode writeFileSync gave each file: the entry's, less the umask.
    const umask = process.umask();
    return entries.every((e) => {
      const file = join(dir, e.path);
      const st = lstatSync(file);
      if (!st.isFile() || (st.mode & 0o777) !== (e.mode & ~umask)) return false;
      return readFileSync(file).equals(typeof e.content === "string" ? Buffer.from(e.content, "utf8") : e.content);
    });
  } catch {
    return false;
  }
}
