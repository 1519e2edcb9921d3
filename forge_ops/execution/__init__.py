"""Running pipelines: plans, cache keys, executors (local, Ray), the scheduling engine."""

from ._batch import FeedbackBatcher as FeedbackBatcher
from ._cache import CacheEntry as CacheEntry
from ._cache import CacheIndex as CacheIndex
from ._cache import cache_key as cache_key
from ._cache import normalize_code as normalize_code
from ._cache import runtime_versions as runtime_versions
from ._engine import Engine as Engine
from ._engine import ExecutionHandle as ExecutionHandle
from ._events import Event as Event
from ._events import ExecutionStatusChanged as ExecutionStatusChanged
from ._events import JobFeedback as JobFeedback
from ._events import JobStatusChanged as JobStatusChanged
from ._local import LocalExecutor as LocalExecutor
from ._plan import InputWire as InputWire
from ._plan import JobSettings as JobSettings
from ._plan import JobSpec as JobSpec
from ._plan import Plan as Plan
from ._plan import PlanError as PlanError
from ._plan import plan_pipeline as plan_pipeline
from ._ray import RayExecutor as RayExecutor
from ._ray_probe import probe_nodes as probe_nodes
from ._results import ExecutionResult as ExecutionResult
from ._results import JobRecord as JobRecord
from ._run import EventCallback as EventCallback
from ._sandbox import Confinement as Confinement
from ._sandbox import SandboxPolicy as SandboxPolicy
from ._sandbox import SandboxUnavailable as SandboxUnavailable
from ._sandbox import confined_module as confined_module
from ._sandbox import confinement as confinement
from ._sandbox import jobs_user as jobs_user
from ._sandbox import share_store_with_jobs as share_store_with_jobs
from ._sandbox import unconfined_refusal as unconfined_refusal
from ._store_access import StoreAccess as StoreAccess
from ._store_access import StoreUnreachable as StoreUnreachable
from ._store_access import parse_option as parse_option
from ._store_access import probe_store as probe_store
from ._store_access import store_failure as store_failure
from ._task import ChainingExecutor as ChainingExecutor
from ._task import Executor as Executor
from ._task import TaskEvent as TaskEvent
from ._task import TaskEventKind as TaskEventKind
from ._task import TaskHandle as TaskHandle
from ._task import TaskSpec as TaskSpec

__all__ = [
    "CacheEntry",
    "CacheIndex",
    "ChainingExecutor",
    "Confinement",
    "Engine",
    "Event",
    "EventCallback",
    "ExecutionHandle",
    "ExecutionResult",
    "ExecutionStatusChanged",
    "Executor",
    "FeedbackBatcher",
    "InputWire",
    "JobFeedback",
    "JobRecord",
    "JobSettings",
    "JobSpec",
    "JobStatusChanged",
    "LocalExecutor",
    "Plan",
    "PlanError",
    "RayExecutor",
    "SandboxPolicy",
    "SandboxUnavailable",
    "StoreAccess",
    "StoreUnreachable",
    "TaskEvent",
    "TaskEventKind",
    "TaskHandle",
    "TaskSpec",
    "cache_key",
    "confined_module",
    "confinement",
    "jobs_user",
    "normalize_code",
    "parse_option",
    "plan_pipeline",
    "probe_nodes",
    "probe_store",
    "runtime_versions",
    "share_store_with_jobs",
    "store_failure",
    "unconfined_refusal",
]
