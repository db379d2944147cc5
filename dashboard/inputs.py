"""What a callback request may carry, checked before and inside the callbacks.

A callback POST is JSON anyone on the machine can craft. Two layers keep a
crafted one from writing or from ending in an HTTP 500:

* ``check_callback_body``: the request's shape matches the callback it names
  (the same inputs and states, each ``{id, property, value}``, triggers among
  them), so Dash itself never indexes into something missing;
* the value checkers (``opt_int``, ``opt_str``, ...) at the top of each
  callback: types (a JSON ``true`` is not a flag id, although ``bool`` is an
  ``int`` in Python), ranges and lengths.

Both raise ``BadInput``, answered HTTP 400 with a one-line reason.

``SessionTokens``: writes (acknowledging a flag) need the page's session token,
a signed random value the server sets as a ``SameSite=Strict`` cookie; Dash's
renderer copies it into an ``X-CSRFToken`` header on every callback. Another
web page can neither read the cookie nor send that header (a cross-origin
custom header needs a CORS preflight this server never grants), so it cannot
write. It does NOT stop a local user or process that can read the page: one
GET gives it a token, as the page's own script gets one. Only a password (and
the machine's own accounts) stands between local users and the dashboard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import dash
import flask

from asnmon.errors import BadInput as BadInput  # defined with every other error

log = logging.getLogger("asnmon.dashboard")

# Limits on what one callback value may be. The page sends ids of a few dozen
# characters; a person's name fits in 100 and a comment in 2,000 (about a page).
MAX_ID = 200
MAX_NAME = 100
MAX_COMMENT = 2_000
MAX_ITEMS = 1_000  # list entries (pattern-matched inputs, filter choices)
TOKEN_HEADER = "X-CSRFToken"
CALLBACK_PATH = "_dash-update-component"


# ---------------------------------------------------------------- values


def opt_int(value: object, what: str, *, minimum: int = 0) -> int | None:
    """An integer (never a bool) >= ``minimum``, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{what} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise BadInput(f"{what} must be >= {minimum}, got {value}")
    return value


def positive_int(value: object, what: str) -> int:
    out = opt_int(value, what, minimum=1)
    if out is None:
        raise BadInput(f"{what} is missing")
    return out


def opt_number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise BadInput(f"{what} must be a number, got {type(value).__name__}")
    return float(value)


def opt_str(value: object, what: str, max_len: int = MAX_ID) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadInput(f"{what} must be text, got {type(value).__name__}")
    if len(value) > max_len:
        raise BadInput(f"{what} is {len(value):,} characters long; at most {max_len:,}")
    return value


def str_list(value: object, what: str, max_len: int = MAX_ID) -> list[str]:
    """A list of short strings (None is the empty list)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise BadInput(f"{what} must be a list of at most {MAX_ITEMS} texts")
    return [str(opt_str(v, what, max_len)) for v in value if v is not None]


def opt_dict(value: object, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadInput(f"{what} must be an object, got {type(value).__name__}")
    return value


def choice(value: object, what: str, allowed: Collection[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadInput(f"{what} must be one of {', '.join(sorted(allowed))}")
    return value


def clicks(value: object, what: str) -> list[int | None]:
    """The ``n_clicks`` of pattern-matched buttons: a list of counts or None."""
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise BadInput(f"{what} must be a list of click counts")
    return [opt_int(v, what) for v in value]


# ---------------------------------------------------------------- request shape


def _id_str(id_: object) -> str:
    if isinstance(id_, dict):
        return json.dumps(id_, sort_keys=True, separators=(",", ":"))
    return str(id_)


def _matches(declared: str, given: object) -> bool:
    """Does a component id in a request fit the declared (maybe wildcard) id?"""
    if not declared.startswith("{"):
        return isinstance(given, str) and given == declared
    if not isinstance(given, dict):
        return False
    pattern = json.loads(declared)
    if set(pattern) != set(given):
        return False
    for key, want in pattern.items():
        got = given[key]
        if isinstance(want, list):  # ALL / MATCH / ALLSMALLER: any scalar id value
            if (
                isinstance(got, bool)
                or not isinstance(got, str | int | float)
                or (isinstance(got, str) and len(got) > MAX_ID)
            ):
                return False
        elif got != want or type(got) is not type(want):
            return False
    return True


def _check_deps(given: object, declared: list[dict[str, str]], what: str) -> set[str]:
    """Entries must match the callback's declared deps one to one; returns their prop ids."""
    if not isinstance(given, list) or len(given) != len(declared):
        raise BadInput(f"{what}: expected {len(declared)} entries")
    props: set[str] = set()
    for dep, entry in zip(declared, given, strict=True):
        wildcard = dep["id"].startswith("{")
        items = entry if wildcard else [entry]
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise BadInput(f"{what}: {dep['id']} must be a list")
        for item in items:
            if (
                not isinstance(item, dict)
                or item.get("property") != dep["property"]
                or not _matches(dep["id"], item.get("id"))
            ):
                raise BadInput(f"{what}: an entry does not match {dep['id']}.{dep['property']}")
            props.add(f"{_id_str(item['id'])}.{dep['property']}")
    return props


def check_callback_body(body: object, callback_map: Mapping[str, Any]) -> dict[str, Any]:
    """The request, if it has exactly the shape of the callback it names."""
    if not isinstance(body, dict):
        raise BadInput("a callback request must be a JSON object")
    output = body.get("output")
    cb = callback_map.get(output) if isinstance(output, str) else None
    if cb is None or not callable(cb.get("callback")):  # clientside ones run in the browser
        raise BadInput("no such callback")
    props = _check_deps(body.get("inputs"), cb["inputs"], "inputs")
    _check_deps(body.get("state", []), cb["state"], "state")
    multi = output.startswith("..")
    declared = output.strip(".").split("...") if multi else [output]
    outputs = body.get("outputs")
    items = outputs if multi and isinstance(outputs, list) else [outputs]
    if len(items) != len(declared) or not all(
        isinstance(o, dict) and f"{o.get('id')}.{o.get('property')}" == d
        for o, d in zip(items, declared, strict=True)
    ):
        raise BadInput("outputs: not the callback's outputs")
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(_prop_id(c) in props for c in changed):
        raise BadInput("changedPropIds: not among the callback's inputs")
    return body


def _prop_id(changed: object) -> str | None:
    """A trigger's ``id.property`` with a pattern id normalised (the browser escapes less)."""
    if not isinstance(changed, str) or len(changed) > 2 * MAX_ID:
        return None
    id_part, _, prop = changed.rpartition(".")
    if id_part.startswith("{"):
        try:
            id_part = _id_str(json.loads(id_part))
        except ValueError:
            return None
    return f"{id_part}.{prop}"


# ---------------------------------------------------------------- session tokens


def token_cookie_name(identity: str | Path) -> str:
    """A cookie name per dashboard (cookies ignore ports: two monitors on one PC differ)."""
    digest = hashlib.sha256(str(identity).encode("utf-8", "surrogateescape")).hexdigest()
    return f"asnmon_token_{digest[:12]}"


class SessionTokens:
    """Random tokens signed with a per-process key: valid until the server restarts.

    After a restart the open page's token is unknown; its next request (the
    1 s tick) gets a new cookie, so a page heals by itself within a second.
    """

    def __init__(self, cookie: str) -> None:
        self.cookie = cookie
        self._key = secrets.token_bytes(32)

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce)}"

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._key, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def valid(self, token: str | None) -> bool:
        if not token or len(token) > 200 or token.count(".") != 1:
            return False
        nonce, sig = token.split(".")
        return hmac.compare_digest(sig, self._sign(nonce))

    def request_ok(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """The header carries a token we issued, the same one as the page's cookie."""
        given = headers.get(TOKEN_HEADER)
        cookie = cookies.get(self.cookie)
        return (
            given is not None
            and cookie is not None
            and hmac.compare_digest(given, cookie)
            and self.valid(given)
        )


# ---------------------------------------------------------------- wiring


def _refuse(status: int, text: str) -> flask.Response:
    return flask.Response(f"asnmon: refused: {text}\n", status, mimetype="text/plain")


def protect(
    app: dash.Dash,
    *,
    max_bytes: int,
    writes: Collection[str] = (),
    tokens: SessionTokens | None = None,
) -> None:
    """Check every callback request's shape; writes need a session token.

    ``writes``: the callback outputs (``callback_map`` keys) that change data.
    """
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = max_bytes  # a second line behind waitress

    @server.before_request
    def _check_callback() -> flask.Response | None:
        req = flask.request
        if req.method != "POST" or not req.path.endswith(CALLBACK_PATH):
            return None
        try:
            body = req.get_json(silent=True)
        except RecursionError:  # nesting deep enough to exhaust the parser
            body = None
        if body is None:
            return _refuse(400, "a callback request must be JSON")
        try:
            body = check_callback_body(body, app.callback_map)
        except BadInput as err:
            return _refuse(400, str(err))
        if body["output"] in writes and (
            tokens is None or not tokens.request_ok(req.headers, req.cookies)
        ):
            log.warning(
                "dashboard: refused a write without this page's session token from %s",
                req.remote_addr,
            )
            return _refuse(
                403,
                "a change needs the session token of a page this dashboard served "
                "(reload the page).",
            )
        return None

    @server.after_request
    def _issue_token(resp: flask.Response) -> flask.Response:
        if tokens is not None and not tokens.valid(flask.request.cookies.get(tokens.cookie)):
            resp.set_cookie(tokens.cookie, tokens.issue(), samesite="Strict", path="/")
        return resp

    @server.errorhandler(BadInput)
    def _bad_input(err: BadInput) -> flask.Response:
        return _refuse(400, str(err))
