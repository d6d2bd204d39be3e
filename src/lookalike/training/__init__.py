"""Fine-tuning a bundled CNN on labelled domain images (metric learning in PyTorch), exported
to ONNX into the model cache as a named extractor. Imports torch: load it only to train;
torch comes with `pip install 'lookalike[train]'`."""

from ..extras import require

require("torch", feature="fine-tuning", extra="train")
