// Mounts under a directory: what must be unmounted (a chroot's /proc, a
// guest's bind mounts, dockerd's overlays) before a test deletes the tree.
import { readFileSync } from "node:fs";
import { run } from "./exec.js";

/** Mount points at or below `dir` in our mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount everything under `dir` (lazily when busy); returns what is still mounted. */
export async function unmountUnder(dir: string): Promise<string[]> {
  for (let round = 0; round < 3; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return [];
    for (const p of points) {
      const r = await run("umount", [p], { timeoutMs: 10_000 });
      if (r.code !== 0) await run("umount", ["-l", p], { timeoutMs: 10_000 });
    }
  }
  return mountsUnder(dir);
}
