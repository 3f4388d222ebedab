// The verdict table of docs/firewall.md ("Firewall policies: closed on every
// path"), as data: its rows, its columns and what each cell says. One table
// for both of its readers: closed-paths.test.ts asserts each cell's verdict
// with packets, by the cell's kind, and test/unit/system-tests-lint.test.ts
// checks that the table in docs/firewall.md says exactly these words. Pure
// data: the unit project imports it.

/** The paths a connection to a published port can take (columns). */
export const PATHS = [
  { id: "v4dnat", header: "IPv4 DNAT (`FORWARD`)" },
  { id: "v6proxy", header: "IPv6 via docker-proxy (`INPUT`)" },
  { id: "v6dnat", header: "IPv6 DNAT (dual-stack container)" },
  { id: "direct", header: "straight to a container address" },
] as const;

/** Where the connection comes from (rows). */
export const SOURCES = [
  { id: "listed", label: "a listed network (its own family)" },
  { id: "outside", label: "any other outside address" },
  { id: "container", label: "another container on this host" },
  { id: "host", label: "the host itself" },
] as const;

export type PathId = (typeof PATHS)[number]["id"];
export type SourceId = (typeof SOURCES)[number]["id"];

/**
 * What a cell can say, and what its test asserts:
 * - pass: every probe of the cell gets through, by the path it names (the
 *   address the server saw);
 * - drop: every probe is dropped, and the same probes with dockinit's rules
 *   removed get through (the control);
 * - by-address: a probe from an address the port lists gets through, one from
 *   an address it does not list is dropped (with the same control); Docker
 *   hands a container's connection to the host's published port to
 *   docker-proxy, whatever the family (its nat rules return traffic that
 *   comes from its own bridges), so the server sees the container's gateway;
 * - docker: every probe gets the same verdict with dockinit's rules as
 *   without them.
 */
export type CellVerdict = "pass" | "drop" | "by-address" | "docker";

/** The words docs/firewall.md's table shows for each kind of cell. */
export const WORDS: Record<CellVerdict, string> = {
  pass: "pass",
  drop: "drop",
  "by-address": "by its address, through docker-proxy",
  docker: "Docker's own rules",
};

/** The corner cell of the table's header row. */
export const CORNER = "source ↓ · path →";

/**
 * Every cell, for the policies closed-paths.test.ts loads (lib/policy-config.ts:
 * `published.default: deny`, ports with allow-lists, `any` and `loopback`).
 * The `direct` column holds under `published.default: allow` too once any
 * published-port rule exists (closed-paths.test.ts's second describe); the
 * host is told by `lo`, never by a source address a container can spoof.
 */
export const VERDICTS: Record<SourceId, Record<PathId, CellVerdict>> = {
  listed: { v4dnat: "pass", v6proxy: "pass", v6dnat: "pass", direct: "drop" },
  outside: { v4dnat: "drop", v6proxy: "drop", v6dnat: "drop", direct: "drop" },
  container: { v4dnat: "by-address", v6proxy: "by-address", v6dnat: "by-address", direct: "docker" },
  host: { v4dnat: "pass", v6proxy: "pass", v6dnat: "pass", direct: "pass" },
};

/** The table as Markdown rows: header, separator, one row per source. */
export function verdictTableRows(): string[][] {
  return [
    [CORNER, ...PATHS.map((p) => p.header)],
    ...SOURCES.map((s) => [s.label, ...PATHS.map((p) => WORDS[VERDICTS[s.id][p.id]])]),
  ];
}
