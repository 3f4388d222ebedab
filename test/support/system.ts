// Gatekeeping for tests that need root or a system tool. Locally such a test
// reports a skip with the reason; in CI (DOCKINIT_REQUIRE_SYSTEM_TESTS=1) a
// missing prerequisite is a failure, so a green CI always means "it ran".
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export const systemTestsRequired = process.env.DOCKINIT_REQUIRE_SYSTEM_TESTS === "1";

function hasCommand(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", 'command -v "$1"', "sh", cmd], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the reason the prerequisites are missing, or undefined when they are
 * all present. `needs` lists commands; "root" asks for uid 0.
 */
export function missingPrerequisite(needs: string[]): string | undefined {
  for (const need of needs) {
    if (need === "root") {
      if (process.getuid?.() !== 0) return "needs root";
    } else if (!hasCommand(need)) {
      return `needs ${need} on PATH`;
    }
  }
  return undefined;
}

/**
 * For `describe.skipIf(skipReason(...))`: undefined/"" when the tests can run.
 * Throws when prerequisites are missing but CI demands system tests.
 */
export function skipUnless(needs: string[]): string | false {
  const missing = missingPrerequisite(needs);
  if (!missing) return false;
  if (systemTestsRequired) {
    throw new Error(`DOCKINIT_REQUIRE_SYSTEM_TESTS=1 but this test ${missing}`);
  }
  console.warn(`skipping: ${missing}`);
  return missing;
}

/**
 * Whether ../shared/examples (the examples every release must render) is laid
 * beside the clone. Locally a missing folder is a reported skip; in CI it is a
 * failure: a suite that vanishes must not pass.
 */
export function sharedExamplesPresent(dir: string): boolean {
  if (existsSync(dir)) return true;
  if (systemTestsRequired || process.env.CI) throw new Error(`${dir} is missing: the shared examples must lie beside the clone (CI lays them there)`);
  console.warn(`skipping: ${dir} is missing`);
  return false;
}

/** A data-driven test's rows, refusing an empty list (an it.each over nothing passes silently). */
export function nonEmpty<T>(rows: T[], what: string): T[] {
  if (rows.length === 0) throw new Error(`no ${what}: the table this test runs over is empty`);
  return rows;
}
