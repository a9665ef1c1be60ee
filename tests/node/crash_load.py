"""Load generator for the kill -9 crash test (``test_crash.py`` runs it as a subprocess).

    python crash_load.py CONFIG.json

CONFIG holds ``data_dir``, ``producer_seed`` and ``signer_seeds`` (hex; keys of agencies with
the notary role) and ``record`` (a file path). The script opens the city's embedded node with the
built-in contracts, reads each signer's next nonce from the chain (so a restart after a kill
resumes where the ledger stands), prints ``ready`` and then, until it is killed, has every signer
anchor fresh digests, each keeping a few transactions in flight.

Only after a receipt has been returned does the script append ``<tx id> <height> <leaf index>``
to the record file, flushed and fsynced, under one lock. A line in that file is therefore a
promise the node made; the test checks the ledger kept every one of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from civicledger.contracts.registry import default_registry
from civicledger.crypto.keys import PrivateKey
from civicledger.ledger.receipt import Receipt
from civicledger.ledger.tx import sign_tx
from civicledger.node.embedded import EmbeddedNode

IN_FLIGHT = 4
EXPIRES_AT = 2**53 - 1


class Recorder:
    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="ascii")
        self._lock = threading.Lock()

    def committed(self, receipt: Receipt) -> None:
        line = f"{receipt.tx_id} {receipt.height} {receipt.leaf_index}\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())


def run_signer(node: EmbeddedNode, key: PrivateKey, recorder: Recorder) -> None:
    did = key.public.did
    nonce = node.chain.last_nonce(did) + 1
    pending: deque[Future[Receipt]] = deque()
    while True:
        while len(pending) < IN_FLIGHT:
            digest = hashlib.sha256(f"{did}/{nonce}".encode()).hexdigest()
            tx = sign_tx(
                key,
                chain_id=node.chain.chain_id,
                nonce=nonce,
                contract="notary",
                method="anchor",
                args={"digest": digest, "label": f"crash test {nonce}"},
                expires_at=EXPIRES_AT,
            )
            pending.append(node.submit_nowait(tx))
            nonce += 1
        receipt = pending.popleft().result(60)
        if not receipt.ok:
            raise SystemExit(f"unexpected failed receipt: {receipt}")
        recorder.committed(receipt)


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    producer = PrivateKey.from_seed(bytes.fromhex(config["producer_seed"]))
    node = EmbeddedNode(
        Path(config["data_dir"]),
        producer,
        registry=default_registry(),
        max_block_txs=16,
        block_interval=0.003,
        verify_workers=1,
    )
    recorder = Recorder(Path(config["record"]))
    signers = [PrivateKey.from_seed(bytes.fromhex(seed)) for seed in config["signer_seeds"]]

    def guarded(key: PrivateKey) -> None:
        try:
            run_signer(node, key, recorder)
        except BaseException as e:  # noqa: BLE001  (reported, then the whole process exits)
            print(f"signer failed: {e!r}", file=sys.stderr, flush=True)
            os._exit(2)

    threads = [threading.Thread(target=guarded, args=(key,), daemon=True) for key in signers]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
