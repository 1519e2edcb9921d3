"""Operations: interfaces read from code, port type checks, the built-in library, validation."""

from ._connections import PortTypeMismatch as PortTypeMismatch
from ._connections import check_connection as check_connection
from ._connections import types_compatible as types_compatible
from ._interface import ATTRIBUTE_TYPES as ATTRIBUTE_TYPES
from ._interface import SINGLE_OUTPUT as SINGLE_OUTPUT
from ._interface import Attribute as Attribute
from ._interface import InterfaceError as InterfaceError
from ._interface import OperationInterface as OperationInterface
from ._interface import Port as Port
from ._interface import Reference as Reference
from ._interface import value_matches_type as value_matches_type
from ._library import BUILTIN_FILES as BUILTIN_FILES
from ._library import BuiltinOperation as BuiltinOperation
from ._library import builtin_code as builtin_code
from ._library import builtin_operations as builtin_operations
from ._parse import InterfaceTracker as InterfaceTracker
from ._parse import parse_interface as parse_interface
from .interface_changes import describe_interface_changes as describe_interface_changes
from .types import PORT_TYPES as PORT_TYPES
from .types import REFERENCE_TYPES as REFERENCE_TYPES
from .validation import PipelineInvalid as PipelineInvalid
from .validation import Problem as Problem
from .validation import ProblemKind as ProblemKind
from .validation import find_problems as find_problems
from .validation import validate_pipeline as validate_pipeline
from .validation import validate_project_pipeline as validate_project_pipeline

__all__ = [
    "ATTRIBUTE_TYPES",
    "BUILTIN_FILES",
    "PORT_TYPES",
    "REFERENCE_TYPES",
    "SINGLE_OUTPUT",
    "Attribute",
    "BuiltinOperation",
    "InterfaceError",
    "InterfaceTracker",
    "OperationInterface",
    "PipelineInvalid",
    "Port",
    "PortTypeMismatch",
    "Problem",
    "ProblemKind",
    "Reference",
    "builtin_code",
    "builtin_operations",
    "check_connection",
    "describe_interface_changes",
    "find_problems",
    "parse_interface",
    "types_compatible",
    "validate_pipeline",
    "validate_project_pipeline",
    "value_matches_type",
]
