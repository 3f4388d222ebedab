// Gatekeeping for tests that need root or a system tool. Locally such a test
// reports a skip with the reason; in CI (DOCKINIT_REQUIRE_SYSTEM_TESTS=1) a
// missing prerequisite is a failure, so a green CI always means "it ran".
import { execFileSync } from "node:child_process";

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
