// Host paths of the files dockinit itself writes: the on-host layout, shared by
// the model and the renderers. User write_files entries may not claim them
// (DI044): two writers of one file means one silently loses.
export const HOST_PATHS = {
  daemonJson: "/etc/docker/daemon.json",
  firewallScript: "/usr/local/sbin/dockinit-firewall",
  firewallUnit: "/etc/systemd/system/dockinit-firewall.service",
  watchUnit: "/etc/systemd/system/dockinit-firewall-watch.service",
  vpcDnsScript: "/usr/local/sbin/dockinit-vpc-dns",
  vpcDnsUnit: "/etc/systemd/system/dockinit-vpc-dns.service",
  bootScript: "/usr/local/sbin/dockinit-boot",
  proxyScript: "/usr/local/sbin/dockinit-proxy",
  dockerDropIn: "/etc/systemd/system/docker.service.d/50-dockinit.conf",
  forwardingSysctl: "/etc/sysctl.d/99-zz-dockinit-forwarding.conf",
} as const;

export const RESERVED_PATHS: ReadonlySet<string> = new Set(Object.values(HOST_PATHS));
