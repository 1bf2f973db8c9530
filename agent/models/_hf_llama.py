"""One decode step of a Llama-architecture model (SmolLM2, the default) without
transformers' per-module machinery.

A decode step of a 135M model runs about 1,600 small operations; transformers wraps each
layer and module call in decorators, keyword plumbing and output recording that cost as
much again in Python. This step calls the same functions on the same weights in the same
order as `LlamaForCausalLM.forward` (transformers 5.x): the embedding, the causal mask,
the rotary embedding, per layer RMSNorm, the q/k/v projections, `apply_rotary_pos_emb`,
the cache update, the configured attention function, the output projection and the MLP,
then the final norm and the LM head on the last position only. Its logits are bitwise
those of `model(...)` (tests/agent/test_models_decode.py checks the tokens against
`model.generate`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Cache, PreTrainedModel
from transformers.masking_utils import create_causal_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.llama.modeling_llama import (
    LlamaForCausalLM,
    LlamaRMSNorm,
    apply_rotary_pos_emb,
    eager_attention_forward,
)


def supports(model: PreTrainedModel) -> bool:
    """Whether `step` computes this model's forward: exactly a `LlamaForCausalLM`, in
    inference mode, without hooks that the step would skip."""
    if type(model) is not LlamaForCausalLM or model.training:
        return False
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _norm(x: torch.Tensor, norm: LlamaRMSNorm) -> torch.Tensor:
    dtype = x.dtype
    h = x.to(torch.float32)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + norm.variance_epsilon)
    return norm.weight * h.to(dtype)


def step(
    model: LlamaForCausalLM,
    input_ids: torch.Tensor,
    position_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    cache: Cache,
) -> torch.Tensor:
    """The float32 logits of the last position of each row, `(batch, vocab)`, after
    feeding `input_ids` (appended to `cache`)."""
    body, config = model.model, model.config
    embed = body.embed_tokens
    x = F.embedding(input_ids, embed.weight, embed.padding_idx)
    mask = create_causal_mask(
        config=config,
        inputs_embeds=x,
        attention_mask=attention_mask,
        cache=cache,
        position_ids=position_ids,
    )
    cos, sin = body.rotary_emb(x, position_ids=position_ids)
    attend = ALL_ATTENTION_FUNCTIONS.get_interface(
        config._attn_implementation, eager_attention_forward
    )
    batch, length, _ = x.shape
    for index, layer in enumerate(body.layers[: config.num_hidden_layers]):
        attn, mlp = layer.self_attn, layer.mlp
        h = _norm(x, layer.input_layernorm)
        shape = (batch, length, -1, attn.head_dim)
        q = F.linear(h, attn.q_proj.weight, attn.q_proj.bias).view(shape).transpose(1, 2)
        k = F.linear(h, attn.k_proj.weight, attn.k_proj.bias).view(shape).transpose(1, 2)
        v = F.linear(h, attn.v_proj.weight, attn.v_proj.bias).view(shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k, v = cache.update(k, v, index)
        out, _ = attend(attn, q, k, v, mask, dropout=0.0, scaling=attn.scaling)
        out = out.reshape(batch, length, -1).contiguous()
        x = x + F.linear(out, attn.o_proj.weight, attn.o_proj.bias)
        h = _norm(x, layer.post_attention_layernorm)
        gate = F.linear(h, mlp.gate_proj.weight, mlp.gate_proj.bias)
        up = F.linear(h, mlp.up_proj.weight, mlp.up_proj.bias)
        x = x + F.linear(mlp.act_fn(gate) * up, mlp.down_proj.weight, mlp.down_proj.bias)
    x = _norm(x, body.norm)
    head = model.lm_head
    logits = F.linear(x[:, -1:, :], head.weight, head.bias)
    return logits[:, -1].to(copy=True, dtype=torch.float32)
