"""Which base models each provider can fine-tune, grouped into families that share a training format, and which
methods (supervised, dpo) each family trains. Tables, not branches: a new model is one row.

Facts, from the vendors' documentation (kept small on purpose; extend the rows, not the code):

- OpenAI fine-tunes dated snapshots of gpt-4o, gpt-4o-mini, gpt-4.1 (-mini, -nano) and gpt-3.5-turbo; DPO is offered
  on the gpt-4o and gpt-4.1 families, not on gpt-3.5-turbo. An `ft:<base>:…` model continues an earlier fine-tune
  of the same base, so it belongs to the base's family.
- Bedrock (`CreateModelCustomizationJob`, FINE_TUNING) takes Amazon Nova Micro/Lite/Pro, Claude 3 Haiku, Titan Text
  Express/Lite and Meta Llama 3.1/3.2. Base ids may carry a context-window suffix (`…-v1:0:128k`) or be a
  foundation-model ARN. Bedrock's FINE_TUNING is supervised only (preference tuning is not a Bedrock job type).
- Vertex supervised tuning (`tuningJobs` with `supervisedTuningSpec`) takes Gemini 2.0 Flash(-Lite) and 2.5
  Flash(-Lite)/Pro; preference tuning exists elsewhere in Vertex but is not what Portico submits.
"""

from __future__ import annotations

from finetune.training.errors import TrainingDataError

METHODS = ("supervised", "dpo")

# adapter -> ((base model id prefix, family), …). Longest prefixes first where one prefix contains another.
TUNABLE: dict[str, tuple[tuple[str, str], ...]] = {
    "openai": (
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        # The alias and its dated snapshots (-0125, -1106) all fine-tune.
        ("gpt-3.5-turbo", "gpt-3.5-turbo"),
    ),
    "bedrock": (
        ("amazon.nova-micro-v1:0", "nova"),
        ("amazon.nova-lite-v1:0", "nova"),
        ("amazon.nova-pro-v1:0", "nova"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
        ("amazon.titan-text-express-v1", "titan-text"),
        ("amazon.titan-text-lite-v1", "titan-text"),
        ("meta.llama3-1-8b-instruct-v1:0", "llama"),
        ("meta.llama3-1-70b-instruct-v1:0", "llama"),
        ("meta.llama3-2-1b-instruct-v1:0", "llama"),
        ("meta.llama3-2-3b-instruct-v1:0", "llama"),
        ("meta.llama3-2-11b-instruct-v1:0", "llama-vision"),
        ("meta.llama3-2-90b-instruct-v1:0", "llama-vision"),
    ),
    "vertex": (
        ("gemini-2.0-flash-lite-001", "gemini"),
        ("gemini-2.0-flash-001", "gemini"),
        ("gemini-2.5-flash-lite", "gemini"),
        ("gemini-2.5-flash", "gemini"),
        ("gemini-2.5-pro", "gemini"),
    ),
}

# (adapter, family) -> the methods it trains. Missing pairs train nothing.
TRAINABLE_METHODS: dict[tuple[str, str], frozenset[str]] = {
    **{("openai", family): frozenset(METHODS) for family in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini")},
    ("openai", "gpt-4.1-nano"): frozenset(METHODS),
    ("openai", "gpt-3.5-turbo"): frozenset({"supervised"}),
    **{("bedrock", family): frozenset({"supervised"}) for family in ("nova", "anthropic", "titan-text", "llama")},
    ("bedrock", "llama-vision"): frozenset({"supervised"}),
    ("vertex", "gemini"): frozenset({"supervised"}),
}

# Spellings of a base model that name the same id: an OpenAI fine-tune to continue, a Bedrock ARN, a Vertex path.
_ID_PREFIXES: dict[str, tuple[str, ...]] = {
    "openai": ("ft:",),
    "bedrock": (":foundation-model/",),
    "vertex": ("publishers/google/models/", "models/"),
}


def model_id(adapter: str, base_model: str) -> str:
    """`base_model` without the wrapping its adapter allows (`ft:` prefix, ARN, resource path)."""
    name = base_model.strip()
    for marker in _ID_PREFIXES.get(adapter, ()):
        name = name.rsplit(marker, 1)[-1]
    return name


def family_of(adapter: str, base_model: str) -> str:
    """The training family of `base_model` on `adapter`; refuses a model the provider cannot fine-tune."""
    rows = TUNABLE.get(adapter)
    if rows is None:
        raise TrainingDataError(
            f"Portico fine-tunes on {', '.join(TUNABLE)}; provider adapter {adapter!r} has no fine-tuning.",
            param="model",
            code="model_not_tunable",
        )
    name = model_id(adapter, base_model)
    for prefix, family in rows:
        # A prefix, so dated or windowed variants (`…:0:128k`, `ft:gpt-4o-mini-2024-07-18:org::id`) match too.
        if name == prefix or name.startswith((f"{prefix}:", f"{prefix}-", f"{prefix}@")):
            return family
    tunable = ", ".join(prefix for prefix, _ in rows)
    raise TrainingDataError(
        f"{adapter} cannot fine-tune {base_model!r}; tunable base models: {tunable}.",
        param="model",
        code="model_not_tunable",
    )


def check_method(adapter: str, family: str, method: str) -> None:
    """Refuse a method the provider does not train for this family (or one that does not exist)."""
    trainable = TRAINABLE_METHODS.get((adapter, family), frozenset())
    if method in trainable:
        return
    if method not in METHODS:
        detail = f"unknown fine-tuning method {method!r}; Portico trains {', '.join(METHODS)}"
    else:
        offered = ", ".join(sorted(trainable)) or "nothing"
        detail = f"{adapter} does not train {method!r} on {family} models (it trains: {offered})"
    raise TrainingDataError(detail + ".", param="method", code="method_not_supported")
