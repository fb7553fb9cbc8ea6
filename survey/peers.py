"""The peers surveyed, as data: where each update lives, the patches that make it load, how it
is called, and the shapes it needs.

A patch only touches imports and JAX API renames (never a peer's logic). Constraints replace
padding: the harness draws only shapes the peer's kernel accepts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` with ``new`` in the downloaded file, ``count`` times exactly."""

    name: str
    old: str
    new: str
    why: str
    count: int = 1


@dataclass(frozen=True)
class Peer:
    """One update function in one released wheel, and how the survey calls it.

    ``keywords`` are passed to the peer's function as they are (its block size); ``count_as_one``
    reshapes the count to the ``[1]`` the peer indexes; ``mesh_axis`` names the axis of the
    one-device mesh the peer reads from the ambient context; ``jit`` compiles the call once per
    shape, for a peer whose function is not jitted itself (its engine traces it inside a jitted
    step; called eagerly, it would be traced and compiled again on every call).
    """

    key: str
    package: str
    version: str
    file: str
    function: str
    patches: tuple[Patch, ...] = ()
    constraints: tuple[str, ...] = ()
    keywords: dict[str, int] = field(default_factory=dict)
    count_as_one: bool = False
    mesh_axis: str | None = None
    jit: bool = False

    @property
    def module_name(self) -> str:
        """The name the patched file is imported under (one per peer file)."""
        return "survey_peer_" + self.package.replace("-", "_").replace(".", "_")


TPU_MEMORY_SPACE_ANY = Patch(
    "TPUMemorySpace.ANY -> pl.ANY",
    "pltpu.TPUMemorySpace.ANY",
    "pl.ANY",
    "JAX 0.7.2 removed pltpu.TPUMemorySpace; pl.ANY is the same memory space",
    count=3,
)
MEMORY_SPACE_ANY = Patch(
    "pltpu.MemorySpace.ANY -> pl.ANY",
    "pltpu.MemorySpace.ANY",
    "pl.ANY",
    "newer JAX has no pltpu.MemorySpace.ANY; pl.ANY is the same memory space",
    count=3,
)
LANE_ALIGNED = "head_dim%128"  # every peer kernel asserts a lane-aligned head_dim
# lax.select(offset_i < num_slices_ref[0], slices_ref[1, offset_i], 0): a table of any other
# dtype raises TypeError while tracing (its runners build int32 tables).
INT32_TABLE = "table_dtype=int32"

TPU_INFERENCE_FILE = "tpu_inference/kernels/ragged_paged_attention/v2/ragged_kv_cache_update.py"
EASYDEL_FILE = "easydel/caching/ragged_page/utils.py"
EASYDEL_EJIT = Patch(
    "ejkernel ejit -> jax.jit",
    "from ejkernel.callib import ejit  # pyright: ignore[reportMissingTypeStubs]",
    "ejit = jax.jit",
    "ejkernel's ejit is a caching jax.jit; ejkernel's dependency tree is not installed",
)

PEERS: tuple[Peer, ...] = (
    Peer(
        key="tpu_inference_kv_cache_update",
        package="tpu-inference",
        version="0.32.0",
        file=TPU_INFERENCE_FILE,
        function="kv_cache_update",
        patches=(
            Patch(
                "tpu_inference.utils helpers inline",
                "from tpu_inference.utils import TPU_HEAD_SIZE_ALIGNMENT, get_dtype_packing",
                "TPU_HEAD_SIZE_ALIGNMENT = 128\n"
                "def get_dtype_packing(dtype):\n"
                "    return 32 // dtypes.itemsize_bits(dtype)",
                "tpu_inference/utils.py imports torch and vllm; these two are its definitions",
            ),
        ),
        # It picks its own block (64 on these shapes, more columns than any bucket has);
        # 8 is one of the blocks its own tests run.
        keywords={"num_slices_per_block": 8},
        constraints=(LANE_ALIGNED, "columns%8", INT32_TABLE),
        count_as_one=True,
    ),
    Peer(
        key="vllm_kv_cache_update",
        package="vllm",
        version="0.11.0",
        file="vllm/attention/ops/pallas_kv_cache_update.py",
        function="kv_cache_update",
        patches=(
            Patch(
                "vllm.utils cdiv inline",
                "from vllm.utils import cdiv",
                "def cdiv(a, b):\n    return -(a // -b)",
                "vllm.utils imports torch; cdiv is ceiling division",
            ),
            TPU_MEMORY_SPACE_ANY,
        ),
        keywords={"num_slices_per_block": 8},
        constraints=(LANE_ALIGNED, "columns%8", INT32_TABLE),
        count_as_one=True,
    ),
    Peer(
        key="sglang_jax_kv_cache_update",
        package="sglang-jax",
        version="0.0.1.post1",
        file="sgl_jax/srt/mem_cache/memory_pool.py",
        function="kv_cache_update",
        patches=(MEMORY_SPACE_ANY,),
        keywords={"num_slices_per_block": 4},  # what its caller, update_kv_cache_vectorized, uses
        constraints=(LANE_ALIGNED, "columns%4", "heads%2"),
        count_as_one=True,
        mesh_axis="tensor",
        jit=True,
    ),
    Peer(
        key="easydel_kv_cache_update",
        package="easydel",
        version="0.3.0",
        file=EASYDEL_FILE,
        function="kv_cache_update",
        patches=(EASYDEL_EJIT, MEMORY_SPACE_ANY),
        keywords={"slices_per_processing_page": 8},
        constraints=(LANE_ALIGNED, "columns%8"),
        count_as_one=True,
    ),
    Peer(
        key="easydel_kv_cache_update_jax",
        package="easydel",
        version="0.3.0",
        file=EASYDEL_FILE,
        function="kv_cache_update_jax",
        patches=(EASYDEL_EJIT, MEMORY_SPACE_ANY),
    ),
)


def by_key(key: str) -> Peer:
    """The peer named ``key``, or ``KeyError`` listing the known ones."""
    for peer in PEERS:
        if peer.key == key:
            return peer
    raise KeyError(f"no peer {key!r}; known: {', '.join(p.key for p in PEERS)}")
