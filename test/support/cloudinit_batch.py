#!/usr/bin/python3
"""Round-trip many user-data blobs through cloud-init's own code in one process.

Used by the property tests (test/unit/property.test.ts), where starting
cloud-init once per configuration (cloudinit_check.py: ~1 s of imports) would
take hours. Run with /usr/bin/python3 (the interpreter with `cloudinit`):

    /usr/bin/python3 cloudinit_batch.py IN.ndjson OUT.ndjson

Each input line is {"id": N, "ud": BASE64, "sha": HEX, "parts": [HEX],
"exact": BOOL}: the exact bytes EC2 would get, the sha256 of the canonical
JSON of the cloud-config the caller meant to emit, and the sha256 of each
further part's content, in order. For each blob, cloud-init's own steps:

1. ``util.decomp_gzip(raw, quiet=True)``, ``user_data.convert_string`` (MIME
   or a single document) and ``util.fully_decoded_payload`` per part, with
   ``handlers.type_from_starts_with`` for a non-MIME blob, as cloud-init does;
2. the text/cloud-config part loaded as YAML: with ``exact`` by cloud-init's
   own loader (``safeyaml.load``, pure-Python PyYAML) and validated against
   cloud-init's schema (strict); otherwise by the same SafeLoader rules on
   libyaml's parser (``yaml.CSafeLoader``; ~7x faster, same resolver and
   constructors, so the same types for the same scalars);
3. the loaded document serialised as canonical JSON (sorted keys, ASCII
   escapes, no spaces) and its sha256 compared with the caller's; each
   other part's decoded payload hashed and compared likewise.

Writes one line per blob that failed ({"id", "errors", "got"}) and a last
line {"summary": {"checked", "exact", "failed"}}. Exit 0 unless the helper
itself broke.
"""

import base64
import hashlib
import json
import sys

import yaml


class _FastLoader(yaml.CSafeLoader):
    """cloud-init's _CustomSafeLoader, on libyaml's scanner/parser."""

    def construct_python_unicode(self, node):
        return super().construct_scalar(node)


def canonical(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def main(argv):
    from cloudinit import handlers, safeyaml, user_data, util
    from cloudinit.config.schema import (
        SchemaValidationError,
        get_schema,
        validate_cloudconfig_schema,
    )

    schema = get_schema()
    checked = exact_count = failed = 0
    with open(argv[1], encoding="utf-8") as inp, open(argv[2], "w", encoding="utf-8") as out:
        for line in inp:
            if not line.strip():
                continue
            item = json.loads(line)
            checked += 1
            errors = []
            got = None
            raw = base64.b64decode(item["ud"])
            text = util.decomp_gzip(raw, quiet=True)
            msg = user_data.convert_string(text)
            docs = []
            others = []
            for part in msg.walk():
                if part.get_content_maintype() == "multipart":
                    continue
                payload = util.fully_decoded_payload(part)
                ctype = part.get_content_type()
                if ctype == handlers.NOT_MULTIPART_TYPE:
                    ctype = handlers.type_from_starts_with(payload) or ctype
                if ctype == "text/cloud-config" and not docs:
                    docs.append(util.decode_binary(payload))
                else:
                    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
                    others.append(hashlib.sha256(data).hexdigest())
            if others != item.get("parts", []):
                errors.append("parts do not read back as emitted (%d parts, %d expected)" % (len(others), len(item.get("parts", []))))
            if len(docs) != 1:
                errors.append("expected one text/cloud-config part, found %d" % len(docs))
            else:
                try:
                    if item.get("exact"):
                        exact_count += 1
                        doc = safeyaml.load(docs[0])
                    else:
                        doc = yaml.load(docs[0], Loader=_FastLoader)
                except Exception as e:  # noqa: BLE001 - any loader failure is the finding
                    errors.append("YAML does not load: %s" % str(e).splitlines()[0])
                    doc = None
                if doc is not None:
                    # What cloud-init's write_files does with an entry that names
                    # no mode or owner (cc_write_files' DEFAULT_PERMS, DEFAULT_OWNER).
                    for entry in doc.get("write_files") or [] if isinstance(doc, dict) else []:
                        if isinstance(entry, dict):
                            entry.setdefault("permissions", "0644")
                            entry.setdefault("owner", "root:root")
                    text_json = canonical(doc)
                    if hashlib.sha256(text_json.encode("ascii")).hexdigest() != item["sha"]:
                        errors.append("cloud-config does not read back as emitted")
                        got = doc
                    if item.get("exact"):
                        try:
                            validate_cloudconfig_schema(doc, schema, strict=True, log_details=False)
                        except SchemaValidationError as e:
                            for p in e.schema_errors or []:
                                errors.append("schema: %s: %s" % tuple(p))
            if errors:
                failed += 1
                out.write(json.dumps({"id": item["id"], "errors": errors, "got": got}, default=repr) + "\n")
        out.write(json.dumps({"summary": {"checked": checked, "exact": exact_count, "failed": failed}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
