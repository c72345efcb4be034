"""Loading never executes code: no pickle, no unrestricted torch.load, no remote code, no eval/exec.

A static scan of every module under src/ (AST, so comments and strings do not count) fails naming
file:line, and a runtime check loads a saved model with pickle and torch.load disabled.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

SRC = Path(__file__).resolve().parents[1] / "src"

# modules whose loaders run arbitrary code from the data they read
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}
UNSAFE_YAML = {"unsafe_load", "full_load", "unsafe_load_all", "full_load_all", "load_all"}


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _keyword(call: ast.Call, name: str) -> ast.keyword | None:
    return next((k for k in call.keywords if k.arg == name), None)


def _dotted(node: ast.AST) -> str:
    """``torch.load`` for Attribute(Name('torch'), 'load'); '' for anything not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


class UnsafeLoadingFinder(ast.NodeVisitor):
    """Collects (line, what) for every construct that could run code hidden in a file being loaded."""

    def __init__(self) -> None:
        self.findings: list[tuple[int, str]] = []
        self.torch_load_names = {"torch.load"}  # grows with `from torch import load [as x]`
        self.yaml_names = {"yaml"}

    def _flag(self, node: ast.AST, what: str) -> None:
        self.findings.append((node.lineno, what))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            if root in UNSAFE_MODULES:
                self._flag(node, f"import {alias.name}")
            if alias.name == "torch" and alias.asname:
                self.torch_load_names.add(f"{alias.asname}.load")
            if alias.name == "yaml" and alias.asname:
                self.yaml_names.add(alias.asname)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        root = (node.module or "").split(".")[0]
        if root in UNSAFE_MODULES:
            self._flag(node, f"from {node.module} import ...")
        if node.module == "torch":
            for alias in node.names:
                if alias.name == "load":
                    self.torch_load_names.add(alias.asname or "load")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_BUILTINS:
            self._flag(node, f"{node.func.id}(...)")
        if name in self.torch_load_names:
            weights_only = _keyword(node, "weights_only")
            if weights_only is None or not _is_true(weights_only.value):
                self._flag(node, f"{name}(...) without weights_only=True")
        head, _, attr = name.rpartition(".")
        if head in self.yaml_names:
            loader = _keyword(node, "Loader")
            safe_loader = loader is not None and _dotted(loader.value).split(".")[-1] in ("SafeLoader", "CSafeLoader")
            if attr in UNSAFE_YAML or (attr == "load" and not safe_loader):
                self._flag(node, f"{name}(...) (use yaml.safe_load)")
        if attr == "load" and head in ("np", "numpy"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow.value, ast.Constant) and allow.value.value is False):
                self._flag(node, f"{name}(..., allow_pickle=...)")
        trust = _keyword(node, "trust_remote_code")
        if trust is not None and _is_true(trust.value):
            self._flag(node, "trust_remote_code=True passed on the user's behalf")
        # kwargs.setdefault("trust_remote_code", True) / kwargs.update(trust_remote_code=True)
        if attr in ("setdefault", "__setitem__") and len(node.args) == 2:
            key, value = node.args
            if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_true(value):
                self._flag(node, "trust_remote_code=True set on the user's behalf")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_true(value):
                self._flag(node, "trust_remote_code=True set on the user's behalf")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        # kwargs["trust_remote_code"] = True
        for target in node.targets:
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.slice, ast.Constant)
                and target.slice.value == "trust_remote_code"
                and _is_true(node.value)
            ):
                self._flag(node, "trust_remote_code=True set on the user's behalf")
        self.generic_visit(node)


def scan_source(text: str, filename: str = "<string>") -> list[str]:
    """``file:line: what`` for every unsafe construct in ``text``."""
    finder = UnsafeLoadingFinder()
    finder.visit(ast.parse(text, filename=filename))
    return [f"{filename}:{line}: {what}" for line, what in sorted(finder.findings)]


def test_scanner_catches_each_unsafe_pattern():
    """The scan below is only as good as this: every pattern is caught, safe look-alikes are not."""
    unsafe = {
        "import pickle": "import pickle",
        "import dill as d": "import dill",
        "from pickle import loads": "from pickle import",
        "import torch\ntorch.load(path)": "without weights_only=True",
        "import torch\ntorch.load(path, weights_only=False)": "without weights_only=True",
        "import torch as T\nT.load(path)": "T.load(...) without weights_only=True",
        "from torch import load\nload(path)": "load(...) without weights_only=True",
        "AutoModel.from_pretrained(name, trust_remote_code=True)": "trust_remote_code=True",
        "kwargs.setdefault('trust_remote_code', True)": "trust_remote_code=True",
        "kwargs['trust_remote_code'] = True": "trust_remote_code=True",
        "f(**{'trust_remote_code': True})": "trust_remote_code=True",
        "eval(text)": "eval(...)",
        "exec(code)": "exec(...)",
        "import yaml\nyaml.load(handle)": "yaml.load(...)",
        "import yaml\nyaml.unsafe_load(handle)": "yaml.unsafe_load(...)",
        "import numpy as np\nnp.load(path, allow_pickle=True)": "allow_pickle",
    }
    for source, expected in unsafe.items():
        findings = scan_source(source, "x.py")
        assert len(findings) == 1 and expected in findings[0], (source, findings)
        assert findings[0].startswith(f"x.py:{source.count(chr(10)) + 1}:"), findings
    safe = """
import ast, torch, yaml
import numpy as np
ast.literal_eval(line)
model.eval()
torch.load(path, weights_only=True, map_location="cpu")
AutoModel.from_pretrained(name, trust_remote_code=trust_remote_code)
yaml.safe_load(handle)
yaml.load(handle, Loader=yaml.SafeLoader)
np.load(path)
text = "import pickle; eval(x); torch.load(p)"  # strings and comments: eval(x) torch.load(p)
"""
    assert scan_source(safe, "safe.py") == []


def test_src_has_no_unsafe_loading():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, f"no sources found under {SRC}"
    findings = []
    for path in files:
        findings += scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(SRC.parent)))
    assert not findings, "unsafe loading in src/ (pickle, torch.load without weights_only=True, " \
        "trust_remote_code=True, eval/exec):\n" + "\n".join(findings)


@pytest.fixture
def no_pickle(monkeypatch):
    """Any pickle or torch.load during the block fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("pickle / torch.load used while loading")

    class RefusingUnpickler(pickle.Unpickler):  # still subclassable by modules imported meanwhile
        def load(self):
            refuse()

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", RefusingUnpickler)
    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(np, "load", refuse)


def test_loading_saved_artefacts_runs_no_pickle(tmp_path, no_pickle):
    """A saved model folder, its tokenizer and ID table, and an item tokenizer load with pickle disabled."""
    import hf_genrec
    from hf_genrec.models.genrec_tokenizer import GenRecTokenizer
    from hf_genrec.item_tokenizers.rqkmeans import RQKMeansConfig, RQKMeansTokenizer
    from hf_genrec.models.tiger import TigerConfig, TigerForGenerativeRecommendation
    from hf_genrec.semantic_ids.id_table import SemanticIdTable
    from hf_genrec.inference.saved_models import load_saved_model

    embeddings = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    rqk = RQKMeansTokenizer(RQKMeansConfig(num_levels=2, codebook_size=4, num_iters=3))
    table = rqk.fit(embeddings).build_table(list(range(1, 31)), embeddings)
    rqk.save_pretrained(tmp_path / "item_tokenizer")
    tokenizer = GenRecTokenizer.from_semantic_id_table(table, num_user_buckets=0)
    config = TigerConfig.from_tokenizer(tokenizer, d_model=16, d_kv=4, num_heads=2, d_ff=32, num_layers=1)
    TigerForGenerativeRecommendation(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")

    saved = load_saved_model(tmp_path / "model")
    assert saved.processor.semantic_id_table == table
    assert len(hf_genrec.recommend(saved.model, saved.processor, [[1, 2]], k=3, num_beams=4)[0]) == 3
    again = RQKMeansTokenizer.from_pretrained(tmp_path / "item_tokenizer")
    assert torch.equal(again.encode_codes(embeddings), rqk.encode_codes(embeddings))
    assert SemanticIdTable.load(tmp_path / "item_tokenizer") == table
    # pickles that training leaves in the folder are never what the package reads
    assert not any(p.suffix in (".bin", ".pt", ".pth", ".pkl") for p in (tmp_path / "model").iterdir())


# ---------------------------------------------------------------------------------------------------
# No remote code, ever: every load site says trust_remote_code=False
# ---------------------------------------------------------------------------------------------------
# Loaders that cannot run a checkpoint's code whatever it holds (and take no trust_remote_code).
NO_CODE_LOADERS = {"PeftModel.from_pretrained": "peft reads adapter_config.json and the adapter's safetensors only"}
TRANSFORMER_KWARGS = ("model_kwargs", "processor_kwargs", "config_kwargs")


def _says_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _dict_says_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Dict) and any(
        isinstance(k, ast.Constant) and k.value == "trust_remote_code" and _says_false(v) for k, v in zip(node.keys, node.values)
    )


def load_sites_trusting_code(text: str, filename: str = "<string>") -> list[str]:
    """``file:line: call`` for every loader call that does not pass ``trust_remote_code=False``: any
    ``*.from_pretrained(...)``, ``SentenceTransformer(...)``, and sentence-transformers' ``Transformer(...)``
    (whose model, processor and config kwargs must each say it)."""
    found = []
    for node in ast.walk(ast.parse(text, filename=filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func) or (f"super().{node.func.attr}" if isinstance(node.func, ast.Attribute) else "")
        if name in NO_CODE_LOADERS:
            continue
        if name.endswith("from_pretrained") or name.split(".")[-1] == "SentenceTransformer":
            keyword = _keyword(node, "trust_remote_code")
            if keyword is None or not _says_false(keyword.value):
                found.append(f"{filename}:{node.lineno}: {name}(...) without trust_remote_code=False")
        elif name.split(".")[-1] == "Transformer":
            if not all(_dict_says_false(getattr(_keyword(node, k), "value", None)) for k in TRANSFORMER_KWARGS):
                found.append(f"{filename}:{node.lineno}: {name}(...) without trust_remote_code False in {TRANSFORMER_KWARGS}")
    return found


def test_load_site_scanner_tells_trusting_from_refusing_calls():
    trusting = [
        "AutoModel.from_pretrained(path)",
        "T5ForConditionalGeneration.from_pretrained(path, trust_remote_code=None)",
        "super().from_pretrained(path, **kwargs)",
        "SentenceTransformer(name, device='cpu')",
        "Transformer(name, model_kwargs={}, processor_kwargs={'trust_remote_code': False}, config_kwargs={'trust_remote_code': False})",
    ]
    for source in trusting:
        assert len(load_sites_trusting_code(source, "x.py")) == 1, source
    refusing = [
        "AutoModel.from_pretrained(path, trust_remote_code=False)",
        "super().from_pretrained(path, *args, trust_remote_code=False, **kwargs)",
        "SentenceTransformer(name, trust_remote_code=False)",
        "Transformer(name, model_kwargs={**kw, 'trust_remote_code': False}, processor_kwargs={'trust_remote_code': False}, "
        "config_kwargs={'trust_remote_code': False})",
        "PeftModel.from_pretrained(model, path)",
    ]
    for source in refusing:
        assert load_sites_trusting_code(source, "x.py") == [], source


def test_every_load_site_refuses_remote_code():
    sites = []
    for path in sorted(SRC.rglob("*.py")):
        sites += load_sites_trusting_code(path.read_text(encoding="utf-8"), str(path.relative_to(SRC.parent)))
    assert not sites, "loaders that would let a checkpoint's code run:\n" + "\n".join(sites)
