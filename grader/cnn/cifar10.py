"""CIFAR-10: fetch the official archive, check it, and load it as uint8 arrays.

    python cifar10.py              # download it (163 MB, once) and cache it
    python cifar10.py --no-download  # only check and cache what is already there

Where: the folder ``datasets/`` beside this file, or the folder named by the environment variable
``CONVLAB_DATA``. Put there any of
- ``cifar-10-python.tar.gz``, the official archive (fetched from URL when nothing else is there);
- ``cifar-10-batches-py/``, the folder that archive unpacks to;
- ``cifar10-uint8.npz``, the cache made from either on the first load (180 MB of uint8, read in a second).
Every official file is checked against its official md5 before it is used, and the cache is made only from
checked files. (``CONVLAB_DATA_UNVERIFIED=1`` skips the check: for tests, which write small archives in the
official format.) A download goes to ``cifar-10-python.tar.gz.part`` first and is renamed only once its md5
is right: an interrupted download resumes where it stopped, and a corrupted one is never used.

    from cifar10 import load, MEAN, STD
    x, y = load("train")   # x uint8 (45000, 3, 32, 32), y int64 (45000,)

Splits: "train" is the official training set less its last VAL_SIZE images (a tenth of a smaller set), which
form "val"; "test" is the official test set. Choose epochs, learning rates and checkpoints on "val", never on "test": a choice made on
the test set fits the test set, and the test accuracy stops measuring how the network does on new images.
"""
import hashlib
import http.client
import io
import os
import pickle
import shlex
import sys
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_BYTES = 170_498_071
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_FILES = ("test_batch",)
FILES = TRAIN_FILES + TEST_FILES + ("batches.meta",)
FILE_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
CACHE = "cifar10-uint8.npz"
VAL_SIZE = 5000
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The training set's per-channel pixel mean and std, images scaled to [0, 1]. (The widely copied
# (0.2023, 0.1994, 0.2010) is not the pixel std.)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
SPLITS = ("train", "val", "test")


class DataError(Exception):
    """CIFAR-10 could not be had; the message says why in one line, and what to do."""


def data_root(default=None):
    """``$CONVLAB_DATA`` when set, else ``default``, else the ``datasets/`` folder beside this file."""
    if os.environ.get("CONVLAB_DATA"):
        return Path(os.environ["CONVLAB_DATA"])
    return Path(default) if default is not None else Path(__file__).resolve().parent / "datasets"


def verifying():
    """Whether files are checked against the official md5s (so what loads is CIFAR-10 itself)."""
    return os.environ.get("CONVLAB_DATA_UNVERIFIED") != "1"


def _md5(data_or_path):
    digest = hashlib.md5()
    if isinstance(data_or_path, bytes):
        digest.update(data_or_path)
        return digest.hexdigest()
    with open(data_or_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _BatchUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR batch holds (dicts, lists, numbers, strings, numpy arrays): a forged file
    cannot run code when it is read."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR-10 batch")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # numpy 2 renamed numpy.core
            return super().find_class(module, name)


def _parse_batch(data, name):
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one batch file's bytes."""
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
        batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
        images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{name} is not a CIFAR-10 batch ({type(error).__name__}: {error})") from None
    if len(images) != len(labels) or labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{name} is not a CIFAR-10 batch (its labels do not match its images)")
    return images, labels


def read_batch(path):
    """``(images, labels)`` of one batch file in the official format (an instructor's held-out split, say)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise DataError(f"{path} could not be read ({error.strerror})") from None
    return _parse_batch(data, path)


def _check(data, name, where):
    if verifying() and _md5(data) != FILE_MD5[name]:
        raise DataError(f"{where} fails its md5 check (truncated or corrupted): delete it and fetch it again")


def _from_folder(folder):
    """{file name: bytes} of the official batch files in an unpacked folder, each checked."""
    found = {}
    for name in FILES:
        path = folder / name
        if not path.is_file():
            if name == "batches.meta" and not verifying():
                continue
            raise DataError(f"{folder} is incomplete: {name} is missing (unpack the archive again, or delete the "
                            "folder and let the archive or a download replace it)")
        data = path.read_bytes()
        _check(data, name, path)
        found[name] = data
    return found


def _from_archive(path):
    """{file name: bytes} of the batch files inside the official archive (checked as a whole first)."""
    if verifying() and _md5(path) != ARCHIVE_MD5:
        raise DataError(f"{path} fails its md5 check (truncated or corrupted): delete it and download it again")
    found = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and member.name == f"{FOLDER}/{name}" and name in FILES:
                    found[name] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataError(f"{path} is truncated or not the CIFAR-10 archive ({error}): delete it and download "
                        "it again") from None
    missing = [n for n in TRAIN_FILES + TEST_FILES if n not in found]
    if missing:
        raise DataError(f"{path} is not the CIFAR-10 archive: it has no {FOLDER}/{missing[0]}")
    return found


def download(root, url=URL, progress=True):
    """Fetch the official archive into ``root`` (resuming a partial download); return its path once its md5 is
    right. Raises DataError, in one line, when the network, the folder or the file fails."""
    from tqdm import tqdm

    root = Path(root)
    target, part = root / ARCHIVE, root / (ARCHIVE + ".part")
    try:
        root.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = response.status == 206
            total = have + int(response.headers.get("Content-Length", 0)) if resumed else \
                int(response.headers.get("Content-Length", 0)) or None
            with open(part, "ab" if resumed else "wb") as out, \
                    tqdm(total=total, initial=have if resumed else 0, unit="B", unit_scale=True,
                         desc=f"downloading {ARCHIVE}", disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:   # the server closed the connection early
            raise ConnectionError("connection closed")
    except urllib.error.HTTPError as error:
        if error.code != 416:   # 416: the part file already holds all the server has; it is checked below
            raise DataError(f"could not download {url} (HTTP {error.code}): fetch it by hand into {root}") from None
    except urllib.error.URLError as error:
        raise DataError(f"could not download {url} ({error.reason}; no network?): put {ARCHIVE} in {root} by "
                        "hand, or set CONVLAB_DATA to a folder that has it") from None
    except PermissionError:
        raise DataError(f"cannot write to {root} (read-only?): set CONVLAB_DATA to a writable folder") from None
    except (http.client.HTTPException, OSError) as error:
        raise DataError(f"the download stopped early ({type(error).__name__}): run again to resume it") from None
    if verifying() and _md5(part) != ARCHIVE_MD5:
        part.unlink()
        raise DataError(f"the download of {url} is corrupted (md5 mismatch) and was deleted: run again")
    os.replace(part, target)
    return target


def _write_cache(path, arrays, verified):
    """Write the cache atomically (a reader never sees half a file); a read-only folder only costs speed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, verified=np.array(verified), **arrays)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        print(f"cifar10: could not write the cache {path} ({error.strerror}): loading from the archive each "
              "time instead", file=sys.stderr)


def _read_cache(path):
    """The cached arrays, or None when the cache is absent, torn, or (while verifying) made from unchecked
    files."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if verifying() and not bool(data["verified"]):
                return None
            arrays = {k: data[k] for k in ("train_x", "train_y", "test_x", "test_y")}
    except (OSError, KeyError, ValueError, EOFError, zlib.error, zipfile.BadZipFile):
        return None
    return arrays


def _arrays(root, allow_download, url, progress):
    root = Path(root)
    cached = _read_cache(root / CACHE)
    if cached is not None:
        return cached
    sources, problems = [], []
    if (root / FOLDER).is_dir():
        sources.append(lambda: _from_folder(root / FOLDER))
    if (root / ARCHIVE).is_file():
        sources.append(lambda: _from_archive(root / ARCHIVE))
    if allow_download:
        sources.append(lambda: _from_archive(download(root, url, progress)))
    for source in sources:
        try:
            files = source()
            break
        except DataError as error:
            problems.append(str(error))
    else:
        if problems:
            raise DataError(problems[0])
        raise DataError(f"CIFAR-10 is not in {root}: run `{fetch_command(root)}` to download it, put {ARCHIVE} "
                        "there, or set CONVLAB_DATA to the folder that has it")
    train = [_parse_batch(files[n], n) for n in TRAIN_FILES]
    test_x, test_y = _parse_batch(files[TEST_FILES[0]], TEST_FILES[0])
    arrays = {"train_x": np.concatenate([x for x, _ in train]), "train_y": np.concatenate([y for _, y in train]),
              "test_x": test_x, "test_y": test_y}
    _write_cache(root / CACHE, arrays, verified=verifying())
    return arrays


def _typed(path):
    """``path`` as one types it here: relative to the current folder when it is below it, else absolute."""
    path, here = Path(os.path.abspath(path)), Path.cwd()
    return shlex.quote(str(path.relative_to(here)) if path.is_relative_to(here) else str(path))


def fetch_command(root):
    """The command that fetches CIFAR-10 into ``root``, as it runs from the current folder (a notebook's, the
    handout's, a checkout's)."""
    return f"{_typed(sys.executable)} {_typed(__file__)} --root {_typed(root)}"


def val_size(official_training_images):
    """How many of the official training images form "val" (the last ones): VAL_SIZE, or a tenth of fewer."""
    return min(VAL_SIZE, official_training_images // 10)


def load(split, root=None, download=True, url=URL, progress=True):
    """``(images, labels)`` of ``split`` ("train", "val" or "test"): uint8 ``(N, 3, 32, 32)`` and int64 ``(N,)``.

    ``root`` defaults to ``data_root()``. With ``download`` false, nothing is fetched: a missing data set is a
    DataError saying where to put it.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    arrays = _arrays(data_root() if root is None else root, download, url, progress)
    if split == "test":
        return arrays["test_x"], arrays["test_y"]
    cut = len(arrays["train_x"]) - val_size(len(arrays["train_x"]))
    part = slice(None, cut) if split == "train" else slice(cut, None)
    return arrays["train_x"][part], arrays["train_y"][part]


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Fetch, check and cache CIFAR-10.")
    parser.add_argument("--root", help="data folder (default: $CONVLAB_DATA, else datasets/ beside this file)")
    parser.add_argument("--no-download", action="store_true", help="only use what is already in the folder")
    args = parser.parse_args(argv)
    root = data_root() if args.root is None else Path(args.root)
    try:
        for split in SPLITS:
            x, y = load(split, root, download=not args.no_download)
            print(f"{split:>5}: {len(x):6d} images, {np.bincount(y, minlength=10).min()}-"
                  f"{np.bincount(y, minlength=10).max()} per class")
    except DataError as error:
        print(f"cifar10: {error}", file=sys.stderr)
        return 1
    print(f"CIFAR-10 is ready in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
