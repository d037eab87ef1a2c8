#!/usr/bin/env python3
"""Writes the tiny random LLaMA (Hugging Face folder) both controller benchmarks serve.

2 layers, hidden 64, 4 heads / 2 KV heads, a byte-level BPE tokenizer of ~440 tokens trained on
a few sentences, seed 0, f32 safetensors. Both FastChat and arena load it. Needs the
FastChat venv of scripts/setup-bench.sh fastchat (torch, transformers, tokenizers).

    /root/.cache/arena/venv-fastchat/bin/python scripts/make-tiny-hf-model.py [DIR]

DIR defaults to ~/.cache/arena/tiny-vicuna-hf ("vicuna" in the name makes FastChat use its
vicuna_v1.1 template, which arena also picks by name).
"""
import sys
import json, os, torch
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
d = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/arena/tiny-vicuna-hf")
os.makedirs(d, exist_ok=True)
text = ["Hello world, this is a tiny model for benchmarking.",
        "A chat between a curious user and an artificial intelligence assistant.",
        "The assistant gives helpful, detailed, and polite answers to the user's questions.",
        "USER: hello world ASSISTANT: Hi! How can I help you today?",
        "The quick brown fox jumps over the lazy dog. What is the capital of France? Paris."] * 20
tok = Tokenizer(models.BPE(unk_token=None))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
tr = trainers.BpeTrainer(vocab_size=500, special_tokens=["<unk>", "<s>", "</s>"],
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(text, tr)
tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
hf.save_pretrained(d)
V = tok.get_vocab_size()
print("vocab", V)
cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=512, vocab_size=V,
                  bos_token_id=1, eos_token_id=2, pad_token_id=None, torch_dtype="float32")
torch.manual_seed(0)
m = LlamaForCausalLM(cfg).to(torch.float32)
m.save_pretrained(d, safe_serialization=True)
print(os.listdir(d))
print(json.load(open(d + "/tokenizer_config.json")))
