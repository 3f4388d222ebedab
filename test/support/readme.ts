// The fenced code blocks of the documentation (README.md, then docs/*.md),
// so tests can run every example in it.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./fixtures.js";

export interface CodeBlock {
  lang: string;
  code: string;
  /** The nearest heading above the block. */
  section: string;
  /** The file it is in, relative to the repository: README.md or docs/<name>.md. */
  file: string;
}

/** README.md first, then every docs/*.md by name. */
export function docFiles(): string[] {
  const docs = join(REPO, "docs");
  const pages = existsSync(docs) ? readdirSync(docs).filter((f) => f.endsWith(".md")).sort().map((f) => `docs/${f}`) : [];
  return ["README.md", ...pages];
}

/** The text of a documentation file (relative to the repository). */
export function docText(file: string): string {
  return readFileSync(join(REPO, file), "utf8");
}

/**
 * The text under a heading, up to the next heading of the same or a higher
 * level: e.g. section("README.md", "## Configuration reference").
 */
export function docSection(file: string, heading: string): string {
  const text = docText(file);
  const level = /^#+/.exec(heading)![0].length;
  const start = text.split("\n").indexOf(heading);
  if (start < 0) throw new Error(`${file} has no heading ${JSON.stringify(heading)}`);
  const lines = text.split("\n").slice(start + 1);
  const end = lines.findIndex((l) => /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
  return (end < 0 ? lines : lines.slice(0, end)).join("\n");
}

/** Every fenced block of README.md, then of docs/*.md (what readmeBlocks returns). */
export function readmeBlocks(): CodeBlock[] {
  return docFiles().flatMap(blocksOf);
}

function blocksOf(file: string): CodeBlock[] {
  const text = docText(file);
  const blocks: CodeBlock[] = [];
  let section = "";
  const re = /^(#{1,4}) (.+)$|^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1]) section = m[2]!;
    else blocks.push({ lang: m[3] ?? "", code: m[4] ?? "", section, file });
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
