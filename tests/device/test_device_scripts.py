"""scripts/device (issue 23): pieces that fit one transfer with their SHA-256, prepare.sh's plan, run.sh's
reassembly and its refusal without CUDA, and the whole run.sh as a dry run on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "device"))
import pieces  # noqa: E402


def _blob(path: Path, n: int) -> Path:
    path.write_bytes(bytes((i * 7 + 3) % 251 for i in range(n)))
    return path


def test_pieces_fit_the_limit_and_join_back_verified(tmp_path: Path) -> None:
    a, b = _blob(tmp_path / "a.gguf", 10_000), _blob(tmp_path / "b.bin", 2_500)
    m = pieces.split([a, b], tmp_path / "out", max_bytes=3_000)
    sizes = {e["name"]: [p["size"] for p in e["pieces"]] for e in m["files"]}
    assert sizes == {"a.gguf": [3000, 3000, 3000, 1000], "b.bin": [2500]}
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == m
    written = pieces.join(tmp_path / "out", tmp_path / "back")
    assert [w.read_bytes() for w in written] == [a.read_bytes(), b.read_bytes()]
    # a changed piece and a missing one are refused, naming them, and nothing finished-looking is left
    (tmp_path / "back" / "a.gguf").unlink()
    piece = tmp_path / "out" / "a.gguf.part002"
    piece.write_bytes(b"x" + piece.read_bytes()[1:])
    (tmp_path / "out" / "b.bin.part000").unlink()
    with pytest.raises(ValueError, match=r"a.gguf.part002: size or SHA-256 differs.*b.bin.part000: missing"):
        pieces.join(tmp_path / "out", tmp_path / "back")
    assert not (tmp_path / "back" / "a.gguf").exists()
    assert pieces.main(["join", str(tmp_path / "out"), "--dest", str(tmp_path / "x")]) == 2


def _prepare(tmp_path: Path, blob: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LATENTWIRE_DEVICE_DIR": str(tmp_path / "dev")}
    cmd = [
        "bash",
        str(REPO / "scripts/device/prepare.sh"),
        "--no-wheels",
        "--files",
        str(blob),
        "--max-mib",
        "0.001",
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_prepare_cuts_one_folder_per_transfer_and_prints_the_plan(tmp_path: Path) -> None:
    blob = _blob(tmp_path / "model.gguf", 5_000)
    out = _prepare(tmp_path, blob)
    assert out.returncode == 0, out.stderr[-2000:]
    models = tmp_path / "dev" / "models"
    manifest = json.loads((models / "manifest.json").read_text())
    (entry,) = manifest["files"]
    assert entry["size"] == 5_000 and manifest["max_bytes"] == 1048  # 0.001 MiB
    folders = sorted(p for p in models.iterdir() if p.is_dir())
    assert len(folders) == len(entry["pieces"]) == 5
    assert all(len(list(f.iterdir())) == 1 and next(f.iterdir()).stat().st_size <= 1048 for f in folders)
    plan = out.stdout
    assert plan.count("carry [") == 6 and "bash scripts/device/run.sh $OUT" in plan


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_run_reassembles_the_carried_pieces_then_refuses_without_cuda(tmp_path: Path) -> None:
    blob = _blob(tmp_path / "model.gguf", 5_000)
    assert _prepare(tmp_path, blob).returncode == 0
    env = {
        **os.environ,
        "LATENTWIRE_DEVICE_DIR": str(tmp_path / "dev"),
        "LATENTWIRE_GGUF_DIR": str(tmp_path / "gguf"),
        "PYTHON": sys.executable,
    }
    out = subprocess.run(
        ["bash", str(REPO / "scripts/device/run.sh"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert out.returncode == 2 and "no CUDA device" in out.stderr + out.stdout
    assert (tmp_path / "gguf" / "model.gguf").read_bytes() == blob.read_bytes()


@pytest.mark.slow
def test_the_device_run_passes_as_a_dry_run_on_the_cpu(tmp_path: Path) -> None:
    """Every step of run.sh (GPU tests, throughput, the recall-gpu experiment, the summary) at tiny size."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts/device/run.sh"), "--dry-run", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) <= 8 and {
        "summary.json",
        "gpu-tests.xml",
        "throughput.json",
        "recall-metrics.json",
    } <= set(files)
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["dry_run"] and all(v["exit"] == 0 for v in s["stages"].values())
    assert s["gpu_tests"]["tests"] == 4 and s["gpu_tests"]["failures"] == s["gpu_tests"]["skipped"] == 0
    assert len(s["throughput"]) == 3 and s["recall_em"]


@pytest.mark.slow
def test_the_general_job_passes_as_a_dry_run_and_its_snapshot_joins_back(tmp_path: Path) -> None:
    """scripts/device/general.sh at tiny size: general-corpus pretraining with a snapshot, returned as
    pieces of at most 15 MiB + manifest + general-meta.tar, which join back into the snapshot."""
    out = subprocess.run(
        ["bash", str(REPO / "scripts/device/general.sh"), "--dry-run", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) <= 6 and {"manifest.json", "general-meta.tar", "general.log"} <= set(files)
    assert all((tmp_path / "out" / f).stat().st_size <= 15 * 2**20 for f in files)
    back = tmp_path / "back"
    pieces.join(tmp_path / "out", back)
    subprocess.run(["tar", "-xf", str(tmp_path / "out" / "general-meta.tar"), "-C", str(back)], check=True)
    from latentwire_hf.snapshot import read_snapshot

    snap = read_snapshot(back)  # the digest in snapshot.json matches the joined weights
    assert snap is not None and snap.step == 4 and snap.meta["tokens_encoded"] > 0


def test_prepare_refuses_a_max_mib_that_is_not_a_number_and_a_folder_it_did_not_make(tmp_path: Path) -> None:
    env = {**os.environ, "LATENTWIRE_DEVICE_DIR": str(tmp_path / "dev")}
    cmd = ["bash", str(REPO / "scripts/device/prepare.sh"), "--no-wheels", "--no-models", "--max-mib"]
    out = subprocess.run(
        [*cmd, "__import__('os').system('touch pwned')"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert (
        out.returncode == 2 and "--max-mib needs a number" in out.stderr and not (tmp_path / "pwned").exists()
    )
    (tmp_path / "dev").mkdir()
    keep = tmp_path / "dev" / "precious.txt"
    keep.write_text("mine")
    out = subprocess.run([*cmd, "8"], env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 2 and "was not made by this script" in out.stderr and keep.read_text() == "mine"


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({}, "has no list of files"),
        ({"files": [{"name": "../evil", "size": 1, "sha256": "x", "pieces": []}]}, "not a plain file name"),
        (
            {"files": [{"name": "a", "size": 1, "sha256": "x", "pieces": [{"name": "/etc/passwd"}]}]},
            "not a plain file name",
        ),
        ({"files": [{"name": "a", "pieces": []}]}, "lacks its size or SHA-256"),
    ],
)
def test_join_refuses_a_manifest_that_names_outside_its_folders(
    tmp_path: Path, files: dict, problem: str
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "manifest.json").write_text(json.dumps(files))
    with pytest.raises(ValueError, match=problem):
        pieces.join(tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out").exists()
    assert pieces.main(["join", str(tmp_path / "in"), "--dest", str(tmp_path / "out")]) == 2
