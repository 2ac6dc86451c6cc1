"""A small OpenID Connect provider on loopback for the sign-in test: discovery, an authorization
endpoint that approves at once (the user is already signed in there), a token endpoint that
checks the PKCE verifier against the S256 challenge, and the JWKS the service verifies with.
It answers the browser's cross-origin calls with CORS headers, as real providers do for a
registered web client."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fixtures.auth import public_jwk

KID = "ui-test-key"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcProvider:
    def __init__(self, client_id: str, user: str) -> None:
        self.client_id = client_id
        self.user = user
        self.redirect_uris: set[str] = set()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, str]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        return self.issuer + "/jwks"

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    @staticmethod
    def _json(doc: Any, status: int = 200) -> Response:
        return Response(json.dumps(doc), status=status, mimetype="application/json",
                        headers={"Access-Control-Allow-Origin": "*"})

    @Request.application
    def _app(self, request: Request) -> Response:
        if request.path == "/.well-known/openid-configuration":
            return self._json({"issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
                               "token_endpoint": self.issuer + "/token", "jwks_uri": self.jwks_url,
                               "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]})
        if request.path == "/jwks":
            return self._json({"keys": [public_jwk(self.key, KID, alg="RS256")]})
        if request.path == "/authorize":
            return self._authorize(request.args.to_dict())
        if request.path == "/token" and request.method == "OPTIONS":
            return Response(status=204, headers={"Access-Control-Allow-Origin": "*",
                                                 "Access-Control-Allow-Methods": "POST",
                                                 "Access-Control-Allow-Headers": "Content-Type"})
        if request.path == "/token" and request.method == "POST":
            return self._token(request.form.to_dict())
        return Response("not found", status=404)

    def _authorize(self, args: dict[str, str]) -> Response:
        with self._lock:
            self.authorize_requests.append(args)
        if (args.get("client_id") != self.client_id or args.get("response_type") != "code"
                or args.get("redirect_uri") not in self.redirect_uris
                or args.get("code_challenge_method") != "S256" or not args.get("code_challenge")):
            return Response("bad authorization request", status=400)
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.codes[code] = {"challenge": args["code_challenge"], "redirect_uri": args["redirect_uri"]}
        target = args["redirect_uri"] + "?" + urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": target})

    def _token(self, form: dict[str, str]) -> Response:
        with self._lock:
            self.token_requests.append(form)
            grant = self.codes.pop(form.get("code", ""), None)  # single use
        if (grant is None or form.get("grant_type") != "authorization_code"
                or form.get("client_id") != self.client_id or form.get("redirect_uri") != grant["redirect_uri"]):
            return self._json({"error": "invalid_grant"}, 400)
        if s256(form.get("code_verifier", "")) != grant["challenge"]:
            return self._json({"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400)
        now = int(time.time())
        token = jwt.encode({"sub": self.user, "iss": self.issuer, "aud": self.client_id, "iat": now,
                            "exp": now + 600, "roles": ["user"]}, self.key, algorithm="RS256",
                           headers={"kid": KID})
        return self._json({"access_token": token, "token_type": "Bearer", "expires_in": 600})
