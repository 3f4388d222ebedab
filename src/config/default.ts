// The built-in configuration `render` uses when there is no dockinit.yaml:
// the seed scenario of the background notes — VPC DNS for containers and the
// ephemeral-port rewrite for a network ACL that admits only 49152-65535.
export const DEFAULT_CONFIG_NAME = "<built-in default>";

export const DEFAULT_CONFIG = `# dockinit.yaml — see https://github.com/dockinit/dockinit#configuration
version: 1
name: dockinit
docker:
  daemon:
    dns: [vpc]
ephemeral_ports:
  enabled: true
  match: 32768-61000
  to: 49152-61000
`;

export const STARTER_CONFIG = `# dockinit.yaml — the EC2 user-data of a correctly networked Docker host.
# Validate with \`dockinit check\`, render with \`dockinit render\` (writes out/).
# yaml-language-server: $schema=./dockinit.schema.json
version: 1
name: my-docker-host            # lower-case letters, digits, '-'

docker:
  install: false                # true: install Docker from distro packages when missing
  daemon:
    dns: [vpc]                  # vpc (VPC CIDR base + 2, found at boot) | amazon | IP literals; at most 3
    dns_search: []
    settings: {}                # other daemon.json keys, passed through verbatim

# Containers' source ports 32768-61000 are rewritten into the range a network
# ACL lets back in, so apt-get/pip/npm inside docker build stop hanging.
ephemeral_ports:
  enabled: true
  match: 32768-61000
  to: 49152-61000
  protocols: [tcp]              # tcp, udp
  sources: [any]                # or CIDRs of container networks
  host_range: false             # also narrow the host's own ip_local_port_range

firewall:
  backend: auto                 # auto (nftables) | nftables | iptables
  external_interface: auto      # auto = every interface but lo, Docker bridges, veths; or [ens5, ...]
`;
