"""Training data for fine-tuning: which base models and methods each provider trains, OpenAI examples converted
line by line into the provider's training format, files converted as a stream, and hyperparameters mapped.

    family = family_of(adapter, model)            # refuses a base model the provider cannot tune
    converter = converter_for(adapter, family, method)
    summary = await convert_file(blobs, key, converter, lambda chunks: staging.write(dest, chunks))
    hyper = hyperparameters_for(adapter, family, hyperparameters)

Every refusal is a `TrainingDataError` naming the request field (`model`, `method`, `training_file`,
`hyperparameters.<name>`) and, for a bad example, its line.

    errors          TrainingDataError
    models          base model -> family tables, methods per family
    examples        reading an OpenAI example into a neutral conversation (what Bedrock formats render from)
    openai_lines    identity, with the example shape checked against the method
    bedrock_lines   Nova / Llama Vision conversation schema, Claude messages, Titan/Llama prompt-completion
    vertex_lines    Gemini `contents`
    converters      LineConverter and the adapter table
    stream          convert_file
    hyperparameters OpenAI -> Bedrock / Vertex
"""

from finetune.training.converters import LineConverter, converter_for
from finetune.training.errors import TrainingDataError
from finetune.training.hyperparameters import hyperparameters_for
from finetune.training.models import check_method, family_of
from finetune.training.stream import ConversionSummary, Upload, convert_file

__all__ = [
    "ConversionSummary",
    "LineConverter",
    "TrainingDataError",
    "Upload",
    "check_method",
    "convert_file",
    "converter_for",
    "family_of",
    "hyperparameters_for",
]
