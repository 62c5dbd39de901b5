"""Every bad input a careless or hostile user can type gets one `error:` line, a non-zero
exit status, no traceback, and changes nothing: the chain (block number, balances, nonces,
job count, job states) and the files under FRAMECAST_HOME are the same afterwards.

One table (`CASES`) of commands against a real anvil with the real contracts and a world of
jobs in every state a client meets (open, claimed, delivered, disputed, settled,
cancelled, another client's). Each case runs through the console script's entry point
(`framecast.client.cli.main`, the one error boundary) in this process; the same table runs
through the installed console script in subprocesses under the `slow` mark.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from framecast.client.cli import main, root
from framecast.client.devnet import devnet_account
from framecast.shared.chain.bindings import DisputeReason
from framecast.shared.chain.connection import connect
from framecast.shared.deployment import Deployment
from framecast.shared.ipfs import cid_of_path, parse_cid
from framecast.shared.keystore import Secret, encrypt_key, write_keystore
from framecast.shared.provider_metadata import ProviderOffer
from tests.chain.conftest import FCC, fund_market, register, signed_job
from tests.client.conftest import FRAMECAST, PASSWORD, TEST_SCRYPT_N
from tests.conftest import Chain

ACCOUNTS = ("alice", "bob", "provider-1", "provider-2", "arbiter")
BIG = "a" * 100_000  # under the kernel's 128 KiB limit for one argument
NOT_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")  # what Python makes of such argv


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` (``{name}`` filled from the world), what the one line says."""

    id: str
    args: tuple[str, ...]
    says: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def case(id: str, *args: str, says: str | tuple[str, ...] = (), **env: str) -> Case:
    return Case(id, args, (says,) if isinstance(says, str) else says, env)


CASES: list[Case] = [
    # --- jobs that do not exist, or whose state does not allow the action
    case("cancel-missing", "cancel", "{missing}", says="job {missing} does not exist"),
    case("dispute-missing", "dispute", "{missing}", "--reason", "hash-mismatch",
         says="job {missing} does not exist"),
    case("dispute-missing-verify", "dispute", "{missing}", says="job {missing} does not exist"),
    case("reclaim-missing", "reclaim", "{missing}", says="job {missing} does not exist"),
    case("status-missing", "status", "{missing}", says="job {missing} does not exist"),
    case("fetch-missing", "fetch", "{missing}", says="job {missing} does not exist"),
    case("verify-missing", "verify", "{missing}", says="job {missing} does not exist"),
    case("cancel-claimed", "cancel", "{claimed}", says="job {claimed} is Claimed"),
    case("cancel-delivered", "cancel", "{delivered}", says="job {delivered} is Delivered"),
    case("cancel-disputed", "cancel", "{disputed}", says="job {disputed} is Disputed"),
    case("cancel-settled", "cancel", "{settled}", says="job {settled} is Settled"),
    case("cancel-cancelled", "cancel", "{cancelled}", says="job {cancelled} is Cancelled"),
    case("cancel-not-mine", "cancel", "{bob_open}", says="is not the client of job {bob_open}"),
    case("dispute-open", "dispute", "{open}", "--reason", "hash-mismatch",
         says="job {open} is Open"),
    case("dispute-claimed", "dispute", "{claimed}", "--reason", "spec-mismatch",
         says="job {claimed} is Claimed"),
    case("dispute-settled", "dispute", "{settled}", "--reason", "hash-mismatch",
         says="job {settled} is Settled"),
    case("dispute-cancelled", "dispute", "{cancelled}", "--reason", "hash-mismatch",
         says="job {cancelled} is Cancelled"),
    case("dispute-disputed", "dispute", "{disputed}", "--reason", "hash-mismatch",
         says="job {disputed} is Disputed"),
    case("reclaim-open-early", "reclaim", "{open}", says="its claim deadline is in"),
    case("reclaim-claimed-early", "reclaim", "{claimed}", says="its delivery deadline is in"),
    case("reclaim-settled", "reclaim", "{settled}", says="job {settled} is Settled"),
    case("reclaim-cancelled", "reclaim", "{cancelled}", says="job {cancelled} is Cancelled"),
    # --- commands and options that are not there
    case("unknown-command", "nope", says="No such command 'nope'"),
    case("missing-option", "credits", "deposit", says="--amount"),
    case("unknown-option", "status", "1", "--colour", says="--colour"),
    # --- job ids
    case("cancel-zero", "cancel", "0", says="not a job id"),
    case("cancel-negative", "cancel", "--", "-1", says="not a job id"),
    case("cancel-word", "cancel", "abc", says="not a job id"),
    case("cancel-huge", "cancel", "9" * 100, says="not a job id"),
    case("status-past-uint256", "status", str(2**256), says="not a job id"),
    case("status-unicode-digits", "status", "١٢", says="not a job id"),
    case("verify-huge", "verify", "9" * 80, says="not a job id"),
    case("dispute-bad-reason", "dispute", "{delivered}", "--reason", "because",
         says="--reason"),
    # --- amounts
    case("deposit-nan", "credits", "deposit", "--amount", "NaN", says="not a finite amount"),
    case("deposit-inf", "credits", "deposit", "--amount", "inf", says="not a finite amount"),
    case("deposit-negative", "credits", "deposit", "--amount", "-1", says="greater than zero"),
    case("deposit-zero", "credits", "deposit", "--amount", "0", says="greater than zero"),
    case("deposit-empty", "credits", "deposit", "--amount", "", says="not a decimal number"),
    case("deposit-word", "credits", "deposit", "--amount", "lots", says="not a decimal number"),
    case("deposit-too-fine", "credits", "deposit", "--amount", "1e-19",
         says="more than 18 decimals"),
    case("deposit-astronomic", "credits", "deposit", "--amount", "1e61", says="far larger"),
    case("deposit-more-than-held", "credits", "deposit", "--amount", "1e30",
         says="1,000,000,000,000,000,000,000,000,000,000 FCC are needed"),
    case("withdraw-more-than-free", "credits", "withdraw", "--amount",
         "1000000000000000000000000000000.000000000000000001",
         says="1,000,000,000,000,000,000,000,000,000,000.000000000000000001 FCC are needed"),
    case("withdraw-to-empty", "credits", "withdraw", "--amount", "1", "--to", "",
         says="--to"),
    case("withdraw-to-junk", "credits", "withdraw", "--amount", "1", "--to", "0x12",
         says="--to"),
    case("balance-address-empty", "credits", "balance", "--address", "", says="--address"),
    case("balance-address-junk", "credits", "balance", "--address", "0xzz", says="--address"),
    case("register-bond-nan", "node", "register", "--config", "{node_toml}", "--bond", "NaN",
         says="not a finite amount"),
    case("register-bond-inf", "node", "register", "--config", "{node_toml}", "--bond", "inf",
         says="not a finite amount"),
    case("register-bond-negative", "node", "register", "--config", "{node_toml}", "--bond",
         "-5", says="greater than zero"),
    case("register-bond-huge", "node", "register", "--config", "{node_toml}", "--bond", "1e30",
         says="1,000,000,000,000,000,000,000,000,000,000 FCC"),
    case("register-bond-too-fine", "node", "register", "--config", "{node_toml}", "--bond",
         "12345678901234567890.1234567890123456789", says="more than 18 decimals"),
    # --- the spec
    case("prompt-empty", "submit", "--prompt", "", "--model", "tiny-cogvideox",
         says="prompt"),
    case("prompt-huge", "submit", "--prompt", BIG, "--model", "tiny-cogvideox",
         says="prompt"),
    case("prompt-not-utf8", "submit", "--prompt", NOT_UTF8, "--model", "tiny-cogvideox",
         says="prompt"),
    case("negative-huge", "submit", "--prompt", "x", "--negative", BIG, "--model",
         "tiny-cogvideox", says="negative_prompt"),
    case("model-unknown", "submit", "--prompt", "x", "--model", "nope", says="nope"),
    case("model-not-utf8", "submit", "--prompt", "x", "--model", NOT_UTF8,
         says="known models"),
    case("style-unknown", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--style",
         "nope", says="style"),
    case("guidance-nan", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--guidance",
         "NaN", says="guidance"),
    case("guidance-snan", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--guidance", "sNaN", says="guidance"),
    case("guidance-inf", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--guidance",
         "-inf", says="guidance"),
    case("guidance-overflow", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--guidance", "1e999999", says="guidance"),
    case("guidance-negative", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--guidance", "-1", says="guidance"),
    case("guidance-word", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--guidance", "high", says="guidance"),
    case("frames-negative", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--frames", "-1", says="num_frames"),
    case("frames-huge", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--frames",
         "9" * 30, says="num_frames"),
    case("fps-nan", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--fps", "nan",
         says="--fps"),
    case("width-zero", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--width", "0",
         says="width"),
    case("height-float", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--height",
         "32.5", says="--height"),
    case("steps-huge", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--steps",
         "100000000000", says="steps"),
    case("seed-negative", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--seed",
         "-1", says="--seed"),
    case("seed-huge", "submit", "--prompt", "x", "--model", "tiny-cogvideox", "--seed",
         "9" * 30, says="seed"),
    case("replicas-zero", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--replicas", "0", says="replicas"),
    case("replicas-negative", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--replicas", "-3", says="replicas"),
    case("perceptual-alone", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--perceptual", says="perceptual"),
    case("max-price-nan", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--max-price", "nan", says="--max-price"),
    case("max-price-unaffordable", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--max-price", "1e30", says=("1,000,000,000,000,000,000,000,000,000,000 FCC",
         "--amount 999999999999999999999999999908`")),
    case("claim-timeout-float", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--claim-timeout", "1e9", says="--claim-timeout"),
    case("delivery-window-huge", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--delivery-window", "99999999999", says="--delivery-window"),
    case("image-missing", "submit", "--prompt", "x", "--model", "tiny-cogvideox-i2v",
         "--image", "{files}/missing.png", says="--image"),
    case("image-directory", "submit", "--prompt", "x", "--model", "tiny-cogvideox-i2v",
         "--image", "{files}", says="--image"),
    case("image-for-text-model", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--image", "{files}/bad.toml", says="takes no input image"),
    # --- wallets and passwords
    case("password-wrong-env", "credits", "faucet", says="wrong password",
         FRAMECAST_PASSWORD="wrong"),
    case("password-file-wrong", "credits", "deposit", "--amount", "1", "--password-file",
         "{files}/wrong.txt", says="wrong password"),
    case("password-file-empty", "credits", "deposit", "--amount", "1", "--password-file",
         "{files}/empty.txt", says="wrong password"),
    case("password-file-not-utf8", "credits", "deposit", "--amount", "1", "--password-file",
         "{files}/not-utf8.bin", says="not UTF-8"),
    case("password-file-missing", "credits", "deposit", "--amount", "1", "--password-file",
         "{files}/missing.txt", says="does not exist"),
    case("password-file-directory", "credits", "deposit", "--amount", "1", "--password-file",
         "{files}", says="--password-file"),
    case("wallet-unknown", "wallet", "address", "--wallet", "nope", says="no wallet named"),
    case("wallet-empty", "credits", "balance", "--wallet", "", says="--wallet"),
    case("wallet-name-path", "wallet", "new", "--name", "../evil", says="not a valid wallet"),
    case("wallet-name-not-utf8", "wallet", "new", "--name", NOT_UTF8,
         says="not a valid wallet"),
    case("wallet-name-taken", "wallet", "new", "--name", "alice", says="already exists"),
    case("import-key-not-utf8", "wallet", "import", "--name", "k", "--private-key-file",
         "{files}/not-utf8.bin", says="not UTF-8"),
    case("import-key-junk", "wallet", "import", "--name", "k", "--private-key-file",
         "{files}/wrong.txt", says="private key"),
    case("import-key-directory", "wallet", "import", "--name", "k", "--private-key-file",
         "{files}", says="--private-key-file"),
    case("import-devnet-unknown", "wallet", "import", "--devnet", "mallory",
         says="no devnet account"),
    # --- networks, deployments, RPC
    case("jobs-limit-zero", "jobs", "--limit", "0", says="--limit"),
    case("deployment-missing", "credits", "balance", "--deployment", "{files}/missing.json",
         says="no deployment file"),
    case("deployment-not-json", "credits", "balance", "--deployment", "{files}/bad.toml",
         says="is invalid"),
    case("deployment-not-utf8", "credits", "balance", "--deployment", "{files}/not-utf8.bin",
         says="is invalid"),
    case("deployment-wrong-chain", "credits", "balance", "--deployment",
         "{files}/other-chain.json", says="chain"),
    case("rpc-empty", "credits", "balance", "--rpc-url", "", says="--rpc-url"),
    case("rpc-down", "credits", "balance", "--rpc-url", "http://127.0.0.1:9",
         says="gave no usable answer"),
    case("settings-nan", "credits", "balance", says="source_timeout_s",
         FRAMECAST_SOURCE_TIMEOUT_S="nan"),
    case("network-show-unknown", "network", "show", "nope", says="unknown network"),
    case("network-remove-registry", "network", "remove", "local", says="no user network"),
    case("cid-missing", "cid", "{files}/missing.png", says="does not exist"),
    # --- node configs and node options
    case("node-config-bad-toml", "node", "status", "--config", "{files}/bad.toml",
         says=("bad.toml", "line 2, column 5")),
    case("node-config-not-utf8", "node", "status", "--config", "{files}/not-utf8.bin",
         says=("not UTF-8", "line 1, column 1")),
    case("node-config-directory", "node", "status", "--config", "{files}",
         says="is a directory"),
    case("node-config-missing", "node", "status", "--config", "{files}/missing.toml",
         says="does not exist"),
    case("node-config-inf", "node", "status", "--config", "{files}/node-inf.toml",
         says="job_timeout_s"),
    case("node-config-unknown-field", "node", "status", "--config",
         "{files}/node-extra.toml", says="colour"),
    case("node-run-grace-nan", "node", "run", "--config", "{node_toml}", "--grace", "nan",
         says="--grace"),
    case("node-run-grace-negative", "node", "run", "--config", "{node_toml}", "--grace", "-1",
         says="--grace"),
    case("arbiter-poll-nan", "arbiter", "run", "--config", "{node_toml}", "--poll", "nan",
         says="--poll"),
    case("arbiter-poll-zero", "arbiter", "run", "--config", "{node_toml}", "--poll", "0",
         says="--poll"),
    case("arbiter-decide-huge", "arbiter", "decide", "9" * 90, "--config", "{node_toml}",
         says="not a job id"),
    case("replay-timeout-inf", "node", "replay", "{delivered}", "--config", "{node_toml}",
         "--timeout", "inf", says="--timeout"),
    case("replay-missing", "node", "replay", "{missing}", "--config", "{node_toml}",
         says="{missing}"),
    case("models-pull-unknown", "node", "models", "pull", "nope", "--config", "{node_toml}",
         says="nope"),
    # --- commands and options added with fine-tuning, the explorer, the catalog tools
    case("dataset-pack-missing", "dataset", "pack", "{files}/no-such-dir", "--model",
         "tiny-cogvideox", says="no-such-dir"),
    case("dataset-pack-file", "dataset", "pack", "{files}/bad.toml", "--model",
         "tiny-cogvideox", says="bad.toml"),
    case("dataset-pack-stray-files", "dataset", "pack", "{files}", "--model", "tiny-cogvideox",
         says="{files}"),
    case("dataset-pack-model-unknown", "dataset", "pack", "{files}", "--model", "nope",
         says="nope"),
    case("dataset-pack-frames-negative", "dataset", "pack", "{files}", "--model",
         "tiny-cogvideox", "--frames", "-3", says="frames"),
    case("submit-dataset-not-cid", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--dataset", "nope", says="--dataset"),
    case("submit-lora-not-cid", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--lora", "nope", says="--lora"),
    case("submit-rank-without-dataset", "submit", "--prompt", "x", "--model",
         "tiny-cogvideox", "--rank", "4", says="--dataset"),
    case("submit-video-missing", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--video", "{files}/missing.mp4", says="--video"),
    case("submit-control-wrong-model", "submit", "--prompt", "x", "--model", "tiny-cogvideox",
         "--control", "{files}/bad.toml", says="control"),
    case("catalog-pin-unknown", "catalog", "pin", "nope", says="nope"),
    case("catalog-fit-card-zero", "catalog", "fit", "--card", "0", says="--card"),
    case("explorer-db-unreachable", "explorer", "--db", "postgresql://u@127.0.0.1:1/db",
         says="127.0.0.1:1"),
    case("explorer-port-huge", "explorer", "--port", "99999", says="--port"),
    case("node-doctor-bad-toml", "node", "doctor", "--config", "{files}/bad.toml",
         says="bad.toml"),
]  # fmt: skip


@dataclass
class World:
    chain: Chain
    home: Path
    files: Path
    deployment_file: Path
    jobs: dict[str, int]

    def fill(self, text: str) -> str:
        names = {
            **{k: str(v) for k, v in self.jobs.items()},
            "files": str(self.files),
            "node_toml": str(self.files / "node.toml"),
        }
        for name, value in names.items():
            text = text.replace("{" + name + "}", value)
        return text

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "FRAMECAST_HOME": str(self.home),
            "FRAMECAST_DEPLOYMENT": str(self.deployment_file),
            "FRAMECAST_KEYSTORE_SCRYPT_N": str(TEST_SCRYPT_N),
            "FRAMECAST_PASSWORD": PASSWORD,
            "NO_COLOR": "1",
            **extra,
        }

    def snapshot(self, *, full: bool = False) -> dict[str, Any]:
        """What a bad input must not change: the chain and every file we own.

        The chain changes only by mined transactions (anvil mines each at once): the latest
        block's number and hash say whether any was. ``full`` also reads every balance,
        nonce and job (dozens of RPC calls; the console-script variant pays them).
        """
        chain = self.chain
        latest = chain.w3.eth.get_block("latest")
        state: dict[str, Any] = {"block": (latest["number"], bytes(latest["hash"]))}
        files = {}
        for folder in (self.home, self.files):
            for path in sorted(folder.rglob("*")):
                files[str(path)] = (
                    hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
                )
        state["files"] = files
        if full:
            market, credits = chain.market(), chain.credits()
            for name in ACCOUNTS:
                address = chain.account(name).address
                state[name] = (
                    chain.w3.eth.get_balance(address),
                    chain.w3.eth.get_transaction_count(address),
                    credits.balance_of(address),
                    market.free_balance_of(address),
                )
            state["next_job_id"] = market.next_job_id()
            state["jobs"] = {
                k: market.get_job(v).state for k, v in self.jobs.items() if k != "missing"
            }
        return state


def _write_files(files: Path, deployment: Deployment, home: Path) -> None:
    files.mkdir()
    (files / "bad.toml").write_text('models = ["tiny-cogvideox"]\nx = = 1\n')
    (files / "not-utf8.bin").write_bytes(b"\xff\xfe\x00junk")
    (files / "wrong.txt").write_text("not the password\n")
    (files / "empty.txt").write_text("")
    other = deployment.model_copy(update={"chain_id": deployment.chain_id + 1})
    other.save(files / "other-chain.json")
    deployment.save(files / "deployment.json")
    # A node config for provider-2 (not registered), its keystore written directly with
    # the test scrypt cost (`node init` would also build weights: seconds).
    keystore = home / "node" / "provider.json"
    document = encrypt_key(
        bytes(devnet_account("provider-2").key), Secret(PASSWORD), scrypt_n=TEST_SCRYPT_N
    )
    write_keystore(keystore, document)
    (files / "password.txt").write_text(PASSWORD + "\n")
    node = (
        f'deployment = "{files / "deployment.json"}"\n'
        f'keystore = "{keystore}"\n'
        f'password_file = "{files / "password.txt"}"\n'
        'models = ["tiny-cogvideox"]\n'
        f'weights_dir = "{home / "node" / "weights"}"\n'
        f'state_dir = "{home / "node" / "state"}"\n'
        'runtime = "process"\n'
        "confirmations = 0\n"
    )
    (files / "node.toml").write_text(node)
    (files / "node-inf.toml").write_text(node + "job_timeout_s = inf\n")
    (files / "node-extra.toml").write_text(node + 'colour = "blue"\n')


@pytest.fixture(scope="module")
def world(
    anvil_url: str, deployment: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Jobs in every state a client meets, alice's wallet in a home of its own."""
    w3 = connect(anvil_url, expected_chain_id=deployment.chain_id)
    base = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    chain = Chain(w3, deployment)
    top = tmp_path_factory.mktemp("bad-input")
    home, files = top / "home", top / "files"
    _write_files(files, deployment, home)
    env = World(chain, home, files, files / "deployment.json", {}).env({})
    imported = CliRunner().invoke(root, ["wallet", "import", "--devnet", "alice"], env=env)
    assert imported.exit_code == 0, imported.output
    fund_market(chain, "alice", 100 * FCC)
    fund_market(chain, "bob", 100 * FCC)
    register(chain, "provider-1")
    # An offer for the tiny model, so that a submit's quote finds a provider (no warning).
    offer = ProviderOffer(models=["tiny-cogvideox"], price_per_unit=1000)
    chain.market("provider-1").update_metadata(offer.to_uri())
    market_alice, market_p1 = chain.market("alice"), chain.market("provider-1")
    nonce = iter(range(100))

    def submit(client: str = "alice") -> int:
        job = signed_job(chain, client, max_price=FCC, nonce=next(nonce))
        job_id, _ = chain.market(client).submit_job(job.request, job.spec_bytes, job.signature)
        return job_id

    cid_file = files / "result.bin"
    cid_file.write_bytes(b"a result")
    cid = bytes(parse_cid(cid_of_path(cid_file)))

    def deliver(job_id: int) -> None:
        market_p1.claim_job(job_id, FCC // 2)
        market_p1.deliver(job_id, cid, b"\x01" * 32, b"\x02" * 32)

    jobs = {"open": submit(), "claimed": submit(), "bob_open": submit("bob")}
    market_p1.claim_job(jobs["claimed"], FCC // 2)
    jobs["cancelled"] = submit()
    market_alice.cancel_job(jobs["cancelled"])
    jobs["settled"] = submit()
    deliver(jobs["settled"])
    jobs["disputed"] = submit()
    deliver(jobs["disputed"])
    chain.credits("alice").approve(deployment.market, 10 * FCC)
    market_alice.dispute(jobs["disputed"], DisputeReason.HASH_MISMATCH, b"\0" * 32)
    chain.warp(deployment.params.challenge_window + 1)
    market_p1.settle(jobs["settled"])
    jobs["delivered"] = submit()
    deliver(jobs["delivered"])
    jobs["missing"] = chain.market().next_job_id() + 1000
    yield World(chain, home, files, files / "deployment.json", jobs)
    w3.provider.make_request("evm_revert", [base])  # type: ignore[arg-type]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def _in_process(world: World, case: Case) -> Outcome:
    args = [world.fill(a) for a in case.args]
    runner = CliRunner()
    with runner.isolation(env=world.env(case.env)) as (out, err, _both):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # what the boundary let through: a traceback for the user
            err.write(traceback.format_exc().encode())
            code = -1
        return Outcome(
            code, out.getvalue().decode(errors="replace"), err.getvalue().decode(errors="replace")
        )


def _console_script(world: World, case: Case) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAMECAST_", "ETH_"))}
    # argv travels as bytes: a NOT_UTF8 argument reaches the script as the raw bytes.
    args = [os.fsencode(world.fill(a)) for a in case.args]
    done = subprocess.run(
        [os.fsencode(FRAMECAST), *args],
        env={**env, **world.env(case.env)},
        capture_output=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return Outcome(
        done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


def _check(world: World, case: Case, outcome: Outcome) -> None:
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    shown = f"exit {outcome.code}\nstderr:\n{outcome.stderr[-3000:]}"
    assert outcome.code not in (0, -1), shown
    assert "Traceback" not in outcome.stderr + outcome.stdout, shown
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    # A typed error, not the boundary's net for bugs.
    assert "internal error" not in lines[0], shown
    assert outcome.code in (1, 2), shown
    for needle in case.says:
        assert world.fill(needle) in lines[0], shown


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_error_line_and_changes_nothing(world: World, case: Case) -> None:
    before = world.snapshot()
    snapshot = world.chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        outcome = _in_process(world, case)
        after = world.snapshot()
    finally:
        world.chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    _check(world, case, outcome)
    assert after == before


@pytest.mark.slow  # one console-script start per case
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_through_the_console_script(world: World, case: Case) -> None:
    before = world.snapshot(full=True)
    snapshot = world.chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        outcome = _console_script(world, case)
        after = world.snapshot(full=True)
    finally:
        world.chain.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    _check(world, case, outcome)
    assert after == before


def test_the_table_covers_every_command() -> None:
    """A command added to the CLI without a bad-input case fails here."""
    from framecast.client.cli import LAZY_COMMANDS

    covered = {c.args[0] for c in CASES}
    covered.discard("nope")
    # devnet, deploy and demo start or deploy chains of their own: their bad input is
    # covered in tests/test_devnet.py and tests/client/test_networks.py.
    exempt = {"devnet", "deploy", "demo"}
    assert set(LAZY_COMMANDS) - exempt <= covered, set(LAZY_COMMANDS) - exempt - covered
    assert {"node", "arbiter"} <= covered
    assert json.dumps([c.id for c in CASES])  # ids are plain text
    assert len({c.id for c in CASES}) == len(CASES)


def test_a_group_alone_prints_its_help(world: World) -> None:
    """`framecast wallet` with no subcommand is a request for help, not an error line."""
    outcome = _in_process(world, Case("group-alone", ("wallet",)))
    assert outcome.stdout.startswith("Usage: framecast wallet") or outcome.stderr.startswith(
        "Usage: framecast wallet"
    ), outcome
    assert "error:" not in outcome.stdout + outcome.stderr
