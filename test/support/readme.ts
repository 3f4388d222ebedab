// The README's fenced code blocks, so tests can run every example in it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./fixtures.js";

export interface CodeBlock {
  lang: string;
  code: string;
  /** The nearest heading above the block. */
  section: string;
}

export function readmeBlocks(): CodeBlock[] {
  const text = readFileSync(join(REPO, "README.md"), "utf8");
  const blocks: CodeBlock[] = [];
  let section = "";
  const re = /^(#{1,4}) (.+)$|^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1]) section = m[2]!;
    else blocks.push({ lang: m[3] ?? "", code: m[4] ?? "", section });
  }
  return blocks;
}

/** Command lines of a shell block, comments stripped. */
export function commandLines(block: CodeBlock): string[] {
  return block.code
    .split("\n")
    .map((l) => l.replace(/\s+#\s.*$/, "").trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}
