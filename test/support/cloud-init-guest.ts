// Guests that boot the cloud-init our users boot, not Debian's: upstream
// cloud-init 22.2.2 (Amazon Linux 2023's version) and 26.2 (the newest),
// from ../shared/cloud-init's source archives, each with a Docker engine
// built from moby's source (../shared/engines) started by moby's own systemd
// units (docker.socket, `-H fd://`, Restart=always, StartLimitBurst=3): Docker
// CE's layout, not Debian's docker.io unit.
//
// Each image is derived from the cached bookworm root filesystem (guest.ts
// ensureRootfs) in a chroot, once per recipe, and cached beside it under a key
// of everything that goes in: the bookworm root's key, this file's recipe
// text, the cloud-init archive's sha256, the engine archive's and the unit
// files' contents. The build needs the Debian mirror (apt in the chroot); the
// guests booted from it need nothing outside.
//
// The 22.2.2 image has no nft and no ipset, as on Amazon Linux 2023: the
// guest installs them at boot through dockinit-boot's apt-get, from a local
// package source — apt's lists and its archive of the .debs, fetched when the
// image was built (`apt-get install --download-only`), so the guest, which has
// no network, installs what a dnf on AL2023 would fetch. The 26.2 image has
// them preinstalled, as Ubuntu's images have nftables.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { copyFile, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CLOUD_INIT_GUESTS, ensureMobyEngine, ENGINE_ARCHIVES, MOBY_ENGINES, mobyNeedsItsRunc, type CloudInitGuest } from "../system/lib/engine.js";
import { describeFailure, run, tail } from "../system/lib/exec.js";
import { unmountUnder } from "../system/lib/mounts.js";
import { REPO } from "./fixtures.js";
import { ensureRootfs, ROOTFS_CACHE, type Rootfs } from "./guest.js";

/** ../shared/cloud-init: the upstream archives and their SHA256SUMS. */
export const CLOUD_INIT_ARCHIVES = join(REPO, "..", "shared", "cloud-init");
/** ../shared/engines/units: moby's docker.service and docker.socket per tag. */
const MOBY_UNITS = join(ENGINE_ARCHIVES, "units");

/**
 * Run in the chroot of the copied bookworm root (as root, with the mirror
 * reachable). $1 cloud-init version, $2 "1" when nft/ipset stay in the image.
 * The engine's binaries and the units are already in place under
 * /tmp/di-build, the source unpacked in /usr/src/cloud-init.
 */
const BUILD_SCRIPT = String.raw`set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
version=$1 tools=$2
apt-get update -q
# cloud-init's own dependencies (its README's list: debootstrap's minbase has
# most of them as Debian's cloud-init's), marked manual so purging Debian's
# cloud-init keeps them.
deps="python3 python3-yaml python3-jinja2 python3-jsonschema python3-requests python3-configobj python3-jsonpatch python3-netifaces python3-oauthlib python3-setuptools python3-cffi-backend procps locales lsb-release"
case $version in
  26.*) deps="$deps meson ninja-build pkg-config udev bash-completion netcat-openbsd openssh-client" ;;
esac
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $deps
apt-get purge -y -q cloud-init
rm -rf /etc/cloud /var/lib/cloud /usr/lib/python3/dist-packages/cloudinit
# 22.2.2 runs locale-gen for en_US.UTF-8, which Debian's locale-gen ignores unless listed.
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen
locale-gen >/dev/null
cd /usr/src/cloud-init
case $version in
  22.*)
    # No option before the command: setup.py renders its templates (the
    # units, cloud.cfg) only when argv[1] is "install".
    python3 setup.py build >/dev/null
    # --install-layout=deb: the units call /usr/bin/cloud-init.
    python3 setup.py install --init-system=systemd --prefix=/usr --install-layout=deb --root=/ >/dev/null
    systemctl enable cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service
    # Upstream's cloud.cfg is Ubuntu's: keep Debian's sources.list.
    printf 'apt: {preserve_sources_list: true}\n' >/etc/cloud/cloud.cfg.d/90-dockinit-guest.cfg
    ;;
  26.*)
    meson setup build --prefix=/usr -Dinit_system=systemd -Dlibexecdir=lib >/dev/null
    meson compile -C build >/dev/null
    meson install -C build >/dev/null
    systemctl enable cloud-init-main.service cloud-init-local.service cloud-init-network.service cloud-config.service cloud-final.service
    ;;
esac
cd /
rm -rf /usr/src/cloud-init
test "$(cloud-init --version 2>&1 | awk '{print $NF}')" = "$version"

# Docker: moby's dockerd and docker-proxy (and runc for 29) over Debian's,
# moby's units over Debian's; containerd and the CLI stay Debian's.
rm -f /usr/sbin/dockerd /usr/sbin/docker-proxy
install -m 0755 /tmp/di-build/dockerd /tmp/di-build/docker-proxy /usr/bin/
if [ -e /tmp/di-build/runc ]; then install -m 0755 /tmp/di-build/runc /usr/sbin/runc; fi
install -m 0644 /tmp/di-build/docker.service /tmp/di-build/docker.socket /lib/systemd/system/
rm -rf /etc/systemd/system/docker.service.d /etc/default/docker
systemctl enable containerd.service docker.service docker.socket

if [ "$tools" = 1 ]; then
  apt-get install -y -q --no-install-recommends nftables ipset
else
  apt-get purge -y -q nftables ipset
  apt-get autoremove -y -q
  # The local package source: the lists stay, the .debs stay in apt's archive.
  apt-get install -y -q --no-install-recommends --download-only nftables ipset
  ls /var/cache/apt/archives/nftables_*.deb /var/cache/apt/archives/ipset_*.deb >/dev/null
  if command -v nft || command -v ipset; then echo "nft or ipset still installed" >&2; exit 1; fi
fi
`;

/**
 * The cached image of `name`, built on first use from the bookworm root: a
 * copy, the recipe in a chroot (its own mount namespace, /proc and /dev
 * mounted there), then one rename into place, as ensureRootfs does.
 */
export async function ensureCloudInitRootfs(name: CloudInitGuest, opts: { timeoutMs?: number } = {}): Promise<Rootfs> {
  const started = Date.now();
  const image = CLOUD_INIT_GUESTS[name];
  const docker = MOBY_ENGINES[image.engine].version;
  const base = await ensureRootfs({ suite: "bookworm", timeoutMs: opts.timeoutMs });
  const archive = join(CLOUD_INIT_ARCHIVES, `cloud-init-${image.cloudInit}.tar.xz`);
  if (!existsSync(archive)) throw new Error(`${archive} is missing: ../shared/cloud-init must lie beside the clone`);
  const engine = await ensureMobyEngine(docker);
  const units = join(MOBY_UNITS, image.units);
  const engineFiles = ["dockerd", "docker-proxy", ...(mobyNeedsItsRunc(image.engine) ? ["runc"] : [])];
  const key = createHash("sha256")
    .update(`${base.key}\n${name}\n${JSON.stringify(image)}\n${BUILD_SCRIPT}\n`)
    .update(readFileSync(archive))
    .update(readFileSync(join(engine, "SHA256SUMS")))
    .update(readFileSync(join(units, "docker.service")))
    .update(readFileSync(join(units, "docker.socket")))
    .digest("hex")
    .slice(0, 16);
  const final = join(ROOTFS_CACHE, `${name}-${key}`);
  const root = join(final, "root");
  if (existsSync(join(final, "info.json"))) return { suite: "bookworm", root, key, built: false, durationMs: Date.now() - started };

  const build = join(ROOTFS_CACHE, `.build-${key}-${process.pid}-${randomBytes(3).toString("hex")}`);
  const broot = join(build, "root");
  const log = join(build, "build.log");
  try {
    await mkdir(build, { recursive: true });
    await run("cp", ["-a", "--reflink=auto", base.root, broot], { timeoutMs: 300_000, check: true });
    const stage = join(broot, "tmp", "di-build");
    await mkdir(stage, { recursive: true });
    // Unpacked here (the minimal root has no xz).
    await mkdir(join(broot, "usr", "src", "cloud-init"), { recursive: true });
    await run("tar", ["-C", join(broot, "usr", "src", "cloud-init"), "--strip-components=1", "-xJf", archive], { timeoutMs: 120_000, check: true });
    for (const f of engineFiles) await copyFile(join(engine, f), join(stage, f));
    for (const f of ["docker.service", "docker.socket"]) await copyFile(join(units, f), join(stage, f));
    // apt in the chroot resolves the mirror with this machine's resolver; the guest's own file comes back after.
    const resolv = join(broot, "etc", "resolv.conf");
    const guestResolv = existsSync(resolv) ? readFileSync(resolv) : undefined;
    await rm(resolv, { force: true });
    await copyFile("/etc/resolv.conf", resolv);
    await writeFile(join(stage, "build.sh"), BUILD_SCRIPT);
    const r = await run(
      "unshare",
      ["-m", "--propagation", "private", "sh", "-c", 'set -e; mount -t proc proc "$1/proc"; mount --rbind /dev "$1/dev"; exec chroot "$1" /bin/sh /tmp/di-build/build.sh "$2" "$3"', "sh", broot, image.cloudInit, image.firewallTools ? "1" : "0"],
      { timeoutMs: opts.timeoutMs ?? 600_000 },
    );
    await writeFile(log, `${r.stdout}\n${r.stderr}`);
    if (r.code !== 0 || r.timedOut) throw new Error(`building the ${name} guest image failed:\n${describeFailure(r)}\n${tail(r.stderr, 40)}`);
    await rm(resolv, { force: true });
    if (guestResolv) await writeFile(resolv, guestResolv);
    await rm(stage, { recursive: true, force: true });
    const info = { name, image, base: base.key, builtAt: new Date().toISOString(), buildMs: Date.now() - started };
    await writeFile(join(build, "info.json"), `${JSON.stringify(info, null, 2)}\n`);
    try {
      await rename(build, final);
    } catch (err) {
      if (!existsSync(join(final, "info.json"))) throw err;
    }
    return { suite: "bookworm", root, key, built: true, durationMs: Date.now() - started };
  } finally {
    if (existsSync(build)) {
      const stuck = await unmountUnder(build);
      if (stuck.length === 0) await rm(build, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
    }
  }
}
