"""Command line: serve the Saklama API, create accounts, run the fixity audit.

    python -m include.integrator serve --host 127.0.0.1 --port 8765 --data DIR
    python -m include.integrator account create --data DIR --username U --taxpayer-id VKN [--branch SSSS]
        (password from stdin, or from the env variable named by --password-env)
    python -m include.integrator audit --data DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from include.integrator.settings import LIMIT_SETTINGS, Settings

_MIB = 1024 * 1024


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=os.environ.get("INTEGRATOR_DATA"), help="data directory (env INTEGRATOR_DATA)")
    p.add_argument("--db-url", default=None, help="sqlite:///… or postgresql+psycopg2://… (env INTEGRATOR_DB_URL)")
    p.add_argument("--storage", choices=["fs", "s3"], default=None, help="env INTEGRATOR_STORAGE; default fs")
    p.add_argument("--s3-endpoint", default=None, help="env INTEGRATOR_S3_ENDPOINT")
    p.add_argument("--s3-bucket", default=None, help="env INTEGRATOR_S3_BUCKET (must have Object Lock)")
    p.add_argument("--s3-region", default=None, help="default us-east-1")
    p.add_argument(
        "--s3-checksum-mode",
        choices=["when_required", "when_supported"],
        default=None,
        help="boto3 request/response checksum mode (env INTEGRATOR_S3_CHECKSUM_MODE)",
    )
    p.add_argument("--s3-create-bucket", action="store_true", default=None, help="create the Object Lock bucket if absent")
    p.add_argument("--retention-years", type=int, default=None, help="≥ 10 (env INTEGRATOR_RETENTION_YEARS)")


def _settings(a: argparse.Namespace, **extra: object) -> Settings:
    if not a.data:
        sys.exit("error: --data DIR (or INTEGRATOR_DATA) is required")
    return Settings.from_env(
        a.data,
        db_url=a.db_url,
        storage=a.storage,
        s3_endpoint=a.s3_endpoint,
        s3_bucket=a.s3_bucket,
        s3_region=a.s3_region,
        s3_checksum_mode=a.s3_checksum_mode,
        s3_create_bucket=a.s3_create_bucket,
        retention_years=a.retention_years,
        **extra,
    )


def cmd_serve(a: argparse.Namespace) -> int:
    import uvicorn

    from include.integrator.app import create_app

    s = _settings(
        a,
        max_upload_bytes=a.max_upload_mb * _MIB if a.max_upload_mb else None,
        max_uncompressed_bytes=a.max_uncompressed_mb * _MIB if a.max_uncompressed_mb else None,
        max_ratio=a.max_ratio,
        header_check_over_bytes=a.header_check_over_mb * _MIB if a.header_check_over_mb is not None else None,
        tls_cert=Path(a.tls_cert) if a.tls_cert else None,
        tls_key=Path(a.tls_key) if a.tls_key else None,
        extra_file_checks=a.extra_file_checks,
        verify_signatures=False if a.no_verify_signatures else None,
        **{k: getattr(a, k) for k in LIMIT_SETTINGS},
    )
    if (s.tls_cert is None) != (s.tls_key is None):
        sys.exit("error: --tls-cert and --tls-key go together")
    app = create_app(s)
    try:
        from include.integrator.limits import limited_http_protocol

        http: object = limited_http_protocol(s)
    except ImportError:  # no httptools: h11 caps the header block, no header timeout
        logging.getLogger("include.integrator").warning("httptools missing: header timeout/count caps are off")
        http = "h11"
    uvicorn.run(
        app,
        host=a.host,
        port=a.port,
        ssl_certfile=str(s.tls_cert) if s.tls_cert else None,
        ssl_keyfile=str(s.tls_key) if s.tls_key else None,
        log_level=a.log_level,
        proxy_headers=False,
        server_header=False,
        # Uploads in flight get a few seconds to finish; a killed upload is never visible anyway.
        timeout_graceful_shutdown=5,
        http=http,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=s.max_header_bytes,
        limit_concurrency=s.limit_concurrency,
        timeout_keep_alive=s.timeout_keep_alive_s,  # type: ignore[arg-type]  # call_later takes a float
    )
    return 0


def _read_password(a: argparse.Namespace) -> str:
    if a.password_env:
        pw = os.environ.get(a.password_env)
        if not pw:
            sys.exit(f"error: environment variable {a.password_env} is empty")
        return pw
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\r\n")


def cmd_account_create(a: argparse.Namespace) -> int:
    from include.integrator.auth import create_account
    from include.integrator.context import ServiceContext

    s = _settings(a)
    pw = _read_password(a)
    ctx = ServiceContext(s)
    try:
        with ctx.session() as sess, sess.begin():
            acc = create_account(sess, a.username, pw, a.taxpayer_id, a.branch)
            print(
                json.dumps(
                    {"created": acc.username, "taxpayer_id": acc.taxpayer_id, "branch": acc.branch}, ensure_ascii=False
                )
            )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        ctx.close()
    return 0


def cmd_audit(a: argparse.Namespace) -> int:
    from include.integrator.audit import run_audit
    from include.integrator.context import ServiceContext

    ctx = ServiceContext(_settings(a))
    try:
        report = run_audit(ctx)
    finally:
        ctx.close()
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    url = a.alert_webhook or os.environ.get("INTEGRATOR_ALERT_WEBHOOK")
    if url and not report.clean:
        from include.integrator.audit import notify

        try:
            notify(url, report)
        except OSError as exc:
            # The URL may carry a token: name only the failure.
            print(f"alert webhook failed / uyarı gönderilemedi: {type(exc).__name__}", file=sys.stderr)
            return 2
    return 0 if report.clean else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m include.integrator", description="e-Defter Saklama API")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="run the archive service")
    _common(sp)
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8765)
    sp.add_argument("--max-upload-mb", type=int, default=None)
    sp.add_argument("--max-uncompressed-mb", type=int, default=None)
    sp.add_argument("--max-ratio", type=int, default=None)
    sp.add_argument(
        "--header-check-over-mb",
        type=int,
        default=None,
        help="ledgers above this size are name-checked from the header at upload (default 8)",
    )
    sp.add_argument("--tls-cert", default=os.environ.get("INTEGRATOR_TLS_CERT"))
    sp.add_argument("--tls-key", default=os.environ.get("INTEGRATOR_TLS_KEY"))
    sp.add_argument("--extra-file-checks", default=None, help="module:callable plugged into validate_month")
    sp.add_argument(
        "--no-verify-signatures",
        action="store_true",
        help="skip the cryptographic signature check of submitted sets (env INTEGRATOR_VERIFY_SIGNATURES=0); "
        "trust anchors come from EDEFTER_TRUSTED_ROOTS / EDEFTER_GIB_CERTS",
    )
    lim = sp.add_argument_group("limits (docs/integrator.md, Limits; env INTEGRATOR_<NAME>)")
    for k in LIMIT_SETTINGS:
        default = getattr(Settings, k)
        lim.add_argument(
            "--" + k.replace("_", "-"),
            type=type(default),
            default=None,
            help=f"default {default} (env INTEGRATOR_{k.upper()})",
        )
    sp.add_argument("--log-level", default="info")
    sp.set_defaults(fn=cmd_serve)
    acc = sub.add_parser("account", help="manage accounts").add_subparsers(dest="acmd", required=True)
    ac = acc.add_parser("create", help="create an account (password from stdin or --password-env)")
    _common(ac)
    ac.add_argument("--username", required=True)
    ac.add_argument("--taxpayer-id", required=True)
    ac.add_argument("--branch", default=None)
    ac.add_argument("--password-env", default=None, help="name of an env variable holding the password")
    ac.set_defaults(fn=cmd_account_create)
    au = sub.add_parser("audit", help="fixity audit: re-hash every stored object")
    _common(au)
    au.add_argument(
        "--alert-webhook",
        default=None,
        help="POST the report here when something is found (env INTEGRATOR_ALERT_WEBHOOK; never logged)",
    )
    au.set_defaults(fn=cmd_audit)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
