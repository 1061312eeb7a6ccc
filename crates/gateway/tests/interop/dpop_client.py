"""A DPoP client built on requests-oauth2client, for zt4ai's interop tests.

An independent implementation of OAuth 2.0 Token Exchange (RFC 8693) and DPoP
(RFC 9449) does what an agent written in Python would: it exchanges the user's
token for a delegated token bound to a freshly generated key, then calls the
AuthZEN evaluation endpoint with that token, the library making a new proof for
each request.

    dpop_client.py BASE_URL USER_TOKEN CLIENT_ID CLIENT_SECRET ALG

The agent authenticates with HTTP Basic (the development client secret); ALG is
the proof algorithm (ES256, EdDSA, RS256, PS256...). It prints one JSON object:

    {"token_type": "DPoP", "cnf_jkt": ..., "key_jkt": ...,
     "calls": [{"status": 200, "body": {...}}, ...],      # two calls, fresh proofs
     "as_bearer": {"status": 401, "www_authenticate": ...}}

Anything unexpected prints {"error": "..."} and exits 1.
"""

import base64
import json
import sys

import requests
from requests_oauth2client import DPoPKey, OAuth2Client

JWT = "urn:ietf:params:oauth:token-type:jwt"


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def main() -> None:
    base, user_token, client_id, secret, alg = sys.argv[1:6]
    # `testing`: the gateway listens on plain HTTP on loopback in the tests.
    client = OAuth2Client(
        token_endpoint=f"{base}/oauth/token", auth=(client_id, secret), testing=True
    )
    key = DPoPKey.generate(alg=alg)
    token = client.token_exchange(
        subject_token=user_token, subject_token_type=JWT, dpop=True, dpop_key=key
    )
    body = {
        "subject": {"type": "agent", "id": client_id},
        "action": {"name": "read"},
        "resource": {"type": "dataset", "id": "customers"},
        "context": {"session": "interop"},
    }
    url = f"{base}/access/v1/evaluation"
    calls = []
    for _ in range(2):
        r = requests.post(url, json=body, auth=token, timeout=30)
        calls.append({"status": r.status_code, "body": r.json()})
    r = requests.post(
        url,
        json=body,
        headers={"Authorization": f"Bearer {token.access_token}"},
        timeout=30,
    )
    print(
        json.dumps(
            {
                "token_type": token.token_type,
                "cnf_jkt": claims(token.access_token).get("cnf", {}).get("jkt"),
                "key_jkt": key.dpop_jkt,
                "calls": calls,
                "as_bearer": {
                    "status": r.status_code,
                    "www_authenticate": r.headers.get("www-authenticate"),
                },
            }
        )
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads the report
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
