"""DrDiff PyTorch reference: GGUF I/O, the denoiser, the sampler and their command lines.

Modules: gguf (file format), philox (noise), schedule (noise schedules, time grids),
hsa (attention visibility), model (the denoiser), sampler (DPM-Solver++ with SAS),
tokenizer (byte-level BPE), random_model / generate / forward (command lines).
"""
