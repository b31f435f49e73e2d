"""Benchmark app: imports a typical set of stdlib modules, uses them a
little, then serves HTTP. Prints 'python app ready ...' once it listens."""
import argparse
import asyncio
import base64
import collections
import concurrent.futures
import csv
import dataclasses
import datetime
import decimal
import email.message
import email.utils
import functools
import gzip
import hashlib
import hmac
import html
import http.server
import io
import itertools
import json
import logging
import os
import pathlib
import random
import re
import secrets
import shutil
import socketserver
import sqlite3
import ssl
import statistics
import string
import subprocess
import tempfile
import textwrap
import threading
import time
import typing
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
import zipfile

PORT = int(os.environ.get("PORT", "18090"))
log = logging.getLogger("app")
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


@dataclasses.dataclass
class Item:
    id: int
    name: str
    price: decimal.Decimal


def warm_up() -> dict:
    db = sqlite3.connect(":memory:")
    db.execute("create table items (id integer primary key, name text, price text)")
    items = [Item(i, "".join(random.choices(string.ascii_lowercase, k=8)), decimal.Decimal(i) / 7) for i in range(200)]
    db.executemany("insert into items values (?, ?, ?)", [(i.id, i.name, str(i.price)) for i in items])
    total = sum(decimal.Decimal(r[0]) for r in db.execute("select price from items"))
    buf = io.StringIO()
    csv.writer(buf).writerows((i.id, i.name) for i in items[:10])
    root = ET.fromstring("<cfg><opt k='a'>1</opt><opt k='b'>2</opt></cfg>")
    msg = email.message.EmailMessage()
    msg["Subject"] = "ready"
    msg["Date"] = email.utils.formatdate()
    ctx = ssl.create_default_context()
    digest = hmac.new(secrets.token_bytes(16), gzip.compress(buf.getvalue().encode()), hashlib.sha256).hexdigest()
    with tempfile.TemporaryDirectory() as d:
        p = pathlib.Path(d, "x.zip")
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("a.json", json.dumps({"total": str(total)}))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    return {
        "total": str(total),
        "opts": {o.get("k"): o.text for o in root},
        "digest": digest,
        "ca_certs": len(ctx.get_ca_certs()),
        "mean": statistics.mean(range(100)),
        "uuid": str(uuid.uuid4()),
        "q": urllib.parse.urlencode({"a": 1}),
        "b64": base64.b64encode(b"x").decode(),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    state: dict = {}

    def do_GET(self):
        body = json.dumps({"path": html.escape(self.path), "state": self.state}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        log.info("%s " + fmt, self.client_address[0], *args)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    t0 = time.monotonic()
    Handler.state = warm_up()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"python app ready on :{args.port} (warm-up {time.monotonic() - t0:.3f} s)", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
