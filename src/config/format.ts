// Diagnostics as text for people: file:line:col, code, message, the YAML
// path, the source line with a caret, and the hint. Pure; the CLI prints it.
import { formatPath, type Diagnostic } from "./errors.js";

export interface FormatOptions {
  color: boolean;
}

export function formatDiagnostic(d: Diagnostic, source: string | undefined, opts: FormatOptions): string {
  const paint = (code: string, s: string) => (opts.color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const where = d.line > 0 ? `${d.file ?? "dockinit.yaml"}:${d.line}:${d.col}` : (d.file ?? "dockinit.yaml");
  const sev = d.severity === "error" ? paint("31;1", "error") : paint("33;1", "warning");
  const lines = [`${where}: ${sev} ${paint("1", d.code)}: ${d.message}`];
  if (d.path.length > 0) lines.push(`  at ${formatPath(d.path)}`);
  // A file that is not text (DI006) has no line worth showing: echoing it would
  // write its bytes, control sequences included, to the user's terminal.
  if (source !== undefined && d.line > 0 && d.code !== "DI006") {
    const text = source.split(/\r?\n/)[d.line - 1];
    if (text !== undefined) {
      const num = String(d.line);
      lines.push(`  ${num} | ${text}`);
      lines.push(`  ${" ".repeat(num.length)} | ${" ".repeat(Math.max(0, d.col - 1))}${paint("31;1", "^")}`);
    }
  }
  lines.push(`  hint: ${d.hint}`);
  return lines.join("\n");
}
