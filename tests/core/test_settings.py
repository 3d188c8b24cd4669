"""Production settings refuse to start without their secrets, and `check --deploy` is clean."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL")}
    full_env.update(DJANGO_SETTINGS_MODULE="config.settings.production", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full_env, capture_output=True,
                          text=True, timeout=120)


PG = "postgres://postgres@127.0.0.1:5432/parley"
GOOD = {"SECRET_KEY": "x" * 64 + "-production-secret-key-with-enough-entropy",
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(), "DATABASE_URL": PG, "ALLOWED_HOSTS": "parley.example.com"}


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_secrets(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    result = manage("check", **env)
    assert result.returncode != 0
    assert f"Production settings need {missing}" in result.stderr


def test_production_refuses_sqlite():
    result = manage("check", **{**GOOD, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    assert result.returncode != 0
    assert "not SQLite" in result.stderr


def test_check_deploy_is_clean():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **GOOD)
    assert result.returncode == 0, result.stderr + result.stdout


def test_email_comes_from_the_environment():
    """Invitations go through the SMTP server the environment names, from its sender, with a
    timeout (they are sent on the request that creates them)."""
    code = ("from django.conf import settings as s; print(s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
            "s.EMAIL_USE_TLS, s.EMAIL_TIMEOUT, s.DEFAULT_FROM_EMAIL, sep='|')")
    result = manage("shell", "-c", code, **GOOD, EMAIL_HOST="smtp.example.com", EMAIL_PORT="587",
                    EMAIL_HOST_USER="parley", EMAIL_HOST_PASSWORD="secret", EMAIL_USE_TLS="1",
                    DEFAULT_FROM_EMAIL="Parley <no-reply@example.com>")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "smtp.example.com|587|parley|True|10|Parley <no-reply@example.com>"
    both = manage("check", **GOOD, EMAIL_USE_TLS="1", EMAIL_USE_SSL="1")
    assert both.returncode != 0 and "EMAIL_USE_TLS or EMAIL_USE_SSL" in both.stderr
