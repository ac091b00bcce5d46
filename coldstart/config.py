"""The job configuration: typed, frozen, validated when built, loaded from TOML or JSON.

One file describes a deployment profile (laptop or cluster); where the job runs is ``RAY_ADDRESS``. Every
section is optional and every field has a default that works on a laptop::

    catalog = "s3://shop/catalog/"           # or a local path
    store = "s3://shop/coldstart"            # where versions are published

    [schema]   id_col = "item_id"; text_cols = ["title", "brand", "categories"]; template = "{title}. {brand}"
               required = ["title"]          # rows with an empty title are quarantined, whatever else they have
    [encoder]  model = "default"; pooling = "mean"; max_length = 128; batch_size = 64; device = "auto"
               backend = "torch"             # or onnx / onnx-int8 (CPU; exported once per model, cached)
    [index]    kind = "flat"                 # or hnsw / ivf_pq / ivf_sq8
    [embed]    actors = 2; cpus_per_actor = 0.5; gpus_per_actor = 0; threads_per_actor = 1
    [profile]  query_weight = 0.5; click_decay = 0.7
    [retrieval] ...                          # the ranking pipeline's weights: coldstart.ranking.config
    [train], [reranker]                      # fine-tuning (jobs.finetune): coldstart.training.config
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldstart.catalog.reader import CatalogSchema
from coldstart.encoders.encoder import EncoderConfig
from coldstart.ranking.faiss_index import IndexConfig
from coldstart.ranking.user_vector import ProfileConfig


@dataclass(frozen=True)
class EmbedConfig:
    """How the Ray Data embedding stage uses the cluster."""

    actors: int = 2
    cpus_per_actor: float = 0.5  # below 1 on purpose: whole-CPU actors starve the read tasks on 2 cores
    gpus_per_actor: float = 0.0
    threads_per_actor: int = 1
    rows_per_block: int = 1024
    retention: int = 5  # published versions kept; the live one is never removed
    incremental: bool = True  # carry over vectors of unchanged products from the live version
    lease_ttl_s: float = 600.0  # the store's publish lease: renewed every third of this; a dead run's frees after it

    def __post_init__(self) -> None:
        if self.actors < 1:
            raise ValueError(f"embed.actors={self.actors}: need at least one embedding actor")
        if self.cpus_per_actor < 0 or self.gpus_per_actor < 0:
            raise ValueError("embed.cpus_per_actor and embed.gpus_per_actor must be ≥ 0")
        if self.threads_per_actor < 1 or self.rows_per_block < 1:
            raise ValueError("embed.threads_per_actor and embed.rows_per_block must be positive")
        if self.lease_ttl_s <= 0:
            raise ValueError(f"embed.lease_ttl_s={self.lease_ttl_s}: must be positive (seconds)")
        if self.retention < 1:
            raise ValueError(f"embed.retention={self.retention}: keep at least the live version (1)")


@dataclass(frozen=True)
class SignalsConfig:
    """Other users' sessions the nightly job fits the session signals from (co-visitation, transitions) and
    publishes beside each version it publishes (:mod:`coldstart.signals.artifact`); none: no signals."""

    sessions: str | None = None  # JSON Lines {"user_id", "items"}, local or s3://
    attributes: str | None = None  # item_id + category/brand (or text read by [retrieval] attributes_pattern)


@dataclass(frozen=True)
class JobConfig:
    catalog: str | None = None
    store: str = "./coldstart-store"
    schema: CatalogSchema = field(default_factory=CatalogSchema)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    retrieval: Any = None  # the [retrieval] table as a RetrievalConfig (co-visitation settings); None: defaults

    def replace(self, **changes: Any) -> "JobConfig":
        """A copy with top-level fields or ``section__field`` keys changed; None values are ignored."""
        top, nested = {}, {}
        for key, value in changes.items():
            if value is None:
                continue
            if "__" in key:
                section, name = key.split("__", 1)
                nested.setdefault(section, {})[name] = value
            else:
                top[key] = value
        for section, values in nested.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)


_SECTIONS = {"schema": CatalogSchema, "encoder": EncoderConfig, "index": IndexConfig, "embed": EmbedConfig,
             "profile": ProfileConfig, "signals": SignalsConfig}


def config_from_dict(raw: dict[str, Any], *, origin: str = "config") -> JobConfig:
    # [train] and [reranker] are jobs.finetune's (coldstart.training.config), so one file can hold a whole profile
    unknown = set(raw) - {"catalog", "store", "retrieval", "train", "reranker", *_SECTIONS}
    if unknown:
        raise ValueError(f"{origin}: unknown keys {sorted(unknown)}; known: catalog, store, "
                         f"{', '.join(_SECTIONS)}, retrieval, train, reranker")
    if "retrieval" in raw:  # read by coldstart search (load_retrieval_config); checked here so a typo fails early
        from coldstart.ranking.config import retrieval_config_from_dict

        try:
            retrieval = retrieval_config_from_dict(raw["retrieval"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{origin}: [retrieval]: {e}") from e
    kwargs: dict[str, Any] = {k: raw[k] for k in ("catalog", "store") if k in raw}
    if "retrieval" in raw:
        kwargs["retrieval"] = retrieval
    for name, cls in _SECTIONS.items():
        section = dict(raw.get(name, {}))
        known = {f.name for f in dataclasses.fields(cls)}
        bad = set(section) - known
        if bad:
            raise ValueError(f"{origin}: [{name}] has unknown keys {sorted(bad)}; known: {sorted(known)}")
        if name == "schema":
            for key in ("text_cols", "required"):
                if key in section:
                    section[key] = tuple(section[key])
        kwargs[name] = cls(**section)
    return JobConfig(**kwargs)


def load_config(path: str | Path | None) -> JobConfig:
    """Read a TOML (``.toml``) or JSON file; None gives the defaults."""
    if path is None:
        return JobConfig()
    path = Path(path)
    text = path.read_text()
    raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    return config_from_dict(raw, origin=str(path))


def config_from_flags(args) -> JobConfig:
    """The job's config from parsed command-line flags: the ``--config`` file (or the defaults), then every flag given
    overrides it. Shared by ``coldstart`` and ``jobs/`` so that a flag means the same in both."""
    config = load_config(getattr(args, "config", None))
    text_cols = tuple(c.strip() for c in args.text_cols.split(",")) if getattr(args, "text_cols", None) else None
    required = tuple(c.strip() for c in args.required_cols.split(",")) if getattr(args, "required_cols", None) \
        else None
    return config.replace(
        catalog=getattr(args, "catalog", None),
        store=getattr(args, "store", None),
        schema__id_col=getattr(args, "id_col", None),
        schema__text_cols=text_cols,
        schema__required=required,
        schema__template=getattr(args, "template", None),
        encoder__model=getattr(args, "model", None),
        encoder__device=getattr(args, "device", None),
        encoder__backend=getattr(args, "backend", None),
        index__kind=getattr(args, "index", None),
        embed__actors=getattr(args, "actors", None),
    )
