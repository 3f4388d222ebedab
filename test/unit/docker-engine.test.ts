// The firewall script's docker_engine (the "docker:" line of `status` and the
// warnings after `apply`): one `docker info` call when a daemon can answer,
// none when none can. Run in bash against a fake docker CLI; no root needed.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfigString, renderFirewallScript } from "../../src/index.js";

const work = mkdtempSync(join(tmpdir(), "dockinit-engine-"));
// A listening socket where the script looks for Docker's (DOCKINIT_DOCKER_SOCKET).
const socket = join(work, "docker.sock");
let server: Server;
beforeAll(() => new Promise<void>((done) => (server = createServer().listen(socket, done))));
afterAll(() => {
  server?.close();
  rmSync(work, { recursive: true, force: true });
});

// The script's functions without its `main "$@"`.
const { model } = loadConfigString("version: 1\nname: engine\n");
const functions = renderFirewallScript(model!).content.replace(/^main "\$@"$/m, "");
writeFileSync(join(work, "functions.sh"), functions);

// A docker CLI that logs each call and answers `info` as Docker 28.5 does.
const bin = join(work, "bin");
mkdirSync(bin);
writeFileSync(
  join(bin, "docker"),
  `#!/bin/sh\necho "$*" >> "${join(work, "docker-calls")}"\n[ "$1" = info ] && printf '%s\\n' '{"ID":"x","ServerVersion":"28.5.1","FirewallBackend":{"Driver":"iptables","Info":[["ReloadedAt","now"]]},"Name":"h"}'\n`,
);
// No nft tables to find (and never the host's).
writeFileSync(join(bin, "nft"), "#!/bin/sh\nexit 1\n");
for (const f of ["docker", "nft"]) chmodSync(join(bin, f), 0o755);

function dockerEngine(env: Record<string, string>, home: string) {
  rmSync(join(work, "docker-calls"), { force: true });
  const r = spawnSync("bash", ["-c", `source ${join(work, "functions.sh")}; docker_engine`], {
    encoding: "utf8",
    // DOCKINIT_PATH: the script sets its own PATH, with this hook for tests.
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      DOCKINIT_PATH: `${bin}:/usr/bin:/bin`,
      HOME: home,
      DOCKINIT_DAEMON_JSON: join(work, "no-daemon.json"),
      DOCKINIT_DOCKER_SOCKET: join(work, "no-docker.sock"),
      ...env,
    },
  });
  const calls = existsSync(join(work, "docker-calls")) ? readFileSync(join(work, "docker-calls"), "utf8").trim().split("\n") : [];
  return { out: r.stdout.trim(), calls, stderr: r.stderr };
}

const homeWithContext = join(work, "home-context");
mkdirSync(join(homeWithContext, ".docker"), { recursive: true });
writeFileSync(join(homeWithContext, ".docker", "config.json"), '{"currentContext":"remote"}');
const emptyHome = join(work, "home-empty");
mkdirSync(emptyHome);

describe("docker_engine asks Docker once, and only when a daemon can answer", () => {
  it.each([
    ["no socket, no DOCKER_HOST, no context: docker is not run", {}, emptyHome, "unknown unknown", 0],
    ["a socket at Docker's path", { DOCKINIT_DOCKER_SOCKET: socket }, emptyHome, "28.5.1 iptables", 1],
    ["DOCKER_HOST set", { DOCKER_HOST: "unix:///tmp/elsewhere.sock" }, emptyHome, "28.5.1 iptables", 1],
    ["DOCKER_CONTEXT set", { DOCKER_CONTEXT: "remote" }, emptyHome, "28.5.1 iptables", 1],
    ["a current context in ~/.docker/config.json", {}, homeWithContext, "28.5.1 iptables", 1],
  ] as const)("%s", (_name, env, home, expected, calls) => {
    const r = dockerEngine(env, home);
    expect(r.out, r.stderr).toBe(expected);
    expect(r.calls).toHaveLength(calls);
    if (calls > 0) expect(r.calls[0]).toBe("info --format {{json .}}");
  });
});
