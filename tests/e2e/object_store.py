"""An S3-compatible object store on loopback (Versity's gateway over a folder), the shared
state backend a team uses, for the e2e suite."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster.cluster import free_port

from tests.e2e.harness import BIN_DIR

BUCKET = "platform-state"
REGION = "us-east-1"


@dataclass
class ObjectStore:
    directory: Path
    access_key: str = field(default_factory=lambda: "e2e" + secrets.token_hex(6))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    port: int = 0
    process: subprocess.Popen | None = None
    # With accounts besides the root (the gateway's own IAM, in a folder): `reader`.
    iam: bool = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend_url(self) -> str:
        """The URL `pulumi login` takes for this store: the CLI's object-store backend wants a
        custom endpoint, path-style addressing (no bucket subdomains on loopback) and a region."""
        return self.bucket_url(BUCKET)

    def bucket_url(self, bucket: str) -> str:
        """The backend URL of another bucket of the store (made if new): a backend of its own."""
        (self.directory / "root" / bucket).mkdir(parents=True, exist_ok=True)
        return f"s3://{bucket}?endpoint={self.endpoint}&s3ForcePathStyle=true&region={REGION}"

    def credentials(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_REGION": REGION}

    def start(self, timeout: float = 30) -> "ObjectStore":
        root = self.directory / "root"
        (root / BUCKET).mkdir(parents=True, exist_ok=True)  # each folder of the root is a bucket
        self.port = free_port()  # from this process's range, like its cluster's
        log = open(self.directory / "versitygw.log", "wb")
        iam = ["--iam-dir", str(self.directory / "iam")] if self.iam else []
        if self.iam:
            (self.directory / "iam").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [str(BIN_DIR / "versitygw"), "--port", f"127.0.0.1:{self.port}", *iam, "posix", str(root)],
            env={"ROOT_ACCESS_KEY_ID": self.access_key, "ROOT_SECRET_ACCESS_KEY": self.secret_key,
                 "PATH": "/usr/bin:/bin"},
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"versitygw exited {self.process.returncode}:\n"
                                   + (self.directory / "versitygw.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(self.endpoint, timeout=1)
                return self
            except urllib.error.HTTPError:  # answering (403 without credentials): up
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"versitygw did not answer on {self.endpoint} within {timeout}s")

    def client(self, credentials: dict[str, str] | None = None):
        """An S3 client of the store, as the root account or with `credentials`."""
        import boto3
        from botocore.config import Config

        credentials = credentials or self.credentials()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                            config=Config(s3={"addressing_style": "path"}))

    def reader(self, bucket: str = BUCKET) -> dict[str, str]:
        """The credentials of a new account that may read `bucket` (get, list) and write
        nothing: a plain user of the gateway's IAM, granted by the bucket's policy, as the
        `-read` environments' state identity is in SECURITY.md."""
        assert self.iam, "the store was started without accounts (iam=False)"
        access, secret = "reader" + secrets.token_hex(6), secrets.token_hex(20)
        subprocess.run([str(BIN_DIR / "versitygw"), "admin", "--access", self.access_key,
                        "--secret", self.secret_key, "--endpoint-url", self.endpoint,
                        "create-user", "--access", access, "--secret", secret, "--role", "user"],
                       check=True, capture_output=True, text=True, timeout=30)
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": [access]},
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        return {**self.credentials(), "AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}

    def objects(self, bucket: str = BUCKET) -> dict[str, str]:
        """Every object of `bucket` by key, with its ETag: what changed in it shows."""
        listing = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"]: o["ETag"] for page in listing for o in page.get("Contents", [])}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
