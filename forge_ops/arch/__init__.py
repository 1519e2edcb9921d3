"""Architectures: layer catalogue, custom layers, building, shapes, export and import.

Plain data layout and the special ``Input``/``Output`` layer types are described in
:mod:`forge_ops.arch._model`. Importing this package does not import torch; the functions that
need it import it when called.
"""

from forge_ops.arch._calls import user_code_in as user_code_in
from forge_ops.arch._document import write_architecture as write_architecture
from forge_ops.arch._functional import FUNCTIONAL_OPS as FUNCTIONAL_OPS
from forge_ops.arch._functional import FunctionalOp as FunctionalOp
from forge_ops.arch._inputs import InputSpec as InputSpec
from forge_ops.arch._inputs import parse_input as parse_input
from forge_ops.arch._model import INPUT as INPUT
from forge_ops.arch._model import OUTPUT as OUTPUT
from forge_ops.arch._model import ArchitectureError as ArchitectureError
from forge_ops.arch._model import LayerRuntimeError as LayerRuntimeError
from forge_ops.arch._model import canonical as canonical
from forge_ops.arch._model import graph_of as graph_of
from forge_ops.arch.build import build_module as build_module
from forge_ops.arch.builtins import BUILTIN_ARCHITECTURES as BUILTIN_ARCHITECTURES
from forge_ops.arch.builtins import ArchitectureBuilder as ArchitectureBuilder
from forge_ops.arch.builtins import resnet as resnet
from forge_ops.arch.builtins import small_cnn as small_cnn
from forge_ops.arch.builtins import vgg as vgg
from forge_ops.arch.catalogue import AttributeSpec as AttributeSpec
from forge_ops.arch.catalogue import LayerSpec as LayerSpec
from forge_ops.arch.catalogue import catalogue as catalogue
from forge_ops.arch.custom import CustomLayerError as CustomLayerError
from forge_ops.arch.custom import parse_custom_layer as parse_custom_layer
from forge_ops.arch.export import export_source as export_source
from forge_ops.arch.importer import ArchitectureImportError as ArchitectureImportError
from forge_ops.arch.importer import import_from_file as import_from_file
from forge_ops.arch.importer import import_module as import_module
from forge_ops.arch.naming import class_name as class_name
from forge_ops.arch.naming import identifier as identifier
from forge_ops.arch.shapes import ShapeError as ShapeError
from forge_ops.arch.shapes import ShapeReport as ShapeReport
from forge_ops.arch.shapes import infer_shapes as infer_shapes
from forge_ops.arch.shapes import infer_shapes_isolated as infer_shapes_isolated

__all__ = [
    "BUILTIN_ARCHITECTURES",
    "FUNCTIONAL_OPS",
    "INPUT",
    "OUTPUT",
    "ArchitectureBuilder",
    "ArchitectureError",
    "ArchitectureImportError",
    "AttributeSpec",
    "CustomLayerError",
    "FunctionalOp",
    "InputSpec",
    "LayerRuntimeError",
    "LayerSpec",
    "ShapeError",
    "ShapeReport",
    "build_module",
    "canonical",
    "catalogue",
    "class_name",
    "export_source",
    "graph_of",
    "identifier",
    "import_from_file",
    "import_module",
    "infer_shapes",
    "infer_shapes_isolated",
    "parse_custom_layer",
    "parse_input",
    "resnet",
    "small_cnn",
    "user_code_in",
    "vgg",
    "write_architecture",
]
