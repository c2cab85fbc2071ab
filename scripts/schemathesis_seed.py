"""Seeds a running certdeploy server with real objects and writes the schemathesis.toml that points its path
parameters at them, so the contract test exercises handlers past their 404s.

    python schemathesis_seed.py BASE_URL API_KEY WORK_DIR STUCK_PORT

Creates (through the API, as a user would): a certificate `seed-cert` and `seed-gone-cert` (self-signed, made with
openssl), nginx targets `seed-web` (bound to `seed-cert`) and `seed-gone-1..3`, and a dry-run deployment of
`seed-cert` to `seed-web` (its SSH port is closed, so it ends at `connect`). Then writes WORK_DIR/schemathesis.toml:
half of the generated values of `target`, `name` and `id` path parameters name these objects; the delete operations
get their own disposable objects, so the others keep theirs; `missing_test_data` (an operation that only ever
answered 404) fails the run.
"""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path


def call(base, key, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + key)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read() or b"null")


def self_signed(work, name):
    key, cert = work / f"{name}.key", work / f"{name}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
         "-subj", f"/CN={name}.example.test", "-addext", f"subjectAltName=DNS:{name}.example.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert.read_text(), key.read_text()


def target(name, certificate=None, port=1):
    body = {
        "name": name,
        "connector": "nginx",
        "labels": {"seed": "yes"},
        "ssh": {"host": "127.0.0.1", "port": port, "user": "root", "password": "seed-password",
                "hostKeyFingerprint": "SHA256:" + "A" * 43, "connectTimeoutSeconds": 1 if port == 1 else 8},
        "config": {"certificatePath": f"/etc/nginx/{name}.pem", "keyPath": f"/etc/nginx/{name}.key"},
    }
    if certificate:
        body["certificate"] = certificate
    return body


def toml_list(values):
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def main():
    base, key, work, stuck_port = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    for name in ("seed-cert", "seed-gone-cert"):
        cert, private_key = self_signed(work, name)
        call(base, key, "POST", "/api/v1/certificates", {"name": name, "certificatePEM": cert, "privateKeyPEM": private_key})
    web = call(base, key, "POST", "/api/v1/targets", target("seed-web", "seed-cert"))
    gone = [call(base, key, "POST", "/api/v1/targets", target(f"seed-gone-{i}"))["name"] for i in (1, 2, 3)]
    replaced = [call(base, key, "POST", "/api/v1/targets", target(f"seed-put-{i}"))["id"] for i in (1, 2)]
    queued = call(base, key, "POST", "/api/v1/deployments",
                  {"certificate": "seed-cert", "targets": ["seed-web"], "options": {"dryRun": True}})
    deployment = queued["items"][0]["id"]
    call(base, key, "POST", "/api/v1/targets", target("seed-stuck", port=stuck_port))
    held = [call(base, key, "POST", "/api/v1/deployments",
                 {"certificate": "seed-cert", "targets": ["seed-stuck"], "options": {"dryRun": True}})["items"][0]["id"]
            for _ in range(4)]
    connectors = [c.get("id") or c["descriptor"]["id"] for c in call(base, key, "GET", "/api/v1/connectors")["items"]]

    dictionaries = {
        "targets": ["seed-web", web["id"]], "certificates": ["seed-cert"], "deployments": [deployment], "connectors": connectors,
        "disposable-targets": gone, "disposable-certificates": ["seed-gone-cert"], "replaceable-targets": replaced,
        "queued-deployments": held,
    }
    # (operation or "" for every operation, path parameter, dictionary): half of the generated values come from it.
    bindings = [
        ("", "target", "targets"), ("", "name", "certificates"), ("", "id", "deployments"),
        ("DELETE /api/v1/targets/{target}", "target", "disposable-targets"),
        ("DELETE /api/v1/certificates/{name}", "name", "disposable-certificates"),
        ("PUT /api/v1/targets/{target}", "target", "replaceable-targets"),
        ("POST /api/v1/deployments/{id}/cancel", "id", "queued-deployments"),
        ("GET /api/v1/connectors/{id}", "id", "connectors"),
    ]
    lines = ["# Written by scripts/schemathesis_seed.py for one run.", ""]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {toml_list(values)}"]
    lines += ["", "[parameters]"]
    lines += [f'"path.{param}" = {{ dictionary = "{dictionary}", probability = 0.5 }}' for op, param, dictionary in bindings if not op]
    for op, param, dictionary in bindings:
        if op:
            lines += ["", "[[operations]]", f"include-name = {json.dumps(op)}",
                      f'parameters = {{ "path.{param}" = {{ dictionary = "{dictionary}", probability = 0.5 }} }}']
    config = "\n".join(lines) + "\n"
    (work / "schemathesis.toml").write_text(config)
    print(f"seeded: certificates seed-cert, seed-gone-cert; targets seed-web ({web['id']}), {', '.join(gone)}; "
          f"seed-put-1/2, seed-stuck; deployment {deployment}, held {', '.join(held)}")


if __name__ == "__main__":
    main()
