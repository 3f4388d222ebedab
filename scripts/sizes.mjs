// The user-data size table of BENCHMARKS.md: raw bytes (gzip: never) of each
// shared example and of the built-in default, and what each feature adds to
// a small config. Deterministic (no timing): `npm run bench` writes it, and
// test/unit/sizes.test.ts checks that BENCHMARKS.md holds this table.
// `node scripts/sizes.mjs --write` replaces the section alone.
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(fileURLToPath(new URL("..", import.meta.url)));
const EXAMPLES = resolve(REPO, "..", "shared", "examples");
export const BEGIN = "<!-- sizes:begin -->";
export const END = "<!-- sizes:end -->";

/**
 * Raw user-data bytes at a5bbcc7 (every script carried both backends; the
 * default backend was iptables): that commit's goldens, test/fixtures/<case>/
 * expected/user-data.decoded and out/user-data gunzipped.
 */
const BEFORE = { "built-in default": 47468, seed: 47452, "web-host": 50656, "build-runner": 49123, "kitchen-sink": 61221 };
const BUDGET = 16384;

export async function sizeSection() {
  const lib = await import(join(REPO, "dist", "index.js"));
  /** Raw bytes of a config's user-data with gzip: never, and the backend it got. */
  const raw = (yaml) => {
    const loaded = lib.loadConfigString(yaml, { files: lib.directoryReader(EXAMPLES) });
    if (!loaded.model) throw new Error(JSON.stringify(loaded.diagnostics));
    const never = { ...loaded, model: { ...loaded.model, userData: { ...loaded.model.userData, gzip: "never" } } };
    const r = lib.renderBundle(never);
    const over = r.diagnostics.find((d) => d.code === "DI047");
    const bytes = r.bundle ? r.bundle.userData.length : Number(/is (\d+) bytes/.exec(over?.message ?? "")?.[1]);
    if (!Number.isFinite(bytes)) throw new Error(JSON.stringify(r.diagnostics));
    return { bytes, backend: loaded.model.firewall.backend };
  };
  const n = (x) => x.toLocaleString("en-US");
  const rows = [["built-in default", raw(lib.loadDefaultConfig().source)]];
  for (const name of ["seed", "web-host", "build-runner", "kitchen-sink"]) rows.push([name, raw(readFileSync(join(EXAMPLES, `${name}.yaml`), "utf8"))]);
  const lines = [
    BEGIN,
    "## User-data size (raw bytes, `gzip: never`)",
    "",
    `EC2 takes ${n(BUDGET)} bytes; under it \`gzip: auto\` leaves the user-data readable. Before: a5bbcc7, whose one script carried both backends.`,
    "",
    "| config | backend | before | now | within 16,384 |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map(([name, r]) => `| ${name} | ${r.backend} | ${n(BEFORE[name])} | ${n(r.bytes)} | ${r.bytes <= BUDGET ? "yes" : "no"} |`),
    "",
    "What each feature adds to `dns: [amazon]` with the ephemeral-port fix (auto backend unless named):",
    "",
    "| feature | bytes added |",
    "| --- | --- |",
  ];
  const base = "version: 1\nname: size\ndocker: { daemon: { dns: [amazon] } }\n";
  const baseBytes = raw(base).bytes;
  const features = [
    ["`dns: [vpc]` (dockinit-vpc-dns and its unit)", base.replace("[amazon]", "[vpc]")],
    ["`egress_allow` (IPv4 network)", `${base}firewall: { containers: { egress_allow: [198.51.100.0/24] } }\n`],
    ["`egress_allow` (IPv4 and IPv6 networks)", `${base}firewall: { containers: { egress_allow: [198.51.100.0/24, 2001:db8:20::/48] } }\n`],
    ["a published port allowed from an IPv4 network", `${base}firewall: { published: { rules: [{ port: 8080, allow: [203.0.113.0/24] }] } }\n`],
    ["the same port allowed from an IPv6 network as well", `${base}firewall: { published: { rules: [{ port: 8080, allow: [203.0.113.0/24, 2001:db8:10::/48] }] } }\n`],
    ["`published.default: deny` (dockinit-proxy, docker-proxy's ports)", `${base}firewall: { published: { default: deny } }\n`],
    ["a port forward (its DNAT, masquerade and accepts, one of them for iptables' FORWARD)", `${base}port_forwards: [{ listen: 9000, to: '198.51.100.10:80' }]\n`],
    ["`backend: iptables` instead of auto's nftables", `${base}firewall: { backend: iptables }\n`],
  ];
  lines.push(`| (the small config itself) | ${n(baseBytes)} |`);
  for (const [label, yaml] of features) lines.push(`| ${label} | +${n(raw(yaml).bytes - baseBytes)} |`);
  lines.push(END);
  return lines.join("\n");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const section = await sizeSection();
  if (process.argv.includes("--write")) {
    const path = join(REPO, "BENCHMARKS.md");
    const text = readFileSync(path, "utf8");
    const i = text.indexOf(BEGIN);
    const j = text.indexOf(END);
    writeFileSync(path, i >= 0 && j > i ? `${text.slice(0, i)}${section}${text.slice(j + END.length)}` : `${text.trimEnd()}\n\n${section}\n`);
  }
  process.stdout.write(`${section}\n`);
}
