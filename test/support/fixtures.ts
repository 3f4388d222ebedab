// Golden fixtures: every directory under test/fixtures/ with a dockinit.yaml.
import { readdirSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const FIXTURES = join(REPO, "test", "fixtures");
export const SHARED_EXAMPLES = resolve(REPO, "..", "shared", "examples");

export function fixtureCases(): string[] {
  return readdirSync(FIXTURES)
    .filter((d) => existsSync(join(FIXTURES, d, "dockinit.yaml")))
    .sort();
}
