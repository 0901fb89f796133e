"""ftlab: a Jupyter-first kit for learning LLM fine-tuning, offline by default.

The package mirrors the notebooks. Data flows one way through the pipeline, and no
module imports from a module in a later stage (``tests/test_layers.py`` checks it):

====  ==========================  ===============================================
layer module(s)                   stage
====  ==========================  ===============================================
0     core, figures, params,      seeds, recorded figures, parameter checks,
      offline, generation, hub,   the network guard, chat generation helpers,
      show, sidebyside            real models built offline from a GGUF, the
                                  table renderer and the loss plot, calls run
                                  side by side in one process each
1     data, toymodel              the toy world: datasets, probes, the base model
2     tokens, validate, cost,     exact token counts, the JSONL validator, the
      paths, userdata,            price catalog, choosing a path, the learner's
      validate_dpo                own data (validated, split), the DPO validator
3     train, memory, preference   QLoRA training with TRL, the VRAM estimator,
                                  DPO and GRPO after SFT
4     sandbox                     the local OpenAI-compatible API
5     diagnose                    loss-curve diagnosis
6     merge                       merging adapters and exporting
7     evaluate, gates             baseline comparison, forgetting and safety, and
                                  the one regression rule 07 and 08 share
8     failures, cloud, scale,     failure modes, managed clouds, multi-GPU,
      check, exercises            exercise checks and exercise notebooks
====  ==========================  ===============================================

``runner`` (with ``kernelwatch``, its watch on notebook kernels), ``sweep`` (parameter sweeps),
``oneclick`` (Colab/Binder) and ``cli`` sit on top and may import anything.
"""

from ftlab import offline as _offline
from ftlab.core import seed_everything
from ftlab.errors import FtlabError, ParameterError
from ftlab.figures import record, recorded

__version__ = "0.1.0"

_offline.enable_from_env()
__all__ = ["FtlabError", "ParameterError", "__version__", "record", "recorded", "seed_everything"]
