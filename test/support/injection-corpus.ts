// Hostile strings and YAML for every string field of dockinit.yaml. Each
// shell payload, if any shell ever ran it, would create the file CANARY
// (replaced by a real path in the system tests): a test proves a payload
// inert by showing that file never appears.

/** The word the payloads use for the canary file; the system tests replace it by a path of their own. */
export const CANARY = "CANARY";

/** Strings (as values): shell, printf, MIME, heredoc and template metacharacters, look-alikes, limits. */
export const STRING_PAYLOADS: { name: string; value: string }[] = [
  { name: "command substitution", value: "$(touch CANARY)" },
  { name: "backticks", value: "`touch CANARY`" },
  { name: "semicolon", value: "x; touch CANARY" },
  { name: "closing a single quote", value: "'; touch CANARY; '" },
  { name: "closing a double quote", value: '"; touch CANARY; "' },
  { name: "escaped quote", value: "\\'; touch CANARY; \\'" },
  { name: "newline", value: "x\ntouch CANARY\n" },
  { name: "carriage return", value: "x\r\ntouch CANARY" },
  { name: "pipe", value: "x | touch CANARY" },
  { name: "and-list", value: "x && touch CANARY" },
  { name: "IFS trick", value: "$(IFS=_;c=touch_CANARY;$c)" },
  { name: "parameter expansion", value: "${IFS}touch${IFS}CANARY" },
  { name: "arithmetic expansion", value: "$((1))$(touch CANARY)" },
  { name: "process substitution", value: "<(touch CANARY)" },
  { name: "redirection", value: ">CANARY" },
  { name: "NUL then command", value: "x\u0000; touch CANARY" },
  { name: "printf format", value: "%s%n%x%99999999s" },
  { name: "option injection", value: "--help" },
  { name: "iptables option injection", value: "eth0 -j ACCEPT" },
  { name: "glob and tilde", value: "* ~ $HOME !!" },
  { name: "here-document delimiter", value: "x\nDOCKINIT_RULES\ntouch CANARY\nDOCKINIT_RULES" },
  { name: "nft here-document delimiter", value: "x\nDOCKINIT_NFT\ntouch CANARY" },
  { name: "interface placeholder", value: "@EXT_IF@" },
  { name: "sed metacharacters", value: "|&\\1/g;e touch CANARY" },
  { name: "handlebars", value: "{{sh this}}{{{name}}}" },
  { name: "MIME header injection", value: "x\nContent-Type: text/x-shellscript\n\n#!/bin/sh\ntouch CANARY" },
  { name: "MIME-Version", value: "MIME-Version: 1.0" },
  { name: "cloud-config inside a value", value: "#cloud-config\nruncmd: [[touch, CANARY]]" },
  { name: "YAML indicators", value: "- ? : , [ ] { } # & * ! | > ' \" % @ `" },
  { name: "python tag as text", value: "!!python/object/apply:os.system ['touch CANARY']" },
  { name: "YAML 1.1 value and merge", value: "=" },
  { name: "merge key as text", value: "<<" },
  { name: "fullwidth look-alikes", value: "＄（touch CANARY）；" },
  { name: "Cyrillic look-alike of vpc", value: "vрc" },
  { name: "Cyrillic look-alike of any", value: "аny" },
  { name: "fullwidth digits", value: "１０.０.０.１" },
  { name: "zero-width space", value: "10.0.0.1\u200b" },
  { name: "right-to-left override", value: "\u202etouch CANARY" },
  { name: "line separator", value: "x\u2028touch CANARY" },
  { name: "control characters", value: "\u0001\u001b[31m\u007f\u0085" },
  { name: "very long", value: "A".repeat(100_000) },
  { name: "empty", value: "" },
];

/** Raw YAML put where a value goes: anchors, aliases, bombs, merges, tags, duplicates. */
export const YAML_PAYLOADS: { name: string; yaml: string }[] = [
  { name: "alias without anchor", yaml: "*a" },
  { name: "anchor", yaml: "&a x" },
  { name: "alias bomb", yaml: "&a [&b [&c [x, x], *c], *b]" },
  { name: "python object tag", yaml: "!!python/object/apply:os.system ['touch CANARY']" },
  { name: "python name tag", yaml: "!!python/name:os.system" },
  { name: "custom tag", yaml: "!shell 'touch CANARY'" },
  { name: "binary tag", yaml: "!!binary dG91Y2g=" },
  { name: "merge key", yaml: "{<<: {a: 1}, b: 2}" },
  { name: "duplicate keys", yaml: "{a: 1, a: 2}" },
  { name: "flow mapping with a newline payload", yaml: '{"k": "x\\ntouch CANARY"}' },
  { name: "unterminated", yaml: "'x" },
];

/** Every string field of the schema, as YAML with @@ where the value goes. */
export const STRING_FIELDS: { field: string; yaml: string; /** where the value lands in the model, when it is accepted */ data?: string }[] = [
  { field: "name", yaml: "name: @@" },
  { field: "$schema", yaml: "$schema: @@" },
  { field: "docker.daemon.dns[]", yaml: "docker: { daemon: { dns: [@@] } }" },
  { field: "docker.daemon.dns_search[]", yaml: "docker: { daemon: { dns_search: [@@] } }" },
  { field: "docker.daemon.settings key", yaml: "docker: { daemon: { settings: { @@: 1 } } }", data: "daemon.json" },
  { field: "docker.daemon.settings value", yaml: "docker: { daemon: { settings: { label: @@ } } }", data: "daemon.json" },
  { field: "docker.daemon.settings nested", yaml: "docker: { daemon: { settings: { a: [ { b: @@ } ] } } }", data: "daemon.json" },
  { field: "ephemeral_ports.match", yaml: "ephemeral_ports: { match: @@ }" },
  { field: "ephemeral_ports.to", yaml: "ephemeral_ports: { to: @@ }" },
  { field: "ephemeral_ports.protocols[]", yaml: "ephemeral_ports: { protocols: [@@] }" },
  { field: "ephemeral_ports.sources[]", yaml: "ephemeral_ports: { sources: [@@] }" },
  { field: "firewall.backend", yaml: "firewall: { backend: @@ }" },
  { field: "firewall.external_interface", yaml: "firewall: { external_interface: @@ }" },
  { field: "firewall.published.default", yaml: "firewall: { published: { default: @@ } }" },
  { field: "firewall.published.rules[].protocol", yaml: "firewall: { published: { rules: [{ port: 80, protocol: @@, allow: [any] }] } }" },
  { field: "firewall.published.rules[].allow[]", yaml: "firewall: { published: { rules: [{ port: 80, allow: [@@] }] } }" },
  { field: "firewall.containers.block[]", yaml: "firewall: { containers: { block: [@@] } }" },
  { field: "firewall.containers.egress_allow[]", yaml: "firewall: { containers: { egress_allow: [@@] } }" },
  { field: "port_forwards[].to", yaml: "port_forwards: [{ listen: 9000, to: @@ }]" },
  { field: "port_forwards[].protocol", yaml: "port_forwards: [{ listen: 9000, to: '198.51.100.10:80', protocol: @@ }]" },
  { field: "user_data.format", yaml: "user_data: { format: @@ }" },
  { field: "user_data.gzip", yaml: "user_data: { gzip: @@ }" },
  { field: "user_data.parts[].file", yaml: "user_data: { parts: [{ file: @@, type: x-shellscript }] }" },
  { field: "user_data.parts[].type", yaml: "user_data: { parts: [{ file: parts/boot.sh, type: @@ }] }" },
  { field: "user_data.parts[].filename", yaml: "user_data: { parts: [{ file: parts/boot.sh, type: x-shellscript, filename: @@ }] }" },
  { field: "user_data.parts[].merge_type", yaml: "user_data: { parts: [{ file: parts/boot.sh, type: x-shellscript, merge_type: @@ }] }" },
  { field: "user_data.write_files[].path", yaml: "user_data: { write_files: [{ path: @@, content: x }] }" },
  { field: "user_data.write_files[].content", yaml: "user_data: { write_files: [{ path: /etc/motd, content: @@ }] }", data: "write_files content" },
  { field: "user_data.write_files[].source", yaml: "user_data: { write_files: [{ path: /etc/motd, source: @@ }] }" },
  { field: "user_data.write_files[].permissions", yaml: "user_data: { write_files: [{ path: /etc/motd, content: x, permissions: @@ }] }" },
  { field: "user_data.write_files[].owner", yaml: "user_data: { write_files: [{ path: /etc/motd, content: x, owner: @@ }] }" },
  { field: "user_data.packages[]", yaml: "user_data: { packages: [@@] }" },
  { field: "user_data.runcmd[]", yaml: "user_data: { runcmd: [@@] }", data: "runcmd" },
  { field: "user_data.runcmd[][]", yaml: "user_data: { runcmd: [[echo, @@]] }", data: "runcmd" },
  { field: "launch_template.name", yaml: "launch_template: { name: @@ }" },
  { field: "launch_template.region", yaml: "launch_template: { name: web, region: @@ }" },
  { field: "launch_template.source_version", yaml: "launch_template: { name: web, source_version: @@ }" },
  { field: "a top-level key", yaml: "@@: 1" },
];

/** A YAML double-quoted scalar that reads back as exactly `value`: JSON's escapes are YAML's; DEL, C1 and the separators escaped too. */
export const yamlString = (value: string) =>
  JSON.stringify(value).replace(/[\u007f-\u009f\u2028\u2029\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/** The config text with `value` (already YAML) at the field's @@, under a minimal valid head. */
export function configWith(fieldYaml: string, valueYaml: string): string {
  return `version: 1\n${fieldYaml.split("@@").join(valueYaml)}\n`;
}

/** Files `source:`/part `file:` may name. */
export const CORPUS_FILES: Record<string, string> = { "parts/boot.sh": "#!/bin/sh\necho part\n" };
