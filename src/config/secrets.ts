// Secrets do not belong in user-data: every process on the instance can read
// it from the metadata service (IMDS has no per-process access control), and
// so can anyone allowed ec2:DescribeLaunchTemplateVersions. dockinit renders
// the file anyway (a false positive must not block a deploy) but warns, DI060,
// naming what the value looks like and never the value itself.
import { diagnostic, type Diagnostic } from "./errors.js";

type Path = (string | number)[];

/** What a secret looks like: the well-known formats first, then key = value. */
export const SECRET_PATTERNS: [kind: string, re: RegExp][] = [
  ["an AWS access key ID", /\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}\b/],
  ["an AWS secret access key", /(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret)\W{0,5}[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/i],
  ["a private key", /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----/],
  ["a GitHub token", /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/],
  ["a GitLab token", /\bglpat-[A-Za-z0-9_-]{20,}/],
  ["a Slack token", /\bxox[abposr]-[A-Za-z0-9-]{10,}/],
  ["a Google API key", /\bAIza[0-9A-Za-z_-]{35}/],
  ["a Stripe secret key", /\b[rs]k_live_[0-9A-Za-z]{16,}/],
  ["a JSON Web Token", /\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/],
  // password=..., "token": "...", api_key: ... with a literal value ($VAR and ${VAR} are references, fine).
  ["a password or token", /(?<![A-Za-z])(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|auth[_-]?token)["']?\s*[=:]\s*["']?(?![$<{])[^\s"',;]{8,}/i],
];

/** Mapping keys whose (string) value is a secret by name, e.g. docker settings { "registry-password": ... }. */
const SECRET_KEY = /(?:^|[_.-])(?:password|passwd|secret|token|api[_-]?key|private[_-]?key|auth)$/i;

/**
 * No pattern matches fewer characters: the shortest is "token=" and 8 more
 * (then "xoxb-" and 10). Most strings in a config (keys, ports, names) are
 * shorter and skip ten regular expressions, ~1 ms of every cold `check`.
 */
export const SHORTEST_SECRET = 14;

/** What `text` looks like, or undefined when it looks like no secret. */
export function secretKind(text: string): string | undefined {
  if (text.length < SHORTEST_SECRET) return undefined;
  for (const [kind, re] of SECRET_PATTERNS) if (re.test(text)) return kind;
  return undefined;
}

/** One DI060 warning per value (or key) in the configuration that looks like a secret. */
export function findSecrets(value: unknown, path: Path = []): Diagnostic[] {
  const out: Diagnostic[] = [];
  const visit = (v: unknown, at: Path, key?: string) => {
    if (typeof v === "string") {
      const kind = secretKind(v) ?? (key !== undefined && SECRET_KEY.test(key) && v.length >= 8 && !/^[$<{]/.test(v) ? `a secret (its key is "${key}")` : undefined);
      if (kind) out.push(diagnostic("DI060", `this value looks like ${kind}; user-data is readable from the instance metadata service`, at));
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => visit(item, [...at, i]));
    } else if (v !== null && typeof v === "object") {
      for (const [k, item] of Object.entries(v)) {
        const kind = secretKind(k);
        if (kind) out.push(diagnostic("DI060", `this key looks like ${kind}; user-data is readable from the instance metadata service`, [...at, k]));
        visit(item, [...at, k], k);
      }
    }
  };
  visit(value, path);
  return out;
}

/** DI060 for a file the config refers to (`source:`, part `file:`), reported at the reference. */
export function findSecretsInFile(name: string, content: string, path: Path): Diagnostic[] {
  const kind = secretKind(content);
  return kind ? [diagnostic("DI060", `${name} contains what looks like ${kind}; user-data is readable from the instance metadata service`, path)] : [];
}
