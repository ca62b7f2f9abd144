"""An independent check of Theory's attestations, written against the public specifications
only and built on maintained libraries from PyPI: securesystemslib (DSSE envelopes, Ed25519
keys), in-toto-attestation (the Statement v1 model and its validation), blake3 and sqlite3.

For each execution it checks that
  - the DSSE envelope's signature verifies with the given public key (key id computed here);
  - the payload is a valid in-toto Statement v1 with Theory's receipt predicate;
  - every subject's bytes in the store hash to its digest, and the subjects are exactly the
    outputs the run's index lists;
  - the predicate is the receipt stored beside it, of the run asked about;
  - the ledger holds the run's admission at the position the receipt records, records it as a
    success with these outputs, and records that this key signed it.

Usage: verify_attestation.py --key PUBLIC.pem --store DIR --ledger FILE EXECUTION...
(DIR: the local store's root, holding artifacts/; FILE: the SQLite ledger; EXECUTION: a run
that wrote its records — a memo-cache hit wrote none, check the run it reused). Prints one line
per run, "ok <id>" or "FAIL <id>: <reasons>"; exits 1 when any run fails. A run finished before
the ledger recorded signers (no "signed_by" in its execution.finished entry) is checked without
that one witness, and its line says so.
"""

import argparse
import base64
import json
import os
import sqlite3
import sys

import blake3
from cryptography.hazmat.primitives import serialization
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

PREDICATE_TYPE = "https://theory.dev/attestation/receipt/v1"


def load_key(path):
    with open(path, "rb") as file:
        public = serialization.load_pem_public_key(file.read())
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    keyid = "ed25519:" + blake3.blake3(raw).hexdigest()[:32]
    return SSlibKey.from_crypto(public, keyid=keyid)


def file_digest(path):
    hasher = blake3.blake3()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def check(execution, key, store, ledger):
    folder = os.path.join(store, "artifacts", "execution", execution)
    with open(os.path.join(folder, "attestation.json"), "rb") as file:
        envelope = Envelope.from_dict(json.load(file))
    if envelope.payload_type != "application/vnd.in-toto+json":
        return [f"payloadType {envelope.payload_type}"]
    try:
        envelope.verify([key], 1)
    except Exception as error:  # securesystemslib raises VerificationError
        return [f"signature: {type(error).__name__}: {error}"]
    document = json.loads(envelope.payload)
    statement = Statement.copy_from_pb(json_format.ParseDict(document, statement_pb2.Statement()))
    statement.validate()
    problems = []
    if document["predicateType"] != PREDICATE_TYPE:
        problems.append(f"predicateType {document['predicateType']}")
    with open(os.path.join(folder, "outputs.json"), "rb") as file:
        index = json.load(file)
    listed = [(output["path"], output["cid"].removeprefix("b3:")) for output in index["outputs"]]
    signed = [(subject["name"], subject["digest"]["blake3"]) for subject in document["subject"]]
    if listed != signed:
        problems.append("the subjects are not the outputs the index lists")
    for name, digest in signed:
        path = os.path.join(store, name.lstrip("/"))
        if not os.path.isfile(path):
            problems.append(f"{name} is missing")
        elif file_digest(path) != digest:
            problems.append(f"{name} does not hash to its subject's digest")
    with open(os.path.join(folder, "determinism.json"), "rb") as file:
        receipt = json.load(file)
    predicate = document["predicate"]
    if receipt != predicate:
        fields = sorted(k for k in set(receipt) | set(predicate) if receipt.get(k) != predicate.get(k))
        problems.append("the receipt differs from the signed predicate in " + ", ".join(fields))
    if predicate.get("execution_id") != execution:
        problems.append(f"the attestation is of execution {predicate.get('execution_id')}")
    problems.extend(check_ledger(ledger, execution, predicate, signed, key.keyid))
    return problems


def check_ledger(ledger, execution, predicate, signed, keyid):
    """What the ledger holds of the run: its admission at the signed position, its success with
    the signed outputs, and the key that signed it (in its execution.finished event)."""
    problems = []
    position = predicate.get("ledger_position")
    row = ledger.execute("SELECT kind, execution_id FROM events WHERE seq = ?", (position,)).fetchone()
    if row != ("execution.started", execution):
        problems.append(f"the ledger does not hold the run's admission at position {position}")
    row = ledger.execute("SELECT status, envelope FROM executions WHERE id = ?", (execution,)).fetchone()
    if row is None or row[0] != "success":
        problems.append("the ledger does not record the run as a success")
    else:
        envelope = json.loads(row[1])
        recorded = [(output["path"], output["cid"].removeprefix("b3:")) for output in envelope["outputs"]]
        if recorded != signed:
            problems.append("the ledger records other outputs than the signed subjects")
    row = ledger.execute(
        "SELECT body FROM events WHERE execution_id = ? AND kind = 'execution.finished' ORDER BY seq DESC LIMIT 1",
        (execution,),
    ).fetchone()
    if row is None:
        problems.append("the ledger has no execution.finished entry for the run")
    else:
        body = json.loads(row[0])
        if "signed_by" not in body:
            print(f"note: the ledger predates recording signers; {execution}'s signer is not cross-checked")
        elif body["signed_by"] != keyid:
            problems.append(f"the ledger does not record the run as signed by {keyid}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--ledger", required=True)
    parser.add_argument("executions", nargs="+")
    args = parser.parse_args()
    key = load_key(args.key)
    ledger = sqlite3.connect(f"file:{args.ledger}?mode=ro", uri=True)
    failed = 0
    for execution in args.executions:
        try:
            problems = check(execution, key, args.store, ledger)
        except Exception as error:  # a record that cannot be read is a failure, said
            problems = [f"{type(error).__name__}: {error}"]
        if problems:
            failed += 1
            print(f"FAIL {execution}: " + "; ".join(problems))
        else:
            print(f"ok {execution}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
