"""References (strings in the document) resolve to objects inside the job."""

from __future__ import annotations

import pytest

from forge_ops.runtime import ReferenceContext, UnresolvedReference, resolve_references

torch = pytest.importorskip("torch")
arch = pytest.importorskip("forge_ops.arch")

CODE = ("def f(x, *, net: Architecture = None, criterion: Criterion = 'MSELoss',\n"
        "      block: Layer = None, data: Artifact = None) -> Any: ...\n")
SCALE = ("class Scale(nn.Module):\n"
         "    def __init__(self, factor: float = 2.0):\n"
         "        super().__init__()\n"
         "        self.factor = factor\n"
         "    def forward(self, x):\n"
         "        return x * self.factor\n")


def context(**fields: object) -> ReferenceContext:
    defaults: dict[str, object] = {
        "architectures": {"a1": arch.small_cnn()},
        "layers": {"l1": {"name": "Scale", "code": SCALE}},
        "artifacts": {"weights": {"hash": "h1"}},
        "load_artifact": {"h1": torch.ones(2)}.__getitem__,
    }
    return ReferenceContext(**{**defaults, **fields})  # type: ignore[arg-type]


class TestCriterionAndLayer:
    def test_default_criterion_is_instantiated(self) -> None:
        resolved = resolve_references(CODE, {}, context())
        assert isinstance(resolved["criterion"], torch.nn.MSELoss)
        assert set(resolved) == {"criterion"}  # unset references without default are left out

    def test_named_loss_and_torch_layer_class(self) -> None:
        resolved = resolve_references(CODE, {"criterion": "CrossEntropyLoss",
                                             "block": "Conv2d"}, context())
        assert isinstance(resolved["criterion"], torch.nn.CrossEntropyLoss)
        assert resolved["block"] is torch.nn.Conv2d

    def test_custom_layer_by_id_or_name(self) -> None:
        for value in ("l1", "Scale"):
            layer = resolve_references(CODE, {"block": value}, context())["block"]
            assert layer.__name__ == "Scale"
            assert torch.equal(layer(3.0)(torch.ones(2)), torch.full((2,), 3.0))

    def test_unknown_names_are_clear_errors(self) -> None:
        with pytest.raises(UnresolvedReference, match=r"'Conv2d' is neither a custom layer nor "
                                                      r"a torch\.nn loss class"):
            resolve_references(CODE, {"criterion": "Conv2d"}, context())
        with pytest.raises(UnresolvedReference, match="'NoLayer' is neither"):
            resolve_references(CODE, {"block": "NoLayer"}, context())
        with pytest.raises(UnresolvedReference, match="must be set to a name or id"):
            resolve_references(CODE, {"block": 3}, context())

    def test_broken_custom_layer(self) -> None:
        broken = {"l2": {"name": "Broken", "code": "x = 1\n"}}
        with pytest.raises(UnresolvedReference, match="custom layer 'Broken' cannot be used"):
            resolve_references(CODE, {"block": "Broken"}, context(layers=broken))


class TestArtifact:
    def test_artifact_loaded_by_hash(self) -> None:
        resolved = resolve_references(CODE, {"data": "weights"}, context())
        assert torch.equal(resolved["data"], torch.ones(2))

    def test_missing_artifact_or_store(self) -> None:
        with pytest.raises(UnresolvedReference, match="no artifact named 'gone'"):
            resolve_references(CODE, {"data": "gone"}, context())
        with pytest.raises(UnresolvedReference, match="no artifact store"):
            resolve_references(CODE, {"data": "weights"}, context(load_artifact=None))


class TestArchitecture:
    def test_built_module_is_deterministic_per_seed(self) -> None:
        first = resolve_references(CODE, {"net": "a1"}, context())["net"]
        again = resolve_references(CODE, {"net": "SmallCNN"}, context())["net"]
        other = resolve_references(CODE, {"net": "a1"}, context(seed=1))["net"]
        assert isinstance(first, torch.nn.Module)
        assert first(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
        weights = [p for p in first.parameters()]
        assert all(torch.equal(a, b) for a, b in zip(weights, again.parameters(), strict=True))
        assert not all(torch.equal(a, b) for a, b in zip(weights, other.parameters(),
                                                           strict=True))

    def test_building_does_not_disturb_the_global_rng(self) -> None:
        torch.manual_seed(5)
        expected = torch.rand(1)
        torch.manual_seed(5)
        resolve_references(CODE, {"net": "a1"}, context())
        assert torch.equal(torch.rand(1), expected)

    def test_missing_architecture(self) -> None:
        with pytest.raises(UnresolvedReference, match="no architecture with id 'zz'"):
            resolve_references(CODE, {"net": "zz"}, context())

    def test_broken_architecture(self) -> None:
        broken = {"a1": {"name": "Bad", "layers": {"l": {"type": "NoSuchLayer", "name": "x",
                                                        "attributes": {}}}, "edges": {}}}
        with pytest.raises(UnresolvedReference, match="architecture 'Bad' cannot be built"):
            resolve_references(CODE, {"net": "a1"}, context(architectures=broken))
