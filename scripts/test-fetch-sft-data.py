#!/usr/bin/env python3
"""Tests scripts/fetch-sft-data.sh on fake alpaca-eval sdists, without network.

    python3 scripts/test-fetch-sft-data.py

Builds small alpaca_eval-0.6.6.tar.gz archives in a temporary folder (outside the repository)
and runs the script on them with --sdist FAKE --no-verify --out TMP/x.jsonl. Checks the
ShareGPT lines (byte for byte as `arena export --format sharegpt` writes them: sorted keys,
compact separators, non-ASCII text as UTF-8), that ids keep the entry's index in outputs.json
(alpaca-eval-0, -1, -3 when entry 2 is skipped), the skipped count on stderr, the sidecar, the
cache hit (no rewrite), and the errors: no example/outputs.json, a checksum that differs (no
--no-verify), no python3, and an unreachable registry (a proxy on a closed local port). HOME and
ARENA_DATA point into the temporary folder, so the real cache is never touched. Exits non-zero
on failure.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "fetch-sft-data.sh"
TOP = "alpaca_eval-0.6.6"

# Three usable entries (non-ASCII text, newlines, a tab, quotes), one with a blank output
# (index 2) and one without an instruction (index 4): ids alpaca-eval-0, -1 and -3.
ENTRIES = [
    {
        "instruction": "Say hello in Japanese, then explain it.",
        "output": "こんにちは (konnichiwa).\nIt is the everyday greeting.",
        "generator": "gpt-4",
        "dataset": "helpful_base",
        "datasplit": "eval",
    },
    {
        "instruction": 'Ünïcödé "quoted" instruction\nsecond line\twith a tab',
        "output": "Line one\nLine two — done ✓ 🎉\n",
        "dataset": "koala",
        "datasplit": "eval",
    },
    {
        "instruction": "This entry has a blank output.",
        "output": "  \n\t ",
        "generator": "gpt-4",
        "dataset": "oasst",
        "datasplit": "eval",
    },
    {
        "instruction": "List two colours.",
        "output": "1. red\n2. blue",
        "generator": "example",
        "dataset": "vicuna",
        "datasplit": "eval",
    },
    {
        "output": "An answer without a question.",
        "generator": "example",
        "dataset": "selfinstruct",
        "datasplit": "eval",
    },
]


def expected_rows():
    rows = []
    for i in (0, 1, 3):
        e = ENTRIES[i]
        rows.append({
            "id": f"alpaca-eval-{i}",
            "model": e.get("generator", "alpaca-eval"),
            "conversations": [
                {"from": "human", "value": e["instruction"]},
                {"from": "gpt", "value": e["output"]},
            ],
        })
    return rows


def serde_line(row):
    """A row as serde_json::to_writer writes a json! value (BTreeMap: sorted keys)."""
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n"


def make_sdist(path, entries=None):
    """A tar.gz like PyPI's sdist: TOP/setup.py and, unless entries is None, TOP/example/outputs.json."""
    files = {f"{TOP}/setup.py": b"from setuptools import setup\nsetup()\n",
             f"{TOP}/PKG-INFO": b"Metadata-Version: 2.1\nName: alpaca_eval\nVersion: 0.6.6\n"}
    if entries is not None:
        files[f"{TOP}/example/outputs.json"] = json.dumps(entries, indent=2).encode()
    with tarfile.open(path, "w:gz") as tar:
        for d in (TOP, f"{TOP}/example"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


class FetchSftData(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="test-fetch-sft-data-")
        self.tmp = Path(self._tmp.name).resolve()
        self.env = dict(os.environ, HOME=str(self.tmp / "home"), ARENA_DATA=str(self.tmp / "data"))
        self.fake = make_sdist(self.tmp / "alpaca_eval-0.6.6.tar.gz", ENTRIES)
        self.out = self.tmp / "x.jsonl"

    def tearDown(self):
        self._tmp.cleanup()

    def run_script(self, *args, env=None):
        return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                              env=env or self.env, timeout=120)

    def run_fake(self, sdist=None, out=None):
        return self.run_script("--sdist", sdist or self.fake, "--no-verify", "--out", out or self.out)

    def assert_fails(self, r, message):
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "", "nothing on stdout when failing")
        last = r.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("fetch-sft-data: "), r.stderr)
        self.assertIn(message, last, r.stderr)

    def assert_nothing_written(self, out):
        self.assertFalse(out.exists(), f"{out} was written")
        self.assertFalse(Path(f"{out}.sha256").exists())
        if out.parent.exists():
            self.assertEqual([p.name for p in out.parent.iterdir() if p.name.startswith(".")], [],
                             "a temporary file was left behind")

    def test_converts_and_caches(self):
        r = self.run_fake()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, f"{self.out}\n", "stdout is the out path alone")
        self.assertIn("wrote 3 conversations", r.stderr)
        self.assertIn("skipped 2 entries", r.stderr)
        self.assertIn("indexes 2, 4", r.stderr)

        raw = self.out.read_bytes()
        text = raw.decode("utf-8")
        lines = text.splitlines(keepends=True)
        self.assertEqual(len(lines), 3, text)
        self.assertTrue(text.endswith("\n"))
        for line, row in zip(lines, expected_rows()):
            self.assertEqual(json.loads(line), row)
            self.assertEqual(list(json.loads(line)), ["conversations", "id", "model"])
            self.assertEqual(line, serde_line(row), "byte for byte as arena export writes it")
        self.assertEqual([json.loads(l)["id"] for l in lines],
                         ["alpaca-eval-0", "alpaca-eval-1", "alpaca-eval-3"])
        self.assertEqual([json.loads(l)["model"] for l in lines], ["gpt-4", "alpaca-eval", "example"])
        self.assertIn("こんにちは".encode(), raw, "non-ASCII written as UTF-8, not \\u escapes")
        self.assertIn(b"\\n", raw, "newlines inside values are escaped, one conversation per line")

        sidecar = Path(f"{self.out}.sha256")
        self.assertEqual(sidecar.read_text(), f"{hashlib.sha256(raw).hexdigest()}  x.jsonl\n")
        self.assertEqual(sorted(p.name for p in self.tmp.iterdir() if p.name.startswith("x.")),
                         ["x.jsonl", "x.jsonl.sha256"])
        self.assertEqual([p.name for p in self.tmp.iterdir() if p.name.startswith(".")], [],
                         "no temporary file left behind")

        # Second run: a cache hit, nothing rewritten (even when the archive is gone).
        before = (self.out.stat().st_mtime_ns, sidecar.stat().st_mtime_ns)
        self.fake.unlink()
        r2 = self.run_fake()
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(r2.stdout, f"{self.out}\n")
        self.assertIn("up to date", r2.stderr)
        self.assertEqual((self.out.stat().st_mtime_ns, sidecar.stat().st_mtime_ns), before)
        self.assertEqual(self.out.read_bytes(), raw)

        # A file that no longer matches its sidecar is written again.
        make_sdist(self.fake, ENTRIES)
        with self.out.open("ab") as f:
            f.write(b"garbage\n")
        r3 = self.run_fake()
        self.assertEqual(r3.returncode, 0, r3.stderr)
        self.assertNotIn("up to date", r3.stderr)
        self.assertEqual(self.out.read_bytes(), raw)

    def test_relative_out_prints_an_absolute_path(self):
        r = subprocess.run([str(SCRIPT), "--sdist", str(self.fake), "--no-verify", "--out", "rel.jsonl"],
                           capture_output=True, text=True, env=self.env, cwd=self.tmp, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, f"{self.tmp / 'rel.jsonl'}\n")

    def test_archive_without_outputs_json(self):
        bare = make_sdist(self.tmp / "bare.tar.gz", None)
        r = self.run_fake(sdist=bare)
        self.assert_fails(r, "holds no example/outputs.json")
        self.assert_nothing_written(self.out)

    def test_checksum_is_checked_without_no_verify(self):
        r = self.run_script("--sdist", self.fake, "--out", self.out)
        self.assert_fails(r, "not the pinned")
        self.assertIn(hashlib.sha256(self.fake.read_bytes()).hexdigest(), r.stderr)
        self.assert_nothing_written(self.out)

    def test_no_verify_never_writes_the_default_path(self):
        r = self.run_script("--sdist", self.fake, "--no-verify")
        self.assert_fails(r, "--no-verify needs --out")
        self.assertFalse((self.tmp / "data").exists())

    def test_refuses_to_write_under_the_repository(self):
        inside = SCRIPT.parent.parent / "target" / "test-fetch-sft-data.jsonl"
        r = self.run_fake(out=inside)
        self.assert_fails(r, "refusing to write the CC BY-NC 4.0 data under the repository")
        self.assertFalse(inside.exists())

    def test_python3_missing(self):
        # A PATH holding everything in the usual folders but python*.
        bin_dir = self.tmp / "bin"
        bin_dir.mkdir()
        for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
            if not os.path.isdir(d):
                continue
            for name in os.listdir(d):
                if not name.startswith("python") and not (bin_dir / name).exists():
                    os.symlink(os.path.join(d, name), bin_dir / name)
        r = self.run_script("--sdist", self.fake, "--no-verify", "--out", self.out,
                            env=dict(self.env, PATH=str(bin_dir)))
        self.assert_fails(r, "'python3' is required but not installed")
        self.assert_nothing_written(self.out)

    def test_registry_unreachable(self):
        # Port 9 (discard) on loopback: connection refused at once, no network used.
        env = {k: v for k, v in self.env.items() if k.lower() not in ("no_proxy", "all_proxy")}
        env.update(https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
        r = self.run_script(env=env)
        self.assert_fails(r, "could not download alpaca-eval==0.6.6 from PyPI "
                             "(is the package registry reachable?)")
        self.assert_nothing_written(self.tmp / "data" / "alpaca-eval-0.6.6.jsonl")

    def test_help(self):
        r = self.run_script("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("CC BY-NC 4.0", r.stdout)
        self.assertIn("--no-verify", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
