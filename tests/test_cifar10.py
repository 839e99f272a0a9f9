"""The CIFAR-10 loader (grader/cnn/cifar10.py, the handout's cifar10.py) on small archives in the official
format: every source (archive, unpacked folder, cache, download), resuming, and each failure as one line."""
import hashlib
import http.server
import os
import re
import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from grader.cnn import cifar10
from support import REPO, load_module, write_cifar


@pytest.fixture
def unverified(monkeypatch):
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")


def expected(files, name):
    batch = pickle.loads(files[name])
    return batch["data"].reshape(-1, 3, 32, 32), np.array(batch["labels"])


@pytest.mark.parametrize("archive", [True, False], ids=["archive", "unpacked folder"])
def test_splits_match_the_files_written(tmp_path, unverified, archive):
    files = write_cifar(tmp_path, per_batch=40, test=60, archive=archive)
    train = [expected(files, f"data_batch_{i}") for i in range(1, 6)]
    all_x, all_y = np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])
    x, y = cifar10.load("train", tmp_path, download=False)
    vx, vy = cifar10.load("val", tmp_path, download=False)
    tx, ty = cifar10.load("test", tmp_path, download=False)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and x.shape == (180, 3, 32, 32)
    assert vx.shape == (20, 3, 32, 32)   # a tenth of a set smaller than 10 x VAL_SIZE
    np.testing.assert_array_equal(np.concatenate([x, vx]), all_x)
    np.testing.assert_array_equal(np.concatenate([y, vy]), all_y)
    np.testing.assert_array_equal(tx, expected(files, "test_batch")[0])
    np.testing.assert_array_equal(ty, expected(files, "test_batch")[1])
    assert (tmp_path / cifar10.CACHE).is_file()


def test_the_cache_serves_once_made_and_a_torn_cache_is_rebuilt(tmp_path, unverified):
    files = write_cifar(tmp_path)
    cifar10.load("test", tmp_path, download=False)
    (tmp_path / cifar10.ARCHIVE).rename(tmp_path / "elsewhere.tar.gz")
    np.testing.assert_array_equal(cifar10.load("test", tmp_path, download=False)[0], expected(files, "test_batch")[0])
    cache = tmp_path / cifar10.CACHE
    cache.write_bytes(cache.read_bytes()[:1000])
    with pytest.raises(cifar10.DataError, match="is not in"):
        cifar10.load("test", tmp_path, download=False)
    (tmp_path / "elsewhere.tar.gz").rename(tmp_path / cifar10.ARCHIVE)
    np.testing.assert_array_equal(cifar10.load("test", tmp_path, download=False)[1], expected(files, "test_batch")[1])


def test_without_the_escape_hatch_every_file_is_checked_against_the_official_md5(tmp_path, monkeypatch):
    write_cifar(tmp_path / "a")
    with pytest.raises(cifar10.DataError, match="fails its md5 check"):
        cifar10.load("train", tmp_path / "a", download=False)
    write_cifar(tmp_path / "b", archive=False)
    with pytest.raises(cifar10.DataError, match=r"data_batch_1 fails its md5 check"):
        cifar10.load("train", tmp_path / "b", download=False)
    # A cache made from unchecked files is not trusted once checking is back on.
    monkeypatch.setenv("CONVLAB_DATA_UNVERIFIED", "1")
    cifar10.load("train", tmp_path / "a", download=False)
    monkeypatch.delenv("CONVLAB_DATA_UNVERIFIED")
    with pytest.raises(cifar10.DataError, match="fails its md5 check"):
        cifar10.load("train", tmp_path / "a", download=False)


def test_a_file_with_the_official_md5_passes_the_check(tmp_path, monkeypatch):
    files = write_cifar(tmp_path, archive=False)
    monkeypatch.setattr(cifar10, "FILE_MD5", {n: hashlib.md5(d).hexdigest() for n, d in files.items()})
    assert cifar10.load("test", tmp_path, download=False)[0].shape == (60, 3, 32, 32)


def test_missing_truncated_incomplete_and_forged_data_are_one_line_errors(tmp_path, unverified, monkeypatch):
    with pytest.raises(cifar10.DataError, match=r"CIFAR-10 is not in .*cifar10.py"):
        cifar10.load("train", tmp_path / "nothing", download=False)
    # The command it names runs from where it is said: the checkout's root (the demo), the handout's folder.
    handout = load_module(REPO / "assignments" / "cnn" / "cifar10.py")
    for module, folder, script in ((cifar10, REPO, "grader/cnn/cifar10.py"),
                                   (handout, REPO / "assignments" / "cnn", "cifar10.py")):
        monkeypatch.chdir(folder)
        with pytest.raises(module.DataError, match=rf"run `\S*python\S* {script} --root {tmp_path}/nothing`"):
            module.load("train", tmp_path / "nothing", download=False)
    write_cifar(tmp_path / "t")
    archive = tmp_path / "t" / cifar10.ARCHIVE
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(cifar10.DataError, match="truncated or not the CIFAR-10 archive"):
        cifar10.load("train", tmp_path / "t", download=False)
    write_cifar(tmp_path / "i", archive=False)
    (tmp_path / "i" / cifar10.FOLDER / "data_batch_3").unlink()
    with pytest.raises(cifar10.DataError, match="incomplete: data_batch_3 is missing"):
        cifar10.load("train", tmp_path / "i", download=False)


def test_a_forged_batch_cannot_run_code(tmp_path, unverified):
    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    write_cifar(tmp_path, archive=False)
    (tmp_path / cifar10.FOLDER / "test_batch").write_bytes(pickle.dumps({"data": Exploit()}, protocol=2))
    with pytest.raises(cifar10.DataError, match=r"test_batch is not a CIFAR-10 batch .*is not part of"):
        cifar10.load("test", tmp_path, download=False)
    assert not (tmp_path / "pwned").exists()


class _Server:
    """A loopback HTTP server for one archive: honours Range, and can stop half way or serve other bytes."""

    def __init__(self, data):
        self.data, self.cut, self.ranges = data, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    server.ranges.append(start)
                    if start >= len(server.data):
                        self.send_response(416)
                        self.end_headers()
                        return
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(server.data) - start))
                self.end_headers()
                body = server.data[start:]
                self.wfile.write(body[: server.cut] if server.cut else body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{cifar10.ARCHIVE}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, monkeypatch):
    write_cifar(tmp_path / "origin")
    data = (tmp_path / "origin" / cifar10.ARCHIVE).read_bytes()
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", hashlib.md5(data).hexdigest())   # this archive is "official"
    server = _Server(data)
    yield server
    server.close()


def test_download_checks_the_md5_and_resumes_an_interrupted_download(tmp_path, served):
    root = tmp_path / "data"
    served.cut = len(served.data) // 3
    with pytest.raises(cifar10.DataError, match="stopped early.*run again to resume"):
        cifar10.load("test", root, url=served.url, progress=False)
    part = root / (cifar10.ARCHIVE + ".part")
    assert 0 < part.stat().st_size < len(served.data) and not (root / cifar10.ARCHIVE).exists()
    served.cut = None
    x, _ = cifar10.load("test", root, url=served.url, progress=False)
    assert served.ranges == [len(served.data) // 3]   # the second request asked only for the rest
    assert x.shape == (60, 3, 32, 32) and not part.exists()
    assert (root / cifar10.ARCHIVE).read_bytes() == served.data


def test_a_corrupted_download_is_deleted_never_used(tmp_path, served):
    served.data = served.data[:-10] + b"0123456789"
    with pytest.raises(cifar10.DataError, match="corrupted .* was deleted"):
        cifar10.load("test", tmp_path / "data", url=served.url, progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_no_network_is_one_line_that_says_what_to_do(tmp_path):
    with pytest.raises(cifar10.DataError, match=r"could not download .*no network\?\): put cifar-10-python"):
        cifar10.load("test", tmp_path, url="http://127.0.0.1:9/cifar-10-python.tar.gz", progress=False)


def test_the_command_line_says_one_line_and_exits_1(tmp_path):
    env = dict(os.environ, CONVLAB_DATA=str(tmp_path))
    run = subprocess.run([sys.executable, str(REPO / "grader/cnn/cifar10.py"), "--no-download"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    [line] = run.stderr.strip().splitlines()
    assert re.fullmatch(rf"cifar10: CIFAR-10 is not in {tmp_path}: run `\S*python\S* grader/cnn/cifar10.py --root "
                        rf"{tmp_path}` to download it, put cifar-10-python.tar.gz there, or set CONVLAB_DATA to the "
                        "folder that has it", line), line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the loader as a user who cannot write")
def test_a_read_only_folder_still_loads_and_refuses_only_what_needs_writing():
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        write_cifar(Path(tmp) / "data")
        os.chmod(Path(tmp) / "data", 0o755)
        code = ("import sys; sys.path.insert(0, 'grader/cnn'); import cifar10\n"
                "print(cifar10.load('test', sys.argv[1], download=False)[0].shape)\n"
                "try:\n    cifar10.download(sys.argv[2], url='http://127.0.0.1:9/x', progress=False)\n"
                "except cifar10.DataError as e:\n    print(e)\n")
        run = subprocess.run([sys.executable, "-c", code, f"{tmp}/data", f"{tmp}/data/sub"], cwd=REPO,
                             env=dict(os.environ, CONVLAB_DATA_UNVERIFIED="1"), capture_output=True, text=True,
                             timeout=60, user=65534, group=65534)
        assert run.stdout.splitlines() == ["(60, 3, 32, 32)",
                                           f"cannot write to {tmp}/data/sub (read-only?): set CONVLAB_DATA to a "
                                           "writable folder"]
        assert "could not write the cache" in run.stderr and "Traceback" not in run.stderr
