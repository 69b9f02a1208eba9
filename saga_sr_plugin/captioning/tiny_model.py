"""A tiny random Qwen2-Audio (model, processor, tokenizer) saved with save_pretrained: the captioner's real
loading code runs on it offline, in the tests, the benchmarks and the device checks (no hub here)."""
from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
WORDS = ("a the of and with in piano guitar voice speech man woman dog bark rain water synth drum bell tone "
         "note noise bright soft loud music playing speaking Generate caption English : . , Describe content "
         "this audio one sentence sound sources instruments speakers environment Do not mention quality "
         "bandwidth user assistant system").split()


def save_tiny_qwen2_audio(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, Qwen2AudioConfig, Qwen2AudioForConditionalGeneration,
                              Qwen2AudioProcessor, WhisperFeatureExtractor)

    vocab = {t: i for i, t in enumerate(SPECIALS + ["<unk>"] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>",
                                        eos_token="<|im_end|>", additional_special_tokens=SPECIALS[1:])
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                               "{% for c in m['content'] %}{% if c['type'] == 'audio' %}"
                               "<|audio_bos|><|AUDIO|><|audio_eos|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
                               "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    processor = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128),
                                    tokenizer=tokenizer, chat_template=tokenizer.chat_template)
    torch.manual_seed(seed)
    config = Qwen2AudioConfig(
        audio_config={"model_type": "qwen2_audio_encoder", "d_model": 32, "encoder_layers": 1,
                      "encoder_attention_heads": 2, "encoder_ffn_dim": 64, "num_mel_bins": 128,
                      "max_source_positions": 1500},
        text_config={"model_type": "qwen2", "vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "max_position_embeddings": 4096, "eos_token_id": vocab["<|im_end|>"],
                     "pad_token_id": vocab["<|endoftext|>"]},
        audio_token_index=vocab["<|AUDIO|>"],
    )
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.eos_token_id = vocab["<|im_end|>"]
    model.generation_config.pad_token_id = vocab["<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
