"""Redaction, case by case (issue 16, item 5): every form a secret takes in pod logs, pg_stat_activity or env.

Each case: the text, and the secret that must not survive. Registered secrets are replaced
before the patterns run, so a pattern that stops at ``&`` or ``;`` cannot leave half of one.
"""

from __future__ import annotations

import pytest

from vcci_nb.redact import MASK, redact, register_secret

REGISTERED = "Reg1st&red;tail-9f3e"  # a canary

CASES: list[tuple[str, str, str]] = [
    ("registered, after password= with & and ;", f"password={REGISTERED} user=app", "tail-9f3e"),
    ("registered, alone", f"connecting with {REGISTERED}", "Reg1st"),
    ("PGPASSWORD env", "PGPASSWORD=Canary-pg-1 psql -h db", "Canary-pg-1"),
    ("DB_PASSWORD env", "DB_PASSWORD=Canary-db-2\nDB_USER=app", "Canary-db-2"),
    ("export with quotes", "export DB_PASSWORD='Canary db 3'", "Canary db 3"),
    ("JSON", '{"user": "app", "password": "Canary-json-4"}', "Canary-json-4"),
    ("JSON, escaped quote", '{"password": "Canary\\"json5"}', "json5"),
    ("YAML", "database:\n  password: Canary-yaml-6\n  user: app", "Canary-yaml-6"),
    ("log line", "login failed, password: Canary-log-7, retrying", "Canary-log-7"),
    ("ALTER ROLE", "ALTER ROLE vcci_app WITH PASSWORD 'Canary-sql-8';", "Canary-sql-8"),
    ("CREATE USER, quote inside", "CREATE USER x ENCRYPTED PASSWORD 'Can''ary-sql-9'", "ary-sql-9"),
    ("Authorization Basic", "Authorization: Basic Q2FuYXJ5OmJhc2ljMTA=", "Q2FuYXJ5OmJhc2ljMTA="),
    ("Authorization Basic, JSON", '{"Authorization": "Basic Q2FuYXJ5MTE="}', "Q2FuYXJ5MTE="),
    ("Authorization Bearer", "Authorization: Bearer Canary.bearer.12", "Canary.bearer.12"),
    ("URL password", "postgresql://app:Canary-url-13@db:5432/vcci", "Canary-url-13"),
    ("URL query token", "GET /cb?token=Canary-q-14&next=/", "Canary-q-14"),
    ("client_secret", "client_secret=Canary-cs-15", "Canary-cs-15"),
    ("api-key header", "X-Api-Key: Canary-ak-16", "Canary-ak-16"),
    ("AWS access key id", "aws_access_key_id AKIAIOSFODNN7CANARY7", "AKIAIOSFODNN7CANARY7"),
    ("private key", "-----BEGIN RSA PRIVATE KEY-----\nMIICanary18\n-----END RSA PRIVATE KEY-----", "MIICanary18"),
]

KEPT: list[tuple[str, str]] = [
    ("a word that merely contains one", "max_tokens=512 temperature=0.2"),
    ("no value", "the password was rotated yesterday"),
    ("a path", "password_file=/run/secrets/db"),
]


@pytest.fixture(autouse=True, scope="module")
def _registered() -> None:
    register_secret(REGISTERED)


@pytest.mark.parametrize(("name", "text", "secret"), CASES, ids=[c[0] for c in CASES])
def test_secret_forms_are_masked(name: str, text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out, out
    assert MASK in out


@pytest.mark.parametrize(("name", "text"), KEPT, ids=[k[0] for k in KEPT])
def test_ordinary_text_is_kept(name: str, text: str) -> None:
    assert redact(text) == text


def test_the_words_around_a_secret_stay_readable() -> None:
    assert redact("PGPASSWORD=x1y2z3 psql -h db -U app") == f"PGPASSWORD={MASK} psql -h db -U app"
    assert redact('{"password": "x1y2z3", "user": "app"}') == f'{{"password": "{MASK}", "user": "app"}}'
    assert redact("ALTER ROLE app PASSWORD 'x1y2z3';") == f"ALTER ROLE app PASSWORD '{MASK}';"
    assert redact("Authorization: Basic eDp5") == f"Authorization: Basic {MASK}"
