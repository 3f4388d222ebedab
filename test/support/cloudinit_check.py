#!/usr/bin/python3
"""Ask the installed cloud-init (Debian bookworm, 22.4) what it makes of a
user-data blob. Used by test/support/validators.ts (cloudInitUserData).

Run with /usr/bin/python3 (the interpreter that has the `cloudinit` package):

    /usr/bin/python3 cloudinit_check.py [FILE|-]     (default: stdin)

It goes through the same steps cloud-init does on first boot:

1. ``util.decomp_gzip(raw, quiet=True)``: gunzip if gzipped, else unchanged;
2. ``UserDataProcessor(paths).process(...)``: MIME parsing, content-type
   detection from "#cloud-config"/"#!" prefixes, archive/include expansion;
3. every resulting part is checked against the content types the default
   user-data handlers (stages.Init._default_handlers) accept; any other type
   (text/x-not-multipart, text/plain, text/x-whatever) is one cloud-init only
   logs "Unhandled ... userdata" for, i.e. ignores -> error;
4. each text/cloud-config part is loaded with cloud-init's YAML loader
   (cloudinit.safeyaml) and checked with
   ``validate_cloudconfig_schema(doc, get_schema(), strict=True)``;
5. the cloud-config parts are merged with cloud-init's own
   CloudConfigPartHandler (the merge cloud-init writes to cloud-config.txt),
   and the merge is validated too when there was more than one part;
6. text/x-shellscript* parts must start with "#!" (cloud-init writes them out
   and executes them; without one the exec fails at boot).

Not covered: "#include" URLs are not fetched (any include is reported as an
error instead of going to the network); text/jinja2 parts are not rendered.

Prints one JSON object on stdout:

    {"ok": bool, "errors": [str], "deprecations": [str], "warnings": [str],
     "parts": [{"contentType", "filename", "bytes", "text", "errors": [str]}],
     "cloudConfig": <merged cloud-config, or null>}

"text" is the decoded payload (after base64/gzip) when it is UTF-8, else null.
Schema deprecations do not make "ok" false here (the caller decides).

Exit status: 0 valid, 1 invalid, 2 the helper itself failed (traceback on
stderr). Warnings that cloud-init logs while processing (WARNING and above)
are reported in "warnings" and count as errors: on a real instance they mean
some of the user-data was dropped.
"""

import base64
import datetime
import json
import logging
import sys
import tempfile


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        try:
            self.messages.append(
                "%s: %s" % (record.levelname, record.getMessage())
            )
        except Exception:  # pragma: no cover - never let logging kill us
            self.messages.append("%s: %r" % (record.levelname, record.msg))


class _StubDatasource:
    def get_instance_id(self):
        return "i-dockinit-check"


def _jsonable(value):
    """YAML can produce things JSON cannot carry; make them visible."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, set):
        return sorted((_jsonable(v) for v in value), key=repr)
    if isinstance(value, bytes):
        return {"$bytes_base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (datetime.date, datetime.datetime)):
        return {"$timestamp": value.isoformat()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"$repr": repr(value)}


def main(argv):
    src = argv[1] if len(argv) > 1 else "-"
    if src == "-":
        raw = sys.stdin.buffer.read()
    else:
        with open(src, "rb") as fh:
            raw = fh.read()

    from cloudinit import handlers, helpers, safeyaml, user_data, util
    from cloudinit.config.schema import (
        SchemaValidationError,
        get_schema,
        validate_cloudconfig_schema,
    )
    from cloudinit.handlers.boot_hook import BootHookPartHandler
    from cloudinit.handlers.cloud_config import CloudConfigPartHandler
    from cloudinit.handlers.jinja_template import JinjaTemplatePartHandler
    from cloudinit.handlers.shell_script import ShellScriptPartHandler
    from cloudinit.handlers.shell_script_by_frequency import (
        ShellScriptByFreqPartHandler,
    )
    from cloudinit.settings import PER_ALWAYS, PER_INSTANCE, PER_ONCE

    # Importing cloudinit.log resets the root logger (removes handlers, adds a
    # NullHandler), so the collector goes on only after the imports.
    collector = _Collect()
    root = logging.getLogger()
    root.addHandler(collector)
    root.setLevel(logging.WARNING)

    errors = []
    deprecations = []
    parts_out = []
    merged = None

    with tempfile.TemporaryDirectory(prefix="dockinit-ci-") as tmp:
        # A stand-in datasource that only knows an instance id: without one
        # Paths.get_ipath() logs "No per instance data available" (noise that
        # would drown the warnings we do care about).
        ds = _StubDatasource()
        paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp}, ds=ds)
        # Same handler set as stages.Init._default_handlers.
        opts = {"paths": paths, "datasource": ds}
        cc_handler = CloudConfigPartHandler(**opts)
        sh_handler = ShellScriptPartHandler(**opts)
        default_handlers = [
            cc_handler,
            sh_handler,
            ShellScriptByFreqPartHandler(PER_ALWAYS, **opts),
            ShellScriptByFreqPartHandler(PER_INSTANCE, **opts),
            ShellScriptByFreqPartHandler(PER_ONCE, **opts),
            BootHookPartHandler(**opts),
            JinjaTemplatePartHandler(
                **opts, sub_handlers=[cc_handler, sh_handler]
            ),
        ]
        handled = set(handlers.PART_CONTENT_TYPES)
        for h in default_handlers:
            handled.update(h.list_types())

        def no_fetch(url, *args, **kwargs):
            raise IOError(
                "user-data includes %s; cloudinit_check.py does not fetch "
                "URLs" % url
            )

        user_data.read_file_or_url = no_fetch

        text = util.decomp_gzip(raw, quiet=True)
        try:
            msg = user_data.UserDataProcessor(paths).process(text)
        except Exception as e:  # ERROR_ON_USER_DATA_FAILURE is True in 22.4
            errors.append("UserDataProcessor.process failed: %s" % e)
            msg = None

        cc_docs = []
        if msg is not None:
            cc_handler.handle_part(
                None, handlers.CONTENT_START, None, None, None, None
            )
            partnum = 0
            for part in msg.walk():
                if part.get_content_maintype() == "multipart":
                    continue
                ctype = part.get_content_type() or handlers.OCTET_TYPE
                filename = part.get_filename() or (
                    handlers.PART_FN_TPL % partnum
                )
                partnum += 1
                payload = util.fully_decoded_payload(part)
                if payload is None:
                    payload = b""
                size = len(
                    payload.encode("utf-8", "surrogateescape")
                    if isinstance(payload, str)
                    else payload
                )
                perrs = []
                if ctype not in handled:
                    perrs.append(
                        "content type %s is not handled by any cloud-init "
                        "user-data handler (cloud-init logs 'Unhandled ..."
                        " userdata' and ignores it)" % ctype
                    )
                if ctype.startswith("text/x-shellscript"):
                    head = payload[:2]
                    if head not in ("#!", b"#!"):
                        perrs.append(
                            "%s part does not start with '#!'; cloud-init "
                            "would write it out and fail to execute it" % ctype
                        )
                if ctype in ("text/cloud-config", "text/cloud-config-jsonp"):
                    ptext = util.decode_binary(payload)
                    doc = None
                    if ctype == "text/cloud-config":
                        try:
                            doc = safeyaml.load(ptext)
                        except Exception as e:
                            perrs.append("YAML does not load: %s" % e)
                        else:
                            if not isinstance(doc, dict):
                                perrs.append(
                                    "cloud-config is not a YAML mapping "
                                    "(got %s)" % type(doc).__name__
                                )
                                doc = None
                    if doc is not None:
                        try:
                            validate_cloudconfig_schema(
                                doc,
                                get_schema(),
                                strict=True,
                                log_details=False,
                            )
                        except SchemaValidationError as e:
                            for p in e.schema_errors or []:
                                perrs.append("schema: %s: %s" % tuple(p))
                            for p in e.schema_deprecations or []:
                                deprecations.append(
                                    "%s: %s: %s" % ((filename,) + tuple(p))
                                )
                        cc_docs.append(doc)
                    headers = dict(part)
                    headers["Content-Type"] = ctype
                    cc_handler.handle_part(
                        None, ctype, filename, ptext, PER_ALWAYS, headers
                    )
                for e in perrs:
                    errors.append("part %d (%s, %s): %s" % (
                        partnum, filename, ctype, e))
                if isinstance(payload, bytes):
                    try:
                        ptext_out = payload.decode("utf-8")
                    except UnicodeDecodeError:
                        ptext_out = None
                else:
                    try:
                        payload.encode("utf-8")
                        ptext_out = payload
                    except UnicodeEncodeError:  # surrogate-escaped bytes
                        ptext_out = None
                parts_out.append(
                    {
                        "contentType": ctype,
                        "filename": part.get_filename(),
                        "bytes": size,
                        "text": ptext_out,
                        "errors": perrs,
                    }
                )
            merged = cc_handler.cloud_buf
            cc_handler.handle_part(
                None, handlers.CONTENT_END, None, None, None, None
            )

        if merged is not None and len(cc_docs) > 1:
            try:
                validate_cloudconfig_schema(
                    merged, get_schema(), strict=True, log_details=False
                )
            except SchemaValidationError as e:
                for p in e.schema_errors or []:
                    errors.append("merged cloud-config: schema: %s: %s" % tuple(p))

    if not parts_out and msg is not None:
        errors.append("user-data contains no parts")

    warnings = list(collector.messages)

    result = {
        "ok": not errors and not warnings,
        "errors": errors,
        "deprecations": deprecations,
        "warnings": warnings,
        "parts": parts_out,
        "cloudConfig": _jsonable(merged),
    }
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=False))
    sys.stdout.write("\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SystemExit:
        raise
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.exit(2)
